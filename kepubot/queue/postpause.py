"""Paused posts (docs/delivery.md §18): a row of ``post_pauses`` holds every delivery of one
post back from the claim, as a row of ``pauses`` holds a channel's. ``deliveries.claim_next``
reads it in the claim's own transaction, so nothing more of a paused post is claimed from the
next poll of every daemon on; a send already in flight finishes and is recorded as usual, and
nothing queued is touched: it waits, and is claimed when the post is resumed (its ``not_before``
is kept, so an overdue delivery goes at once).

The functions run inside the caller's transaction (the service's ``store.transaction()``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kepubot.queue import audit
from kepubot.timeutil import from_db, to_db

# a claim skips a delivery whose post has a row here (the WHERE of deliveries.claim_next and
# wakeup.anything_claimable); ``deliveries`` is the outer table's name in both
NOT_PAUSED = " AND NOT EXISTS (SELECT 1 FROM post_pauses pp WHERE pp.post_id = deliveries.post_id)"


def _row(r: Any) -> dict[str, Any]:
    return {
        "post_id": int(r["post_id"]),
        "reason": r["reason"],
        "paused_by": r["paused_by"],
        "paused_at": from_db(r["paused_at"]),
    }


def get(conn: sqlite3.Connection, post_id: int) -> dict[str, Any] | None:
    """The post's pause (post_id, reason, paused_by, paused_at), or None when it is not paused."""
    r = conn.execute(
        "SELECT post_id, reason, paused_by, paused_at FROM post_pauses WHERE post_id = ?",
        (post_id,),
    ).fetchone()
    return _row(r) if r is not None else None


def among(conn: sqlite3.Connection, post_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The pauses of those of ``post_ids`` that are paused (a list page's rows: one query by
    primary key, whatever the number of posts in the database)."""
    ids = sorted(set(post_ids))
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        for r in conn.execute(
            "SELECT post_id, reason, paused_by, paused_at FROM post_pauses"
            f" WHERE post_id IN ({marks})",
            chunk,
        ):
            found[int(r["post_id"])] = _row(r)
    return found


def paused_posts(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every paused post, oldest pause first (``kepubot status``)."""
    return [
        _row(r)
        for r in conn.execute(
            "SELECT post_id, reason, paused_by, paused_at FROM post_pauses"
            " ORDER BY paused_at, post_id"
        )
    ]


def add(conn: sqlite3.Connection, *, post_id: int, reason: str, actor: str, now: datetime) -> bool:
    """Pause the post (inside the caller's transaction) and audit it; False when it already
    was (nothing written)."""
    row = conn.execute(
        "INSERT INTO post_pauses (post_id, reason, paused_by, paused_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (post_id) DO NOTHING RETURNING post_id",
        (post_id, reason, actor, to_db(now)),
    ).fetchone()
    if row is None:
        return False
    audit.append(
        conn,
        at=to_db(now),
        actor=actor,
        action="post.paused",
        post_id=post_id,
        detail={"reason": reason},
    )
    return True


def remove(
    conn: sqlite3.Connection, *, post_id: int, actor: str, now: datetime, cause: str = ""
) -> bool:
    """Resume the post (inside the caller's transaction) and audit it; False when it was not
    paused (nothing written). ``cause`` names what lifted the pause when it was not a resume
    (``cancelled``: cancelling a post lifts its pause, docs/delivery.md §18)."""
    row = conn.execute(
        "DELETE FROM post_pauses WHERE post_id = ? RETURNING paused_at", (post_id,)
    ).fetchone()
    if row is None:
        return False
    detail = {"paused_at": row["paused_at"]}
    if cause:
        detail["cause"] = cause
    audit.append(
        conn,
        at=to_db(now),
        actor=actor,
        action="post.resumed",
        post_id=post_id,
        detail=detail,
    )
    return True
