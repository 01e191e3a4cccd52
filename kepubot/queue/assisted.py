"""Assisted publishing tasks (docs/delivery.md §17): a person confirms or declines a delivery
in the state ``awaiting_person`` (待人工发布; migration 24), and figures come from an outlet's
data export or by hand, marked with their source.

This module is the storage side (docs/architecture.md §17); who may confirm, decline or enter
figures is kepubot/services/assisted.py.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from kepubot.models import Delivery, MetricSnapshot
from kepubot.queue import audit, deliveries
from kepubot.queue.metrics import FIELDS
from kepubot.timeutil import to_db

STATE_LABEL_ZH = "待人工发布"

#: What migration 24 allows, a frozen literal (docs/delivery.md §2.4): never the live table.
M024_STATES: tuple[str, ...] = (
    "pending",
    "queued",
    "claimed",
    "sending",
    "processing",
    "unknown",
    "needs_attention",
    "published",
    "failed",
    "cancelled",
    "retracted",
    "awaiting_person",
)
M024_TRANSITIONS: tuple[tuple[str, str], ...] = (
    ("sending", "awaiting_person"),  # the copy pack is written
    ("unknown", "awaiting_person"),  # reconciliation: find() saw the pack
    ("processing", "awaiting_person"),  # rows that waited in processing with the marker
    ("awaiting_person", "published"),  # a person confirmed with the URL
    ("awaiting_person", "failed"),  # a person declined, with the reason
    ("awaiting_person", "cancelled"),  # the post was cancelled before confirmation
)
_M018_CHECK_END = "'failed', 'cancelled', 'retracted'))"


def migrate_24(conn: Any, now_text: str) -> None:
    """Migration 24: ``awaiting_person`` becomes a delivery state. The state CHECK accepts one
    more value (SQLite: the table's definition edited in place with writable_schema and a
    schema_version bump, as migration 18 did; PostgreSQL: the constraint replaced by name), the
    transitions are allowed, and every delivery that waited in ``processing`` with
    ``progress["awaiting_person"]`` (issue 14's first form) moves to the new state, audited."""
    from kepubot.queue.db import dialect

    if dialect(conn) == "postgresql":
        states = ", ".join(f"'{s}'" for s in M024_STATES)
        conn.execute("ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check")
        conn.execute(
            "ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check"
            f" CHECK (state IN ({states}))"
        )
    else:
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'"
        ).fetchone()
        if row is None or _M018_CHECK_END not in row[0]:
            raise RuntimeError(
                "migration 24: the deliveries table is not the one migration 18 left"
            )
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute("PRAGMA writable_schema = ON")
        try:
            conn.execute(
                "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'deliveries'",
                (row[0].replace(_M018_CHECK_END, _M018_CHECK_END[:-2] + ", 'awaiting_person'))"),),
            )
            conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
        finally:
            conn.execute("PRAGMA writable_schema = OFF")
    rows = ", ".join(f"('{a}', '{b}')" for a, b in M024_TRANSITIONS)
    conn.execute(f"INSERT INTO delivery_transitions (from_state, to_state) VALUES {rows}")
    waiting = conn.execute(
        "SELECT id, post_id, progress FROM deliveries WHERE state = 'processing'"
        " AND kind = 'publish' ORDER BY id"
    ).fetchall()
    for row in waiting:
        delivery_id, post_id, progress = row[0], row[1], row[2]
        if not json.loads(progress or "{}").get("awaiting_person"):
            continue
        conn.execute(
            "UPDATE deliveries SET state = 'awaiting_person', updated_at = ?"
            " WHERE id = ? AND state = 'processing'",
            (now_text, delivery_id),
        )
        audit.append(
            conn,
            at=now_text,
            actor="migration 24",
            action="delivery.awaiting_person",
            post_id=post_id,
            delivery_id=delivery_id,
            detail={"from": "processing", "to": "awaiting_person", "how": "migration 24"},
        )


def record_confirmed(
    conn: sqlite3.Connection, delivery: Delivery, *, actor: str, url: str, now: datetime
) -> None:
    """awaiting_person (待人工发布) -> published at ``url``, in the caller's transaction."""
    deliveries._set_state(
        conn,
        delivery,
        "published",
        now=now,
        actor=actor,
        action="delivery.confirmed_by_person",
        extra_sets={"remote_id": url, "remote_url": url, "published_at": to_db(now)},
        detail={"url": url},
    )


def record_declined(
    conn: sqlite3.Connection, delivery: Delivery, *, actor: str, reason: str, now: datetime
) -> None:
    """awaiting_person (待人工发布) -> failed with the person's reason, in the caller's
    transaction."""
    deliveries._set_state(
        conn,
        delivery,
        "failed",
        now=now,
        actor=actor,
        action="delivery.declined_by_person",
        extra_sets={"error_kind": "permanent", "last_error": f"declined: {reason}"},
        detail={"reason": reason},
    )


def open_tasks(conn: sqlite3.Connection, channels: list[str]) -> list[Delivery]:
    if not channels:
        return []
    marks = ", ".join("?" for _ in channels)
    rows = conn.execute(
        f"SELECT {deliveries._COLUMNS} FROM deliveries WHERE state = 'awaiting_person'"
        f" AND channel IN ({marks}) ORDER BY due_at",
        channels,
    ).fetchall()
    return [deliveries.from_row(r) for r in rows]


def cancelled_since(
    conn: sqlite3.Connection, channels: list[str], since: datetime
) -> list[Delivery]:
    """Deliveries on ``channels`` cancelled (last updated) at or after ``since``, oldest id
    first: the tasks whose assignees may have to be told not to publish them."""
    if not channels:
        return []
    marks = ", ".join("?" for _ in channels)
    rows = conn.execute(
        f"SELECT {deliveries._COLUMNS} FROM deliveries WHERE state = 'cancelled'"
        f" AND channel IN ({marks}) AND updated_at >= ? ORDER BY id",
        [*channels, to_db(since)],
    ).fetchall()
    return [deliveries.from_row(r) for r in rows]


# --- figures from an export or by hand --------------------------------------------------------


def store_snapshot(
    conn: sqlite3.Connection,
    delivery_id: int,
    snapshot: MetricSnapshot,
    *,
    now: datetime,
    source: str,
    actor: str,
) -> None:
    """One snapshot marked with its ``source`` ('imported' or 'manual'), inside the caller's
    transaction; the latest-snapshot row follows it."""
    values = [getattr(snapshot, f) for f in FIELDS]
    raw = json.dumps({**snapshot.raw, "source": source}, ensure_ascii=False, default=str)
    metrics_id = conn.execute(
        "INSERT INTO metrics (delivery_id, collected_at, views, likes, comments, shares,"
        " favorites, raw, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (delivery_id, to_db(now), *values, raw, source),
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO metrics_latest (delivery_id, metrics_id, collected_at, views, likes,"
        " comments, shares, favorites, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(delivery_id) DO UPDATE SET metrics_id = excluded.metrics_id,"
        " collected_at = excluded.collected_at, views = excluded.views, likes = excluded.likes,"
        " comments = excluded.comments, shares = excluded.shares, favorites = excluded.favorites,"
        " source = excluded.source",
        (delivery_id, metrics_id, to_db(now), *values, source),
    )
    audit.append(
        conn,
        at=to_db(now),
        actor=actor,
        action=f"metrics.{source}",
        post_id=None,
        delivery_id=delivery_id,
        detail={f: getattr(snapshot, f) for f in FIELDS if getattr(snapshot, f) is not None},
    )


def published_on(conn: sqlite3.Connection, channel: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT d.id, d.remote_url, d.published_at, p.title FROM deliveries d"
        " JOIN posts p ON p.id = d.post_id WHERE d.channel = ? AND d.state = 'published'"
        " AND d.kind = 'publish'",
        (channel,),
    ).fetchall()
    return [dict(r) for r in rows]


def figure_sources(
    conn: sqlite3.Connection, start: datetime, end: datetime, channel: str | None
) -> dict[str, dict[str, int]]:
    """Per channel, how many deliveries published in [start, end) have figures that came
    from an import or by hand (reports mark them, docs/delivery.md §17.3)."""
    sql = (
        "SELECT d.channel, m.source, COUNT(*) FROM deliveries d"
        " JOIN metrics_latest m ON m.delivery_id = d.id"
        " WHERE d.state = 'published' AND d.published_at >= ? AND d.published_at < ?"
        " AND m.source != 'collected'"
    )
    args: list[Any] = [to_db(start), to_db(end)]
    if channel is not None:
        sql += " AND d.channel = ?"
        args.append(channel)
    out: dict[str, dict[str, int]] = {}
    for name, source, count in conn.execute(sql + " GROUP BY d.channel, m.source", args):
        out.setdefault(name, {})[source] = count
    return out
