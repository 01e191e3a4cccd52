"""The report's reads: deliveries published in a period with their latest snapshot (an
indexed range plus a primary-key join, so report time does not grow with snapshot history)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any

from kepubot.timeutil import to_db


def _published(
    columns: str, start: datetime, end: datetime, channel: str | None, *, join_posts: bool
) -> tuple[str, list[Any]]:
    """SELECT ``columns`` over the deliveries published in [start, end) with their latest
    snapshot (``m``), optionally their post (``p``): one range of deliveries_published."""
    sql = (
        f"SELECT {columns} FROM deliveries d INDEXED BY deliveries_published"
        + (" JOIN posts p ON p.id = d.post_id" if join_posts else "")
        + " LEFT JOIN metrics_latest m ON m.delivery_id = d.id"
        " WHERE d.state = 'published' AND d.published_at >= ? AND d.published_at < ?"
    )
    args: list[Any] = [to_db(start), to_db(end)]
    if channel:
        sql += " AND d.channel = ?"
        args.append(channel)
    return sql, args


def published_rows(
    conn: sqlite3.Connection, start: datetime, end: datetime, channel: str | None
) -> list[dict[str, Any]]:
    sql, args = _published(
        "d.id, d.post_id, d.channel, d.published_at, d.remote_url, p.title, p.author,"
        " p.tags, m.views, m.likes, m.comments, m.shares, m.favorites, m.collected_at",
        start,
        end,
        channel,
        join_posts=True,
    )
    rows = []
    # tag lists repeat across a post's deliveries and across posts: decode each text once
    # (the lists are shared between rows and only read)
    decoded: dict[str, list[str]] = {}
    for r in conn.execute(sql + " ORDER BY d.published_at, d.id", args):
        row = dict(r)
        raw = row["tags"] or "[]"
        tags = decoded.get(raw)
        if tags is None:
            tags = decoded[raw] = json.loads(raw)
        row["tags"] = tags
        rows.append(row)
    return rows


def period_totals(
    conn: sqlite3.Connection,
    start: datetime,
    end: datetime,
    channel: str | None,
    tag: str | None,
) -> dict[str, Any]:
    """The sums of ``published_rows`` (with the report's tag filter) in one aggregate, for
    a period whose totals are all a report needs (the previous period of a comparison):
    posts, deliveries, each metric (NULL when no delivery reported it), and the views and
    interactions of the deliveries that report views (for the engagement rate)."""
    sql, args = _published(
        "COUNT(DISTINCT d.post_id) AS posts, COUNT(*) AS deliveries,"
        " SUM(m.views) AS views, SUM(m.likes) AS likes, SUM(m.comments) AS comments,"
        " SUM(m.shares) AS shares, SUM(m.favorites) AS favorites,"
        " SUM(CASE WHEN m.views IS NOT NULL THEN COALESCE(m.likes, 0) + COALESCE(m.comments, 0)"
        "   + COALESCE(m.shares, 0) + COALESCE(m.favorites, 0) END) AS viewed_interactions,"
        " COUNT(m.views) AS viewed_deliveries",
        start,
        end,
        channel,
        join_posts=False,
    )
    if tag:
        sql += (
            " AND EXISTS (SELECT 1 FROM post_tags pt WHERE pt.tag = ? AND pt.post_id = d.post_id)"
        )
        args.append(tag)
    return dict(conn.execute(sql, args).fetchone())


def trouble_counts(
    conn: sqlite3.Connection, start: datetime, end: datetime, channel: str | None
) -> dict[str, dict[str, int]]:
    """Deliveries due in the period that failed or need a person, per channel."""
    sql = (
        "SELECT channel, state, COUNT(*) FROM deliveries"
        " WHERE state IN ('failed', 'needs_attention') AND due_at >= ? AND due_at < ?"
    )
    args: list[Any] = [to_db(start), to_db(end)]
    if channel:
        sql += " AND channel = ?"
        args.append(channel)
    out: dict[str, dict[str, int]] = {}
    for name, state, count in conn.execute(sql + " GROUP BY channel, state", args):
        out.setdefault(name, {})[state] = count
    return out


def followers_gained(
    conn: sqlite3.Connection, first_day: str, last_day: str, channel: str | None
) -> dict[str, int | None]:
    sql = (
        "SELECT channel, SUM(followers_gained), COUNT(followers_gained) FROM account_metrics"
        " WHERE day >= ? AND day <= ?"
    )
    args: list[Any] = [first_day, last_day]
    if channel:
        sql += " AND channel = ?"
        args.append(channel)
    return {
        name: (int(total) if count else None)
        for name, total, count in conn.execute(sql + " GROUP BY channel", args)
    }


def retracted_posts(
    conn: sqlite3.Connection,
    start: datetime,
    end: datetime,
    channel: str | None,
    tag: str | None = None,
) -> set[int]:
    """Posts first published in [start, end) that have since been (or are being) taken back
    on a channel (docs/delivery.md §14.4): a retraction keeps the delivery's published_at."""
    sql = (
        "SELECT DISTINCT d.post_id FROM deliveries d WHERE d.kind = 'retract'"
        " AND d.published_at >= ? AND d.published_at < ?"
    )
    args: list[Any] = [to_db(start), to_db(end)]
    if channel:
        sql += " AND d.channel = ?"
        args.append(channel)
    if tag:
        sql += (
            " AND EXISTS (SELECT 1 FROM post_tags pt WHERE pt.tag = ? AND pt.post_id = d.post_id)"
        )
        args.append(tag)
    return {int(r[0]) for r in conn.execute(sql, args)}
