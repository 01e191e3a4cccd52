"""Metric collection on a cadence (lower priority than publishing: it runs in its own tick,
holds no send lease and takes no publishing tokens; an open breaker skips the channel).

Per due delivery: the collection points are ``published_at`` + each cadence step (daily
points first for platforms with daily data). A pass collects once for the newest point that
has passed and moves to the first point still ahead, so downtime is caught up without a
burst. A failed collection is logged and retried at the next point; one channel's failure
never blocks another's. A point gives at most one snapshot per delivery, also when two
collectors claimed it (docs/architecture.md §3.5).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from kepubot.channels.base import Channel
from kepubot.errors import ChannelError
from kepubot.models import Delivery
from kepubot.queue import metrics

if TYPE_CHECKING:
    from kepubot.app import App
    from kepubot.queue.store import Store


class Engine(Protocol):
    """What a collection pass needs: the daemon's engine, or ``Once`` for one pass outside it."""

    app: App
    store: Store
    stopping: threading.Event

    def clock(self) -> datetime: ...


log = logging.getLogger("kepubot.bot.collect")

HOLD_SECONDS = 600.0


def collects(channel: Channel) -> bool:
    return channel.capabilities.metrics


def _points(engine: Engine, channel: Channel, delivery: Delivery) -> list[datetime]:
    """The collection points of a published delivery."""
    settings = engine.app.config.data.metrics
    assert delivery.published_at is not None
    return metrics.collection_points(
        delivery.published_at,
        settings.cadence_seconds(),
        daily=channel.capabilities.daily_metrics,
        daily_days=settings.daily_days,
    )


def _plan(
    engine: Engine, channel: Channel, delivery: Delivery, now: datetime
) -> tuple[bool, datetime | None, int]:
    """(collect now?, next point, how many points have passed) for a due delivery; the point
    collected now is the last of those that passed (``_points(...)[step - 1]``)."""
    points = _points(engine, channel, delivery)
    passed = [p for p in points if p <= now]
    ahead = [p for p in points if p > now]
    next_at = ahead[0] if ahead else None
    return bool(passed), next_at, len(passed)


def collect_pass(engine: Engine) -> dict[str, int]:
    """One collection pass; returns counts for logs and tests."""
    now = engine.clock()
    settings = engine.app.config.data.metrics
    result: dict[str, int] = {"collected": 0, "failed": 0, "planned": 0}
    blocked = engine.store.limits.blocked_channels(now)
    due = engine.store.metrics.due(now=now, limit=settings.batch_limit * 10, skip_channels=blocked)
    for name, items in due.items():
        if engine.stopping.is_set():
            break
        channel = engine.app.channels.get(name)
        if channel is None:
            continue
        if not collects(channel):
            engine.store.metrics.unschedule([d.id for d in items])  # nothing to measure here
            continue
        to_collect: list[tuple[Delivery, datetime | None, int]] = []
        for delivery in items[: settings.batch_limit]:
            collect_now, next_at, step = _plan(engine, channel, delivery, now)
            if collect_now:
                to_collect.append((delivery, next_at, step))
            else:
                engine.store.metrics.schedule(delivery.id, next_at, step)
                result["planned"] += 1
        if not to_collect:
            continue
        got = set(
            engine.store.metrics.claim(
                [d.id for d, _, _ in to_collect], now=now, hold_seconds=HOLD_SECONDS
            )
        )
        batch = [(d, n, s) for d, n, s in to_collect if d.id in got]
        if not batch:
            continue
        try:
            figures = channel.metrics([d for d, _, _ in batch])
        except (ChannelError, NotImplementedError) as exc:
            log.warning(
                "metrics of %d deliveries on %s failed (%s); retrying at the next point",
                len(batch),
                name,
                exc,
            )
            for delivery, next_at, step in batch:
                engine.store.metrics.schedule(delivery.id, next_at, step)
            result["failed"] += len(batch)
            continue
        except Exception:
            log.exception("metrics on %s raised unexpectedly", name)
            for delivery, next_at, step in batch:
                engine.store.metrics.schedule(delivery.id, next_at, step)
            result["failed"] += len(batch)
            continue
        for delivery, next_at, step in batch:
            snapshot = figures.get(delivery.remote_id or "")
            if snapshot is None:
                log.warning(
                    "delivery %s: %s reported no figures for %s; next point %s",
                    delivery.id,
                    name,
                    delivery.remote_id,
                    next_at,
                )
                engine.store.metrics.schedule(delivery.id, next_at, step)
                result["failed"] += 1
                continue
            point = _points(engine, channel, delivery)[step - 1]
            if not engine.store.metrics.store(
                delivery.id, snapshot, now=now, next_at=next_at, step=step, point_at=point
            ):
                log.info(
                    "delivery %s: the point %s on %s was stored by another collector",
                    delivery.id,
                    point,
                    name,
                )
                continue
            result["collected"] += 1
    return result


def collect_accounts(engine: Engine) -> int:
    """Account-level figures (followers) once a day per channel that has them."""
    now = engine.clock()
    day = now.astimezone(engine.app.tz).strftime("%Y-%m-%d")
    blocked = engine.store.limits.blocked_channels(now)
    done = 0
    for name, channel in engine.app.channels.items():
        if not channel.capabilities.account_metrics or name in blocked:
            continue
        if engine.store.metrics.account_collected(name, day):
            continue
        try:
            figures = channel.account_metrics()
        except (ChannelError, NotImplementedError) as exc:
            log.warning("account figures of %s failed (%s); retrying later", name, exc)
            continue
        if figures:
            engine.store.metrics.store_account(name, day, figures, now)
            done += 1
    return done


class Once:
    """One collection pass outside the daemon (the console's 立即采集), at ``now``."""

    def __init__(self, app: App, now: datetime) -> None:
        self.app = app
        self.store = app.store
        self.now = now
        self.stopping = threading.Event()

    def clock(self) -> datetime:
        return self.now


#: who may start a collection by hand (docs/architecture.md §15.3)
COLLECT_ROLES = frozenset({"manager", "operator", "admin"})


def collect_now(
    app: App, actor: str, *, now: datetime, post_id: int | None = None
) -> dict[str, Any]:
    """A collection by hand (docs/architecture.md §15.3): with ``post_id``, the figures of that
    post's published deliveries at once, without waiting for their next cadence point (each
    keeps its schedule); without, one ordinary pass over everything due. Managers, operators
    and admins."""
    from kepubot.errors import NotAllowed

    if not app.roles(actor) & COLLECT_ROLES:
        raise NotAllowed(
            f"collecting figures needs the manager or operator role; {actor} has neither"
        )
    if post_id is None:
        result: dict[str, Any] = dict(collect_pass(Once(app, now)))
        result["deliveries"] = result["collected"] + result["failed"]
        return result
    blocked = app.store.limits.blocked_channels(now)
    by_channel: dict[str, list[Delivery]] = {}
    for delivery in app.store.deliveries.for_post(post_id):
        if delivery.state == "published" and delivery.kind != "retract" and delivery.remote_id:
            by_channel.setdefault(delivery.channel, []).append(delivery)
    result = {"collected": 0, "failed": 0, "skipped": [], "deliveries": 0}
    for name, batch in by_channel.items():
        channel = app.channels.get(name)
        if channel is None or not collects(channel) or name in blocked:
            result["skipped"].append(name)
            continue
        result["deliveries"] += len(batch)
        try:
            figures = channel.metrics(batch)
        except (ChannelError, NotImplementedError) as exc:
            log.warning("metrics of post %s on %s failed (%s)", post_id, name, exc)
            result["failed"] += len(batch)
            continue
        for delivery in batch:
            snapshot = figures.get(delivery.remote_id or "")
            if snapshot is None:
                result["failed"] += 1
                continue
            # each keeps its schedule: the snapshot is stored with its planned next point
            next_at, step = app.store.metrics.planned(delivery.id)
            app.store.metrics.store(delivery.id, snapshot, now=now, next_at=next_at, step=step)
            result["collected"] += 1
    return result
