"""Expired leases and unknown outcomes -> ask the platform; processing -> poll.

Only ``unknown`` needs the platform's help. An idempotent channel (feed) simply publishes
again. A channel that can look (``find``) answers one of:

- ``Published``: found -> published;
- ``Processing``: the platform has the request as a job still running (or ended) -> processing,
  and ``poll()`` follows it to its outcome;
- ``None``: proven absent (the platform never applied the request and never will) -> queued for
  a new attempt. This is the only answer that lets a request be sent again;
- ``Undecided`` (or a failed lookup): it cannot tell yet, typically while an accepted
  asynchronous job may still be running. Look again later with exponential backoff
  (``reconcile_after_seconds`` doubling, capped), until the channel's ``settle_minutes``,
  counted from the start of the attempt whose answer was lost, have passed; then
  ``needs_attention`` with an alert saying what is known, what was checked and where a person
  should look.

Every way into ``unknown`` (a lost answer, an expired lease, a dead lease owner on this host)
waits ``reconcile_after_seconds`` before the first lookup. A channel that cannot look sends the
delivery to a person at once.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kepubot.channels.base import Processing, Progress, Published, Undecided
from kepubot.errors import ChannelError, InvalidTransition, Permanent
from kepubot.queue.store import host_name
from kepubot.timeutil import bounded_wait, show

if TYPE_CHECKING:
    from kepubot.bot.dispatch import Engine

log = logging.getLogger("kepubot.bot.reconcile")

FIND_MARGIN = timedelta(minutes=10)
LOOKUP_CAP_SECONDS = 1800.0  # undecided lookups back off exponentially up to this


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_owners(engine: Engine) -> list[str]:
    """Lease owners on this host whose process is gone (their leases need not run out)."""
    host = host_name()
    dead = []
    for owner in engine.store.deliveries.lease_owners():
        owner_host, _, pid_text = owner.rpartition(":")
        if owner_host != host or not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        if not _pid_alive(int(pid_text)):
            dead.append(owner)
    return dead


def expire(engine: Engine) -> tuple[int, int]:
    now = engine.clock()
    released, unknown = engine.store.deliveries.expire_leases(
        now=now,
        actor=engine.worker,
        dead_owners=dead_owners(engine),
        # a send cut short (even by a dead daemon on this host) may still be indexed: the
        # first lookup waits like any other unknown outcome
        look_at=now + timedelta(seconds=engine.settings.reconcile_after_seconds),
    )
    if released or unknown:
        log.warning(
            "leases expired: %d claims back in the queue, %d sends now unknown", released, unknown
        )
    return released, unknown


def reconcile_unknown(engine: Engine) -> dict[str, int]:
    now = engine.clock()
    # not_before of an unknown delivery is when to look (again): record_unknown and
    # expire_leases set it reconcile_after_seconds ahead, each undecided lookup further out
    rows = engine.store.deliveries.due_ids("unknown", now)
    outcome: dict[str, int] = {}
    for row in rows:
        if engine.stopping.is_set():
            break
        try:
            result = reconcile_one(engine, row)
        except InvalidTransition as exc:
            # another daemon settled it meanwhile: losing that race is normal
            log.debug("delivery %s: settled by another daemon meanwhile (%s); skipped", row, exc)
            continue
        outcome[result] = outcome.get(result, 0) + 1
    return outcome


def next_look(now: datetime, *, base_seconds: float, tries: int, deadline: datetime) -> datetime:
    """When to look again after ``tries`` undecided lookups: ``base_seconds`` doubling each
    time, capped at LOOKUP_CAP_SECONDS, and never later than ``deadline`` (one last look there
    before a person is asked)."""
    wait = min(LOOKUP_CAP_SECONDS, max(base_seconds, 0.1) * 2 ** min(tries, 30))
    return min(now + timedelta(seconds=wait), max(deadline, now))


def _attention_text(
    language: str,
    *,
    delivery_id: int,
    post_id: int,
    channel: str,
    since: str,
    minutes: float,
    undecided: Undecided,
    last_error: str | None,
    situation: str = "settled",
) -> tuple[str, str]:
    """The alert for a delivery handed to a person. ``situation``: ``settled`` (still undecided
    after settle_minutes), ``failing`` (lookups kept failing), ``blind`` (the channel cannot
    look)."""
    checked = "; ".join(undecided.checked)
    if language == "en":
        title = f"kepubot: delivery {delivery_id} needs attention"
        why = {
            "settled": f"{minutes:g} minutes after the attempt of {since} (settle_minutes)",
            "failing": f"and the platform could not be asked since the attempt of {since}",
            "blind": f"and this channel cannot look it up (attempt of {since})",
        }[situation]
        lines = [
            f"Post {post_id} on {channel}: it is still unknown whether the platform published"
            f" it, {why}.",
            f"Known: {undecided.reason}",
        ]
        if checked:
            lines.append(f"Checked: {checked}")
        if undecided.look_at:
            lines.append(f"Look at: {undecided.look_at}")
        if last_error:
            lines.append(f"Last error: {last_error}")
        lines.append(
            "Nothing was sent again. After checking, run"
            f" `kepubot delivery resolve {delivery_id} --published URL_OR_ID` or"
            " `--not-published`."
        )
        return title, "\n".join(lines)
    title = f"kepubot：发布任务 {delivery_id} 需人工处理"
    why_zh = {
        "settled": f"自 {since} 的那次发送起已过 {minutes:g} 分钟（settle_minutes），",
        "failing": f"自 {since} 的那次发送以来多次查询平台均失败，",
        "blind": f"{since} 的那次发送结果未知，且该渠道无法查询，",
    }[situation]
    lines = [
        f"稿件 {post_id} 在渠道 {channel}：{why_zh}仍无法确定平台是否已发布。",
        f"已知情况：{undecided.reason}",
    ]
    if checked:
        lines.append(f"已核查：{checked}")
    if undecided.look_at:
        lines.append(f"请人工查看：{undecided.look_at}")
    if last_error:
        lines.append(f"最近的错误：{last_error}")
    lines.append(
        "kepubot 没有重发。核实后请运行"
        f" `kepubot delivery resolve {delivery_id} --published 链接或编号`"
        " 或 `--not-published`。"
    )
    return title, "\n".join(lines)


def reconcile_one(engine: Engine, delivery_id: int) -> str:
    from kepubot.services.alerts import raise_alert
    from kepubot.services.posts import get_post

    now = engine.clock()
    delivery = engine.store.deliveries.get(delivery_id)
    channel = engine.app.channels.get(delivery.channel)
    if channel is None:
        return "skipped"
    if delivery.kind == "retract":
        return reconcile_retraction(engine, delivery, channel)
    language = getattr(engine.app, "language", "zh")

    def settle(
        found: tuple[str, str | None] | None,
        *,
        decided: bool,
        reason: str,
        poll_at: datetime | None = None,
        job: dict[str, Any] | None = None,
    ) -> str:
        return engine.store.deliveries.record_reconciled(
            delivery_id=delivery_id,
            actor=engine.worker,
            now=now,
            found=found,
            decided=decided,
            reason=reason,
            poll_at=poll_at,
            progress=job,
        )

    def needs_attention(reason: str, title: str, body: str) -> str:
        state = settle(None, decided=False, reason=reason)
        raise_alert(engine.app, key=f"attention:{delivery_id}", now=now, title=title, body=body)
        return state

    if channel.capabilities.idempotent:
        state = settle(None, decided=True, reason="publishing again is harmless on this channel")
        log.info(
            "delivery %s: idempotent channel %s, publishing again", delivery_id, delivery.channel
        )
        return state
    if not channel.capabilities.find:
        cannot = Undecided(
            reason="该渠道无法查询已发布的内容（cannot look up earlier posts）",
            look_at=f"渠道 {delivery.channel} 的接收方（群聊、平台后台）",
        )
        title, body = _attention_text(
            language,
            delivery_id=delivery_id,
            post_id=delivery.post_id,
            channel=delivery.channel,
            since=_local(engine, engine.store.deliveries.uncertain_since(delivery_id) or now),
            minutes=0,
            undecided=cannot,
            last_error=delivery.last_error,
            situation="blind",
        )
        return needs_attention(
            f"{delivery.channel} cannot look up earlier posts; check it by hand, then run"
            f" `kepubot delivery resolve {delivery_id} --published URL | --not-published`",
            title,
            body,
        )
    post = get_post(engine.app, delivery.post_id)
    started = engine.store.deliveries.first_attempt_started(delivery_id)
    since = (started or delivery.due_at) - FIND_MARGIN
    uncertain = engine.store.deliveries.uncertain_since(delivery_id) or now
    minutes = channel.settings.settle_window()
    deadline = uncertain + timedelta(minutes=minutes)
    progress = Progress(delivery.progress)
    progress.setdefault("idempotency_key", engine.idempotency_key(delivery))
    lookup_failed = False
    try:
        found = channel.find(post, since, progress)
    except (ChannelError, NotImplementedError) as exc:
        if isinstance(exc, Permanent):
            log.warning("delivery %s: lookup refused: %s", delivery_id, exc)
        found = Undecided(reason=f"查询失败（lookup failed）：{exc}")
        lookup_failed = True
    if isinstance(found, Published):
        state = settle(
            (found.remote_id, found.remote_url), decided=True, reason="found on the platform"
        )
        log.info("delivery %s: found on %s as %s", delivery_id, delivery.channel, found.remote_id)
        return state
    if isinstance(found, Processing):
        state = settle(
            None,
            decided=True,
            reason="the platform is still working on the accepted request; polling it",
            poll_at=now + timedelta(seconds=found.poll_after_seconds),
            job=found.progress,
        )
        log.info(
            "delivery %s: %s has the request as a job; polling it", delivery_id, delivery.channel
        )
        return state
    if found is None:
        state = settle(None, decided=True, reason="proven absent on the platform")
        log.info(
            "delivery %s: proven absent on %s; queued for a new attempt",
            delivery_id,
            delivery.channel,
        )
        return state
    # Undecided: never absent. Look again with backoff until settle_minutes have passed.
    tries_so_far = delivery.reconcile_tries
    too_many = lookup_failed and tries_so_far + 1 >= engine.settings.reconcile_max_tries
    if now >= deadline or too_many:
        title, body = _attention_text(
            language,
            delivery_id=delivery_id,
            post_id=delivery.post_id,
            channel=delivery.channel,
            since=_local(engine, uncertain),
            minutes=minutes,
            undecided=found,
            last_error=delivery.last_error,
            situation="failing" if too_many and now < deadline else "settled",
        )
        why = (
            f"lookups failed {tries_so_far + 1} times: {found.reason}"
            if too_many and now < deadline
            else f"still undecided after settle_minutes ({minutes:g}): {found.reason}"
        )
        needs_attention(why, title, body)
        log.warning("delivery %s: %s; a person must decide", delivery_id, why)
        return "needs_attention"
    tries = engine.store.deliveries.note_reconcile_try(
        delivery_id=delivery_id,
        now=now,
        error=f"undecided: {found.reason}"[:1000],
        next_at=next_look(
            now,
            base_seconds=engine.settings.reconcile_after_seconds,
            tries=tries_so_far,
            deadline=deadline,
        ),
    )
    log.warning(
        "delivery %s: cannot tell yet whether %s has it (%s); look %d, a person is asked after %s",
        delivery_id,
        delivery.channel,
        found.reason,
        tries,
        _local(engine, deadline),
    )
    return "retry"


def _local(engine: Engine, when: datetime) -> str:
    """A time as people read it: the configured zone."""
    return show(when, engine.app.tz)


def poll_processing(engine: Engine) -> int:
    """Poll every due ``processing`` delivery once. Several daemons (or parallel
    ``run --once``) may poll the same delivery: whoever records second finds it settled
    and skips it (logged at debug), as losing any other race between daemons is."""
    now = engine.clock()
    rows = engine.store.deliveries.due_ids("processing", now)
    done = 0
    for row in rows:
        if engine.stopping.is_set():
            break
        try:
            if _poll_one(engine, row, now):
                done += 1
        except InvalidTransition as exc:
            log.debug("delivery %s: settled by another daemon meanwhile (%s); skipped", row, exc)
    return done


def _poll_one(engine: Engine, delivery_id: int, now: datetime) -> bool:
    """Poll one delivery; True when it reached a final state here."""
    delivery = engine.store.deliveries.get(delivery_id)
    if delivery.state != "processing":
        raise InvalidTransition(f"delivery {delivery_id} is {delivery.state}, not processing")
    channel = engine.app.channels.get(delivery.channel)
    if channel is None:
        return False
    try:
        result = channel.poll(delivery)
    except Permanent as exc:
        engine.store.deliveries.record_polled(
            delivery_id=delivery.id, actor=engine.worker, now=now, failed=str(exc)
        )
        return True
    except (ChannelError, NotImplementedError) as exc:
        log.warning("delivery %s: poll failed (%s); polling again later", delivery.id, exc)
        engine.store.deliveries.record_polled(
            delivery_id=delivery.id,
            actor=engine.worker,
            now=now,
            poll_at=now + timedelta(seconds=60),
        )
        return False
    if isinstance(result, Published):
        engine.store.deliveries.record_polled(
            delivery_id=delivery.id,
            actor=engine.worker,
            now=now,
            published=(result.remote_id, result.remote_url),
        )
        return True
    if isinstance(result, Processing):
        engine.store.deliveries.record_polled(
            delivery_id=delivery.id,
            actor=engine.worker,
            now=now,
            poll_at=now + timedelta(seconds=bounded_wait(result.poll_after_seconds)),
        )
    return False


def reconcile_retraction(engine: Engine, delivery: Any, channel: Any) -> str:
    """A delete (or withdrawal notice) whose answer was lost (docs/delivery.md §14.3): settled
    by looking. Gone -> retracted; provably still there -> queued (deleted again, which is
    harmless); cannot tell -> look again with backoff, then a person after settle_minutes. An
    idempotent channel (feed) simply removes again; a channel that cannot look (robots) goes
    to a person at once."""
    from kepubot.channels.base import Retracted
    from kepubot.services.alerts import raise_alert

    now = engine.clock()
    delivery_id = delivery.id

    def settle(gone: bool, *, decided: bool, reason: str) -> str:
        return engine.store.deliveries.record_reconciled(
            delivery_id=delivery_id,
            actor=engine.worker,
            now=now,
            found=(delivery.remote_id or "", delivery.remote_url) if gone else None,
            decided=decided,
            reason=reason,
        )

    def to_person(reason: str) -> str:
        state = settle(False, decided=False, reason=reason)
        raise_alert(
            engine.app,
            key=f"attention:{delivery_id}",
            now=now,
            title=f"kepubot：撤回任务 {delivery_id} 需人工处理",
            body=f"稿件 {delivery.post_id} 在渠道 {delivery.channel} 的撤回结果未知：{reason}。"
            f"\n请到平台核实（{delivery.remote_url or delivery.remote_id or ''}），然后运行"
            f" `kepubot delivery resolve {delivery_id} --retracted` 或 `--not-retracted`。",
        )
        return state

    if channel.capabilities.idempotent:
        return settle(False, decided=True, reason="removing again is harmless on this channel")
    if not channel.capabilities.find_retracted:
        return to_person(f"{delivery.channel} cannot look up whether the retraction went out")
    uncertain = engine.store.deliveries.uncertain_since(delivery_id) or now
    minutes = channel.settings.settle_window()
    deadline = uncertain + timedelta(minutes=minutes)
    progress = Progress(delivery.progress)
    try:
        found = channel.find_retracted(delivery, progress)
    except (ChannelError, NotImplementedError) as exc:
        found = Undecided(reason=f"查询失败（lookup failed）：{exc}")
    if isinstance(found, Retracted):
        log.info("delivery %s: gone from %s; retracted", delivery_id, delivery.channel)
        return settle(True, decided=True, reason="looked: gone from the platform")
    if found is None:
        log.info("delivery %s: still on %s; deleting again", delivery_id, delivery.channel)
        return settle(False, decided=True, reason="looked: still on the platform")
    if now >= deadline:
        return to_person(f"still undecided after settle_minutes ({minutes:g}): {found.reason}")
    engine.store.deliveries.note_reconcile_try(
        delivery_id=delivery_id,
        now=now,
        error=f"undecided: {found.reason}"[:1000],
        next_at=next_look(
            now,
            base_seconds=engine.settings.reconcile_after_seconds,
            tries=delivery.reconcile_tries,
            deadline=deadline,
        ),
    )
    return "retry"
