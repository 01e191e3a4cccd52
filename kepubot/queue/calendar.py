"""Storage reads of the publishing calendar: the deliveries due or published in a period, with
the console's filters, and the due times taken on a channel near a moment (the min gap).

Functions whose first argument is a connection; reached through ``store.calendar``
(``kepubot.queue.repos.Calendar``). The calendar page's grouping lives in
``kepubot.services.calendar``, the slot rules in ``kepubot.services.schedule``.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from kepubot.timeutil import from_db, to_db

_AT = "CASE WHEN d.state = 'published' THEN d.published_at ELSE d.due_at END AS at"


def _where(
    channel: str | None, state: str | None, author: str | None, tag: str | None
) -> tuple[str, list[Any]]:
    sql, args = "", []
    if channel:
        sql += " AND d.channel = ?"
        args.append(channel)
    if state:
        sql += " AND d.state = ?"
        args.append(state)
    if author:
        sql += " AND p.author = ?"
        args.append(author)
    if tag:
        sql += " AND EXISTS (SELECT 1 FROM post_tags t WHERE t.tag = ? AND t.post_id = p.id)"
        args.append(tag)
    return sql, args


def _period(
    columns: str,
    start: datetime,
    end: datetime,
    filters: tuple[str | None, str | None, str | None, str | None],
) -> tuple[str, list[Any]]:
    """The deliveries published in [start, end) and those due in it that are not published
    or cancelled: two index ranges."""
    extra, extra_args = _where(*filters)
    # the posts are joined only when a column or a filter needs them (counting a crowded
    # period needs neither: one index range per half)
    joined = "p." in columns or "p." in extra
    source = "deliveries d JOIN posts p ON p.id = d.post_id" if joined else "deliveries d"
    sql = (
        f"SELECT {columns} FROM {source}"
        " WHERE d.state = 'published' AND d.published_at >= ? AND d.published_at < ?"
        f"{extra}"
        " UNION ALL "
        f"SELECT {columns} FROM {source}"
        " WHERE d.due_at >= ? AND d.due_at < ? AND d.state NOT IN ('published', 'cancelled')"
        f"{extra}"
    )
    return sql, [to_db(start), to_db(end), *extra_args] * 2


def entries(
    conn: sqlite3.Connection,
    start: datetime,
    end: datetime,
    *,
    channel: str | None = None,
    state: str | None = None,
    author: str | None = None,
    tag: str | None = None,
    limit: int,
) -> list[dict[str, Any]]:
    """At most ``limit`` deliveries of the period (post_id, channel, state, at, title,
    author), in no order: the caller wants them only when there are at most ``limit`` (an
    order would sort the whole crowded period first)."""
    sql, args = _period(
        f"d.post_id AS post_id, d.channel AS channel, d.state AS state, {_AT},"
        " p.title AS title, p.author AS author",
        start,
        end,
        (channel, state, author, tag),
    )
    rows = conn.execute(f"{sql} LIMIT ?", [*args, limit]).fetchall()
    return [{**dict(r), "at": from_db(r["at"])} for r in rows]


def counts(
    conn: sqlite3.Connection,
    start: datetime,
    end: datetime,
    *,
    width: int,
    channel: str | None = None,
    state: str | None = None,
    author: str | None = None,
    tag: str | None = None,
) -> list[tuple[str, str, str, int]]:
    """(bucket, channel, state, deliveries) of the period, a bucket being the stored ISO time
    text cut to ``width`` characters (13: the hour, 16: the minute): a crowded period is a
    few hundred rows, not one per delivery."""
    sql, args = _period(
        f"{_AT}, d.channel AS channel, d.state AS state", start, end, (channel, state, author, tag)
    )
    rows = conn.execute(
        f"SELECT substr(at, 1, {int(width)}) AS bucket, channel, state, COUNT(*) AS n"
        f" FROM ({sql}) AS period GROUP BY substr(at, 1, {int(width)}), channel, state",
        args,
    ).fetchall()
    return [(r["bucket"], r["channel"], r["state"], r["n"]) for r in rows]


def latest_due_between(
    conn: sqlite3.Connection, channel: str, start: datetime, end: datetime, *, post_id: int | None
) -> datetime | None:
    """The latest due time in (start, end) of a delivery on ``channel`` that is not cancelled
    or failed, of a post other than ``post_id``; None when there is none."""
    row = conn.execute(
        "SELECT MAX(due_at) FROM deliveries WHERE channel = ?"
        " AND state NOT IN ('cancelled', 'failed') AND due_at > ? AND due_at < ?"
        " AND post_id != ?",
        (channel, to_db(start), to_db(end), post_id or -1),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return datetime.strptime(row[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
