"""Storage reads of the publishing calendar: the deliveries due or published in a period, with
the console's filters, and the due times taken on a channel near a moment (the min gap).

Functions whose first argument is a connection; reached through ``store.calendar``
(``kepubot.queue.repos.Calendar``). The calendar page's grouping lives in
``kepubot.services.calendar``, the slot rules in ``kepubot.services.schedule``.

A period is two index ranges (docs/operations.md §12): the deliveries published in it
(``deliveries_published``: state, published_at, channel, post_id) and those due in it that
are neither published nor cancelled (``deliveries_due_open``, a partial index of those only:
due_at, channel, state, post_id). Both carry every column a count and its filters by
channel, state or tag read (migration 27), so counting a crowded period reads index entries
only, no table row (an author filter adds a posts_author key lookup per entry). A tag on few
posts is read from ``post_tags`` first (its posts' deliveries, whatever the period); a
common tag is a ``post_tags`` primary-key probe per delivery of the period.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from kepubot.timeutil import from_db, to_db

#: A tag on at most this many posts is served from post_tags (its posts' deliveries); a more
#: common one is checked per delivery of the period.
RARE_TAG_POSTS = 300

_PUBLISHED = "d.state = 'published' AND d.published_at >= ? AND d.published_at < ?"
_PUBLISHED_HOURS = (
    "d.state = 'published' AND substr(d.published_at, 1, 13) >= ?"
    " AND substr(d.published_at, 1, 13) < ?"
)
_DUE = "d.due_at >= ? AND d.due_at < ? AND d.state NOT IN ('published', 'cancelled')"

_Filters = tuple[str | None, str | None, str | None, str | None]  # channel, state, author, tag


def _rare_tag(conn: sqlite3.Connection, tag: str) -> bool:
    """Whether ``tag`` is on at most RARE_TAG_POSTS posts (reads at most that many + 1 keys)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM post_tags WHERE tag = ? LIMIT ?) AS few",
        (tag, RARE_TAG_POSTS + 1),
    ).fetchone()
    return int(row[0]) <= RARE_TAG_POSTS


def _branches(
    conn: sqlite3.Connection,
    columns: str,
    start: datetime,
    end: datetime,
    filters: _Filters,
    *,
    group_by: str = "",
    hourly: bool = False,
) -> tuple[list[str], list[Any]]:
    """One SELECT per half of the period that can match (a state filter rules one half out),
    with its arguments. ``columns`` and ``group_by`` name the half's time as ``{at}``
    (published_at or due_at, so that each half reads only its own index's columns), its
    state as ``{state}`` and ``{by_state}`` (", d.state", or nothing in the published half).
    ``hourly``: the published half is grouped by hour and channel, and the period's ends are
    whole hours; it then walks deliveries_published_hour, whose order is that grouping's."""
    channel, state, author, tag = filters
    by_tag = bool(tag) and _rare_tag(conn, tag or "")
    # the posts are joined only when a column or a filter needs them: a count of a crowded
    # period by channel, state or tag reads the two indexes alone
    joined = "p." in columns or bool(author)
    if by_tag:  # the tag's few posts drive: post_tags first (CROSS JOIN keeps the order),
        # then each post's deliveries by post_id (not a walk of the period's range per post)
        first, first_args = "t.tag = ? AND d.post_id = t.post_id AND ", [tag]
    else:
        first, first_args = "", []
    # a count by author reads (author, id) keys, not the posts' rows (bodies and all)
    keys_only = "" if "p." in columns else " INDEXED BY posts_author"
    posts = f" JOIN posts p{keys_only} ON p.id = d.post_id" if joined else ""
    extra, extra_args = "", []
    if channel:
        extra += " AND d.channel = ?"
        extra_args.append(channel)
    if state:
        extra += " AND d.state = ?"
        extra_args.append(state)
    if author:
        extra += " AND p.author = ?"
        extra_args.append(author)
    if tag and not by_tag:
        extra += " AND EXISTS (SELECT 1 FROM post_tags t WHERE t.tag = ? AND t.post_id = d.post_id)"
        extra_args.append(tag)
    selects: list[str] = []
    args: list[Any] = []
    for at, where in (("d.published_at", _PUBLISHED), ("d.due_at", _DUE)):
        if state and (state == "published") != (at == "d.published_at"):
            continue  # a delivery in this state is never in this half
        # each half walks its own range: without the hint SQLite may take a channel's whole
        # history (deliveries_channel) for "channel = ?"; a state filter on the due half is
        # an equality range of its own (deliveries_state_due) and is left to the planner
        ends = [to_db(start), to_db(end)]
        if by_tag:
            index = "deliveries_post_kind"
        elif at == "d.published_at" and hourly:
            # the same range on whole hours, on the hour expression: rows come out grouped
            index, where = "deliveries_published_hour", _PUBLISHED_HOURS
            ends = [e[:13] for e in ends]
        elif at == "d.published_at":
            index = "deliveries_published"
        else:
            index = "" if state else "deliveries_due_open"
        hint = f" INDEXED BY {index}" if index else ""
        source = f"{'post_tags t CROSS JOIN ' if by_tag else ''}deliveries d{hint}{posts}"
        # the published half's state is a constant: grouping by it too would only make the
        # sort keys longer (a third of a crowded count's time)
        names = {
            "at": at,
            "state": "'published'" if at == "d.published_at" else "d.state",
            "by_state": "" if at == "d.published_at" else ", d.state",
        }
        grouped = f" GROUP BY {group_by.format(**names)}" if group_by else ""
        selects.append(
            f"SELECT {columns.format(**names)} FROM {source} WHERE {first}{where}{extra}{grouped}"
        )
        args += [*first_args, *ends, *extra_args]
    return selects, args


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
) -> list[dict[str, Any]] | None:
    """The deliveries of the period (post_id, channel, state, at, title, author), in no
    order, or None when there are more than ``limit``: then at most ``limit`` + 1 index
    entries were read and no post (the caller counts the period instead; an order would sort
    the whole crowded period first)."""
    selects, args = _branches(
        conn,
        "d.post_id AS post_id, d.channel AS channel, d.state AS state, {at} AS at",
        start,
        end,
        (channel, state, author, tag),
    )
    if not selects:
        return []
    rows = conn.execute(f"{' UNION ALL '.join(selects)} LIMIT ?", [*args, limit + 1]).fetchall()
    if len(rows) > limit:
        return None
    ids = sorted({r["post_id"] for r in rows})
    posts: dict[int, tuple[str, str]] = {}
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join("?" for _ in chunk)
        for post in conn.execute(
            f"SELECT id, title, author FROM posts WHERE id IN ({marks})", chunk
        ).fetchall():
            posts[post["id"]] = (post["title"], post["author"])
    found = []
    for r in rows:
        title, by = posts[r["post_id"]]
        found.append({**dict(r), "at": from_db(r["at"]), "title": title, "author": by})
    return found


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
    few hundred rows, not one per delivery. A bucket may come twice (once per half of the
    period); the caller adds them up."""
    cut = f"substr({{at}}, 1, {int(width)})"
    selects, args = _branches(
        conn,
        f"{cut} AS bucket, d.channel AS channel, {{state}} AS state, COUNT(*) AS n",
        start,
        end,
        (channel, state, author, tag),
        group_by=f"{cut}, d.channel{{by_state}}",
        hourly=width == 13 and all(to_db(e)[13:] == ":00:00.000Z" for e in (start, end)),
    )
    if not selects:
        return []
    rows = conn.execute(" UNION ALL ".join(selects), args).fetchall()
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
