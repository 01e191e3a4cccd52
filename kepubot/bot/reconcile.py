"""Expired leases and unknown outcomes -> ask the platform; processing -> poll.

Only ``unknown`` needs the platform's help. An idempotent channel (feed) simply publishes
again. A channel that can look (``find``) decides published / absent; absent is trusted only
after ``reconcile_after_seconds`` (platforms index new posts with a delay). A channel that
cannot look sends the delivery to a person (``needs_attention``), with an alert.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kepubot.channels.base import Processing, Progress, Published
from kepubot.errors import ChannelError, InvalidTransition, Permanent
from kepubot.queue import deliveries

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
    host = socket.gethostname()
    dead = []
    for owner in deliveries.lease_owners(engine.conn()):
        owner_host, _, pid_text = owner.rpartition(":")
        if owner_host != host or not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        if not _pid_alive(int(pid_text)):
            dead.append(owner)
    return dead


def expire(engine: Engine) -> tuple[int, int]:
    released, unknown = deliveries.expire_leases(
        engine.conn(), now=engine.clock(), actor=engine.worker, dead_owners=dead_owners(engine)
    )
    if released or unknown:
        log.warning(
            "leases expired: %d claims back in the queue, %d sends now unknown", released, unknown
        )
    return released, unknown


def reconcile_unknown(engine: Engine) -> dict[str, int]:
    conn = engine.conn()
    now = engine.clock()
    # not_before of an unknown delivery is when to look (again): record_unknown sets it
    # reconcile_after_seconds ahead, and each undecided lookup pushes it further out
    rows = deliveries.due_ids(conn, "unknown", now)
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


def reconcile_one(engine: Engine, delivery_id: int) -> str:
    from kepubot.bot.watchdog import raise_alert
    from kepubot.queue.posts import get_post

    conn = engine.conn()
    now = engine.clock()
    delivery = deliveries.get(conn, delivery_id)
    channel = engine.app.channels.get(delivery.channel)
    if channel is None:
        return "skipped"

    def settle(found: tuple[str, str | None] | None, *, decided: bool, reason: str) -> str:
        return deliveries.record_reconciled(
            conn,
            delivery_id=delivery_id,
            actor=engine.worker,
            now=now,
            found=found,
            decided=decided,
            reason=reason,
        )

    def needs_attention(reason: str, body: str) -> str:
        state = settle(None, decided=False, reason=reason)
        raise_alert(
            engine.app,
            conn,
            key=f"attention:{delivery_id}",
            now=now,
            title=f"kepubot: delivery {delivery_id} needs attention",
            body=f"Post {delivery.post_id} on {delivery.channel}: {body}",
        )
        return state

    if channel.idempotent:
        state = settle(None, decided=True, reason="publishing again is harmless on this channel")
        log.info(
            "delivery %s: idempotent channel %s, publishing again", delivery_id, delivery.channel
        )
        return state
    if not channel.can_find:
        return needs_attention(
            f"{delivery.channel} cannot look up earlier posts; check it by hand, then run"
            f" `kepubot delivery resolve {delivery_id} --published URL | --not-published`",
            "the platform may or may not have it, and this channel cannot look. Check, then"
            f" `kepubot delivery resolve {delivery_id}`.",
        )
    post = get_post(engine.app, delivery.post_id, conn)
    started = deliveries.first_attempt_started(conn, delivery_id)
    since = (started or delivery.due_at) - FIND_MARGIN
    progress = Progress(delivery.progress)
    progress.setdefault("idempotency_key", engine.idempotency_key(delivery))
    try:
        found = channel.find(post, since, progress)
    except (ChannelError, NotImplementedError) as exc:
        base = engine.settings.reconcile_after_seconds or 1.0
        wait = min(LOOKUP_CAP_SECONDS, base * 2**delivery.reconcile_tries)
        tries = deliveries.note_reconcile_try(
            conn,
            delivery_id=delivery_id,
            now=now,
            error=f"lookup failed: {exc}",
            next_at=now + timedelta(seconds=wait),
        )
        if tries < engine.settings.reconcile_max_tries:
            log.warning("delivery %s: cannot look it up yet (%s); try %d", delivery_id, exc, tries)
            return "retry"
        needs_attention(
            f"the platform could not be asked after {tries} tries: {exc}",
            f"lookups keep failing ({exc}).",
        )
        return "needs_attention"
    if found is not None:
        state = settle(
            (found.remote_id, found.remote_url), decided=True, reason="found on the platform"
        )
        log.info("delivery %s: found on %s as %s", delivery_id, delivery.channel, found.remote_id)
        return state
    state = settle(None, decided=True, reason="confirmed absent on the platform")
    log.info("delivery %s: not on %s; queued for a new attempt", delivery_id, delivery.channel)
    return state


def poll_processing(engine: Engine) -> int:
    """Poll every due ``processing`` delivery once. Several daemons (or parallel
    ``run --once``) may poll the same delivery: whoever records second finds it settled
    and skips it (logged at debug), as losing any other race between daemons is."""
    conn = engine.conn()
    now = engine.clock()
    rows = deliveries.due_ids(conn, "processing", now)
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
    conn = engine.conn()
    delivery = deliveries.get(conn, delivery_id)
    if delivery.state != "processing":
        raise InvalidTransition(f"delivery {delivery_id} is {delivery.state}, not processing")
    channel = engine.app.channels.get(delivery.channel)
    if channel is None:
        return False
    try:
        result = channel.poll(delivery)
    except Permanent as exc:
        deliveries.record_polled(
            conn, delivery_id=delivery.id, actor=engine.worker, now=now, failed=str(exc)
        )
        return True
    except (ChannelError, NotImplementedError) as exc:
        log.warning("delivery %s: poll failed (%s); polling again later", delivery.id, exc)
        deliveries.record_polled(
            conn,
            delivery_id=delivery.id,
            actor=engine.worker,
            now=now,
            poll_at=now + timedelta(seconds=60),
        )
        return False
    if isinstance(result, Published):
        deliveries.record_polled(
            conn,
            delivery_id=delivery.id,
            actor=engine.worker,
            now=now,
            published=(result.remote_id, result.remote_url),
        )
        return True
    if isinstance(result, Processing):
        deliveries.record_polled(
            conn,
            delivery_id=delivery.id,
            actor=engine.worker,
            now=now,
            poll_at=now + timedelta(seconds=result.poll_after_seconds),
        )
    return False
