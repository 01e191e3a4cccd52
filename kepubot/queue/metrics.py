"""Metric snapshots and the collection cadence (SQL side).

A published delivery walks a list of collection points (``published_at`` + each cadence
step). The trigger of migration 5 sets ``next_metrics_at = published_at`` when a delivery is
published: that first mark means "plan the points". ``metrics_latest`` keeps the newest
snapshot per delivery so reports never scan history.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from kepubot.models import Delivery, MetricSnapshot
from kepubot.queue import deliveries
from kepubot.queue.db import dialect, skip_locked, transaction
from kepubot.timeutil import from_db, to_db

FIELDS = ("views", "likes", "comments", "shares", "favorites")


def collection_points(
    published_at: datetime, cadence_seconds: list[float], *, daily: bool, daily_days: int
) -> list[datetime]:
    """When to collect: the cadence, or for daily platforms once a day for ``daily_days`` days
    followed by the cadence points after that."""
    offsets: list[float] = []
    if daily and daily_days > 0:
        offsets = [86400.0 * d for d in range(1, daily_days + 1)]
        offsets += [s for s in cadence_seconds if s > offsets[-1]]
    else:
        offsets = list(cadence_seconds)
    return [published_at + timedelta(seconds=s) for s in offsets]


def due(
    conn: sqlite3.Connection, *, now: datetime, limit: int, skip_channels: set[str]
) -> dict[str, list[Delivery]]:
    rows = conn.execute(
        f"SELECT {deliveries._COLUMNS}, metrics_step FROM deliveries INDEXED BY deliveries_metrics_due"
        " WHERE state = 'published' AND next_metrics_at IS NOT NULL AND next_metrics_at <= ?"
        " ORDER BY next_metrics_at LIMIT ?",
        (to_db(now), limit),
    ).fetchall()
    by_channel: dict[str, list[Delivery]] = {}
    for row in rows:
        if row["channel"] in skip_channels:
            continue
        by_channel.setdefault(row["channel"], []).append(deliveries.from_row(row))
    return by_channel


def claim(
    conn: sqlite3.Connection, ids: list[int], *, now: datetime, hold_seconds: float
) -> list[int]:
    """Push the due points of ``ids`` out by ``hold_seconds`` so another daemon does not collect
    the same ones meanwhile; returns the ids this process got.

    Shared on PostgreSQL (docs/architecture.md §11.3): the rows are first locked in id order,
    passing over those another collector holds (it is claiming or storing them), so the
    UPDATE waits for no one and two claims never deadlock; its WHERE then takes only points
    still due."""
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    with transaction(conn, shared=True):
        if dialect(conn) == "postgresql":
            ids = [
                r[0]
                for r in conn.execute(
                    f"SELECT id FROM deliveries WHERE id IN ({marks}) ORDER BY id{skip_locked(conn)}",
                    ids,
                )
            ]
            if not ids:
                return []
            marks = ", ".join("?" for _ in ids)
        rows = conn.execute(
            f"UPDATE deliveries SET next_metrics_at = ? WHERE id IN ({marks})"
            " AND state = 'published' AND next_metrics_at <= ? RETURNING id",
            (to_db(now + timedelta(seconds=hold_seconds)), *ids, to_db(now)),
        ).fetchall()
    return [r[0] for r in rows]


def schedule(
    conn: sqlite3.Connection, delivery_id: int, next_at: datetime | None, step: int
) -> None:
    # shared on PostgreSQL: one single-row UPDATE, nothing read (docs/architecture.md §11.3)
    with transaction(conn, shared=True):
        conn.execute(
            "UPDATE deliveries SET next_metrics_at = ?, metrics_step = ? WHERE id = ?",
            (to_db(next_at) if next_at else None, step, delivery_id),
        )


def unschedule(conn: sqlite3.Connection, ids: list[int]) -> None:
    """Stop the cadence of deliveries on channels that have no metrics (one transaction;
    exclusive on PostgreSQL: it locks many rows in no set order, docs/architecture.md §11.3)."""
    if not ids:
        return
    marks = ", ".join("?" for _ in ids)
    with transaction(conn):
        conn.execute(f"UPDATE deliveries SET next_metrics_at = NULL WHERE id IN ({marks})", ids)


def store(
    conn: sqlite3.Connection,
    delivery_id: int,
    snapshot: MetricSnapshot,
    *,
    now: datetime,
    next_at: datetime | None,
    step: int,
    point_at: datetime | None = None,
) -> bool:
    """One snapshot, the latest-snapshot row and the next point, in one transaction.

    ``point_at``: the collection point the snapshot answers (None for one taken by hand). A
    point has at most one snapshot per delivery (migration 26): when another collector stored
    it already, only the next point is written and this returns False.

    Shared on PostgreSQL (docs/architecture.md §11.3): the delivery's row is updated first and
    held until COMMIT, so a second collector of the same point waits and then finds the
    point's snapshot there (the unique index, DO NOTHING); the upsert of the latest row is
    one statement."""
    values = [getattr(snapshot, f) for f in FIELDS]
    with transaction(conn, shared=True):
        conn.execute(
            "UPDATE deliveries SET next_metrics_at = ?, metrics_step = ? WHERE id = ?",
            (to_db(next_at) if next_at else None, step, delivery_id),
        )
        row = conn.execute(
            "INSERT INTO metrics (delivery_id, collected_at, views, likes, comments, shares,"
            " favorites, raw, point_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (delivery_id, point_at) WHERE point_at IS NOT NULL DO NOTHING"
            " RETURNING id",
            (
                delivery_id,
                to_db(now),
                *values,
                json.dumps(snapshot.raw, ensure_ascii=False, default=str),
                to_db(point_at) if point_at else None,
            ),
        ).fetchone()
        if row is None:
            return False
        metrics_id = row[0]
        conn.execute(
            "INSERT INTO metrics_latest (delivery_id, metrics_id, collected_at, views, likes,"
            " comments, shares, favorites) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(delivery_id) DO UPDATE SET metrics_id = excluded.metrics_id,"
            " collected_at = excluded.collected_at, views = excluded.views, likes = excluded.likes,"
            " comments = excluded.comments, shares = excluded.shares, favorites = excluded.favorites",
            (delivery_id, metrics_id, to_db(now), *values),
        )
    return True


def planned(conn: sqlite3.Connection, delivery_id: int) -> tuple[datetime | None, int]:
    """A delivery's next collection point and its step index (None, 0 when none is planned)."""
    row = conn.execute(
        "SELECT next_metrics_at, metrics_step FROM deliveries WHERE id = ?", (delivery_id,)
    ).fetchone()
    if row is None:
        return None, 0
    return (from_db(row[0]) if row[0] else None), row[1] or 0


def snapshots(conn: sqlite3.Connection, delivery_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT collected_at, views, likes, comments, shares, favorites FROM metrics"
        " WHERE delivery_id = ? ORDER BY collected_at",
        (delivery_id,),
    )
    return [dict(r) for r in rows]


def store_account(
    conn: sqlite3.Connection, channel: str, day: str, figures: dict[str, Any], now: datetime
) -> None:
    followers = figures.get("followers")
    gained = figures.get("followers_gained")
    if gained is None and followers is not None:
        previous = conn.execute(
            "SELECT followers FROM account_metrics WHERE channel = ? AND day < ?"
            " AND followers IS NOT NULL ORDER BY day DESC LIMIT 1",
            (channel, day),
        ).fetchone()
        gained = followers - previous[0] if previous else None
    with transaction(conn):
        conn.execute(
            "INSERT INTO account_metrics (channel, day, followers, followers_gained, raw, collected_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(channel, day) DO UPDATE SET"
            " followers = excluded.followers, followers_gained = excluded.followers_gained,"
            " raw = excluded.raw, collected_at = excluded.collected_at",
            (
                channel,
                day,
                followers,
                gained,
                json.dumps(figures, ensure_ascii=False, default=str),
                to_db(now),
            ),
        )


def account_collected(conn: sqlite3.Connection, channel: str, day: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM account_metrics WHERE channel = ? AND day = ?", (channel, day)
        ).fetchone()
        is not None
    )


def latest_for_post(conn: sqlite3.Connection, post_id: int) -> dict[int, dict[str, Any]]:
    """The latest figures of each of a post's deliveries: delivery id -> {collected_at,
    source, views, likes, comments, shares, favorites} (None where the platform gives none)."""
    rows = conn.execute(
        "SELECT m.delivery_id, m.collected_at, m.source, m.views, m.likes, m.comments,"
        " m.shares, m.favorites FROM metrics_latest m JOIN deliveries d ON d.id = m.delivery_id"
        " WHERE d.post_id = ?",
        (post_id,),
    )
    return {row[0]: dict(row) for row in rows}
