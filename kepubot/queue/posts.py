"""Storage of posts, their channels and tags, and their reviews (docs/architecture.md §4, §17).

Functions whose first argument is a connection; the rest of kepubot reaches them through
``store.posts`` (``kepubot.queue.repos.Posts``), the workflow's rules through
``kepubot.services.posts``. No function here opens a transaction: the service groups its
writes (with their audit rows) in ``store.transaction()``. Every statement is portable SQL
(``?`` placeholders; ``INDEXED BY`` is dropped for PostgreSQL by ``kepubot.queue.pg``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kepubot.models import Media, Post, Review, Source
from kepubot.timeutil import from_db, to_db

COLUMNS = (
    "id, title, body, summary, link, tags, media, channels, variants, author, state,"
    " review_round, review_level, scheduled_at, next_slot, content_hash, approved_hash,"
    " created_at, updated_at, sources"
)
_QUALIFIED = ", ".join(f"posts.{c.strip()}" for c in COLUMNS.split(","))


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --- reading -----------------------------------------------------------------------------


def from_row(row: sqlite3.Row) -> Post:
    """The post of a row of ``COLUMNS`` (its media without their store file; the service
    fills those in from the media store)."""
    return Post(
        id=row["id"],
        title=row["title"],
        body=row["body"],
        summary=row["summary"],
        link=row["link"],
        tags=json.loads(row["tags"]),
        media=[Media(**item) for item in json.loads(row["media"])],
        channels=json.loads(row["channels"]),
        variants=json.loads(row["variants"]),
        sources=[Source(**s) for s in json.loads(row["sources"])],
        author=row["author"],
        state=row["state"],
        review_round=row["review_round"],
        review_level=row["review_level"],
        scheduled_at=from_db(row["scheduled_at"]) if row["scheduled_at"] else None,
        next_slot=bool(row["next_slot"]),
        content_hash=row["content_hash"],
        approved_hash=row["approved_hash"],
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
    )


def get(conn: sqlite3.Connection, post_id: int) -> Post | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM posts WHERE id = ?", (post_id,)).fetchone()
    return None if row is None else from_row(row)


def list_posts(
    conn: sqlite3.Connection,
    *,
    state: str | None = None,
    channel: str | None = None,
    author: str | None = None,
    tag: str | None = None,
    title: str | None = None,
    review_level: int | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Post]:
    """Newest first. State, channel, tag and author are served by an index, so the first
    page costs the same at 10³ and 10⁶ posts; title (a substring) and the creation period
    filter the rows walked in id order."""
    where: list[str] = []
    args: list[Any] = []
    source = "posts"
    if channel:
        # post_channels carries each post's state, so channel (+ state) is one index range
        source = "post_channels pc JOIN posts ON posts.id = pc.post_id"
        where.append("pc.channel = ?")
        args.append(channel)
        if state:
            where.append("pc.state = ?")
            args.append(state)
    elif tag:
        # post_tags holds one row per (tag, post): a rare tag is one short index range
        source = "post_tags pt JOIN posts ON posts.id = pt.post_id"
        where.append("pt.tag = ?")
        args.append(tag.strip())
    if state and not channel:
        where.append("posts.state = ?")
        args.append(state)
    if author:
        where.append("posts.author = ?")
        args.append(author)
    if tag and channel:
        where.append("EXISTS (SELECT 1 FROM post_tags WHERE tag = ? AND post_id = posts.id)")
        args.append(tag.strip())
    if title:
        escaped = title.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("posts.title LIKE ? ESCAPE '\\'")
        args.append(f"%{escaped}%")
    if review_level is not None:
        where.append("posts.review_level = ?")
        args.append(review_level)
    if created_from is not None:
        where.append("posts.created_at >= ?")
        args.append(to_db(created_from))
    if created_before is not None:
        where.append("posts.created_at < ?")
        args.append(to_db(created_before))
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    order = "pc.post_id DESC" if channel else "pt.post_id DESC" if tag else "posts.id DESC"
    cursor = conn.execute(
        f"SELECT {_QUALIFIED} FROM {source} {clause} ORDER BY {order} LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return [from_row(r) for r in cursor]


def scheduled_between(conn: sqlite3.Connection, start: datetime, end: datetime) -> list[Post]:
    """Posts with an explicit publish time in [start, end) that have no deliveries yet
    (drafts and posts in review)."""
    cursor = conn.execute(
        # INDEXED BY: the planner would otherwise walk posts_state over every draft
        f"SELECT {_QUALIFIED} FROM posts INDEXED BY posts_scheduled"
        " WHERE scheduled_at >= ? AND scheduled_at < ?"
        " AND state IN ('draft', 'in_review', 'rejected')"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.post_id = posts.id"
        "   AND d.state != 'pending')"
        " ORDER BY scheduled_at",
        (to_db(start), to_db(end)),
    )
    return [from_row(r) for r in cursor]


def count_in_state(conn: sqlite3.Connection, state: str) -> int:
    row = conn.execute("SELECT COUNT(*) FROM posts WHERE state = ?", (state,)).fetchone()
    return int(row[0])


def titles_of(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, str]:
    """Titles of these posts, 500 ids a query."""
    wanted = sorted(set(ids))
    titles: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(f"SELECT id, title FROM posts WHERE id IN ({marks})", chunk):
            titles[row["id"]] = row["title"]
    return titles


def same_title_and_body(conn: sqlite3.Connection, post_id: int) -> list[int]:
    """Other posts, not cancelled, with the title and body of post ``post_id``."""
    rows = conn.execute(
        "SELECT o.id FROM posts p JOIN posts o ON o.title = p.title AND o.body = p.body"
        " WHERE p.id = ? AND o.id != p.id AND o.state != 'cancelled' ORDER BY o.id",
        (post_id,),
    )
    return [row[0] for row in rows]


def by_titles(
    conn: sqlite3.Connection, titles: Iterable[str]
) -> dict[tuple[str, str], tuple[int, str, str]]:
    """(title, body) -> (id, state, author) of the oldest post, not cancelled, with one of
    ``titles`` and that body; 500 titles a query."""
    wanted = sorted(set(titles))
    existing: dict[tuple[str, str], tuple[int, str, str]] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            # posts_title (migration 14) makes this an index lookup per title
            f"SELECT id, title, body, state, author FROM posts WHERE title IN ({marks})"
            " AND state != 'cancelled' ORDER BY id",
            chunk,
        ):
            existing.setdefault((row[1], row[2]), (row[0], row[3], row[4]))
    return existing


# --- writing -------------------------------------------------------------------------------


def insert(
    conn: sqlite3.Connection,
    values: dict[str, Any],
    *,
    author: str,
    scheduled_at: datetime | None,
    next_slot: bool,
    content_hash: str,
    now: datetime,
) -> int:
    """A new draft with ``values`` (title, body, summary, link, tags, media, channels,
    variants, sources) and its post_channels rows; its id."""
    cursor = conn.execute(
        "INSERT INTO posts (title, body, summary, link, tags, media, channels, variants, author,"
        " state, scheduled_at, next_slot, content_hash, created_at, updated_at, sources)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            values["title"],
            values["body"],
            values["summary"],
            values["link"],
            _dumps(values["tags"]),
            _dumps(values["media"]),
            _dumps(values["channels"]),
            _dumps(values["variants"]),
            author,
            to_db(scheduled_at) if scheduled_at else None,
            int(next_slot),
            content_hash,
            to_db(now),
            to_db(now),
            _dumps(values["sources"]),
        ),
    )
    post_id = int(cursor.fetchone()[0])
    conn.executemany(
        "INSERT INTO post_channels (post_id, channel) VALUES (?, ?)",
        [(post_id, c) for c in values["channels"]],
    )
    return post_id


def update(
    conn: sqlite3.Connection,
    post_id: int,
    values: dict[str, Any],
    *,
    state: str,
    review_round: int,
    review_level: int,
    scheduled_at: datetime | None,
    next_slot: bool,
    content_hash: str,
    approved_hash: str | None,
    now: datetime,
) -> None:
    """Every field of an edited post (``values`` as for ``insert``)."""
    conn.execute(
        "UPDATE posts SET title = ?, body = ?, summary = ?, link = ?, tags = ?, media = ?,"
        " channels = ?, variants = ?, state = ?, review_round = ?, review_level = ?,"
        " scheduled_at = ?, next_slot = ?, content_hash = ?, approved_hash = ?, updated_at = ?,"
        " sources = ? WHERE id = ?",
        (
            values["title"],
            values["body"],
            values["summary"],
            values["link"],
            _dumps(values["tags"]),
            _dumps(values["media"]),
            _dumps(values["channels"]),
            _dumps(values["variants"]),
            state,
            review_round,
            review_level,
            to_db(scheduled_at) if scheduled_at else None,
            int(next_slot),
            content_hash,
            approved_hash,
            to_db(now),
            _dumps(values["sources"]),
            post_id,
        ),
    )


def replace_channels(conn: sqlite3.Connection, post_id: int, channels: list[str]) -> None:
    """The post's post_channels rows become ``channels``."""
    conn.execute("DELETE FROM post_channels WHERE post_id = ?", (post_id,))
    conn.executemany(
        "INSERT INTO post_channels (post_id, channel) VALUES (?, ?)",
        [(post_id, c) for c in channels],
    )


def start_review(conn: sqlite3.Connection, post_id: int, *, was: str, now: datetime) -> None:
    """A new review round at level 1 (for a post still in state ``was``)."""
    conn.execute(
        "UPDATE posts SET state = 'in_review', review_round = review_round + 1,"
        " review_level = 1, updated_at = ? WHERE id = ? AND state = ?",
        (to_db(now), post_id, was),
    )


def set_level(conn: sqlite3.Connection, post_id: int, level: int, *, now: datetime) -> None:
    conn.execute(
        "UPDATE posts SET review_level = ?, updated_at = ? WHERE id = ?",
        (level, to_db(now), post_id),
    )


def mark_approved(conn: sqlite3.Connection, post_id: int, *, now: datetime) -> None:
    """Approved, pinning the content hash it was approved with."""
    conn.execute(
        "UPDATE posts SET state = 'approved', approved_hash = content_hash, updated_at = ?"
        " WHERE id = ?",
        (to_db(now), post_id),
    )


def mark_rejected(conn: sqlite3.Connection, post_id: int, *, now: datetime) -> None:
    conn.execute(
        "UPDATE posts SET state = 'rejected', review_level = 0, updated_at = ? WHERE id = ?",
        (to_db(now), post_id),
    )


def mark_cancelled(conn: sqlite3.Connection, post_id: int, *, now: datetime) -> None:
    conn.execute(
        "UPDATE posts SET state = 'cancelled', updated_at = ? WHERE id = ?",
        (to_db(now), post_id),
    )


def set_schedule(
    conn: sqlite3.Connection,
    post_id: int,
    *,
    scheduled_at: datetime | None,
    next_slot: bool,
    now: datetime,
) -> None:
    conn.execute(
        "UPDATE posts SET scheduled_at = ?, next_slot = ?, updated_at = ? WHERE id = ?",
        (to_db(scheduled_at) if scheduled_at else None, int(next_slot), to_db(now), post_id),
    )


# --- reviews -------------------------------------------------------------------------------

_REVIEW_COLUMNS = "post_id, round, level, reviewer, decision, comment, content_hash, at"


def _review(row: sqlite3.Row) -> Review:
    return Review(
        post_id=row["post_id"],
        round=row["round"],
        level=row["level"],
        reviewer=row["reviewer"],
        decision=row["decision"],
        comment=row["comment"],
        content_hash=row["content_hash"],
        at=from_db(row["at"]),
    )


def reviews_of(conn: sqlite3.Connection, post_id: int) -> list[Review]:
    cursor = conn.execute(
        f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE post_id = ? ORDER BY id", (post_id,)
    )
    return [_review(r) for r in cursor]


def add_review(
    conn: sqlite3.Connection,
    *,
    post_id: int,
    round: int,
    level: int,
    reviewer: str,
    decision: str,
    comment: str,
    content_hash: str,
    now: datetime,
) -> None:
    conn.execute(
        f"INSERT INTO reviews ({_REVIEW_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (post_id, round, level, reviewer, decision, comment, content_hash, to_db(now)),
    )


def level_approved(conn: sqlite3.Connection, post_id: int, round: int, level: int) -> bool:
    """Whether ``level`` of the post's review ``round`` has an approval."""
    row = conn.execute(
        "SELECT 1 FROM reviews WHERE post_id = ? AND round = ? AND level = ?"
        " AND decision = 'approve'",
        (post_id, round, level),
    ).fetchone()
    return row is not None


def other_level_approved_by(
    conn: sqlite3.Connection, post_id: int, round: int, reviewer: str, *, level: int
) -> int | None:
    """A level other than ``level`` that ``reviewer`` approved in the round, if any."""
    row = conn.execute(
        "SELECT level FROM reviews WHERE post_id = ? AND round = ? AND reviewer = ?"
        " AND decision = 'approve' AND level != ? LIMIT 1",
        (post_id, round, reviewer, level),
    ).fetchone()
    return None if row is None else int(row[0])


def approved_hashes(conn: sqlite3.Connection, post_id: int, round: int) -> set[str]:
    """The content hashes the approvals of the round were given for."""
    return {
        r[0]
        for r in conn.execute(
            "SELECT content_hash FROM reviews WHERE post_id = ? AND round = ?"
            " AND decision = 'approve'",
            (post_id, round),
        )
    }


def approvers(conn: sqlite3.Connection, post_id: int, round: int) -> dict[str, int]:
    """Who approved in the round -> the level they approved."""
    return {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT reviewer, level FROM reviews WHERE post_id = ? AND round = ?"
            " AND decision = 'approve'",
            (post_id, round),
        )
    }


def last_review(conn: sqlite3.Connection, post_id: int, round: int, level: int) -> Review | None:
    """The latest decision at ``level`` in the round, if any."""
    row = conn.execute(
        f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE post_id = ? AND round = ?"
        " AND level = ? ORDER BY id DESC LIMIT 1",
        (post_id, round, level),
    ).fetchone()
    return None if row is None else _review(row)
