"""Emergency stop (docs/operations.md §13): the rows of ``pauses``.

A pause is a row of ``pauses``: scope ``*`` stops every channel, otherwise one channel. The
claim query reads it in the same transaction as the claim (``deliveries.claim_next``), so
within one poll of every daemon nothing more is claimed on a paused channel; sends already in
flight finish and are recorded as usual, and nothing queued is touched: it simply waits.

These are the rows; pausing and resuming as people do it (with the audit) and the blackout
dates of the configuration are kepubot/services/pauses.py (docs/architecture.md §17).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from kepubot.timeutil import from_db, to_db

ALL = "*"


def paused(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every pause in force: scope ('*' = all channels), reason, by whom, since when."""
    return [
        {**dict(r), "paused_at": from_db(r["paused_at"])}
        for r in conn.execute(
            "SELECT scope, reason, paused_by, paused_at FROM pauses ORDER BY scope"
        )
    ]


def paused_scopes(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT scope FROM pauses")}


def add(conn: sqlite3.Connection, scope: str, *, reason: str, actor: str, now: datetime) -> bool:
    """Pause ``scope`` (in the caller's transaction); False when it already was paused (the
    first reason stays)."""
    row = conn.execute(
        "INSERT INTO pauses (scope, reason, paused_by, paused_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (scope) DO NOTHING RETURNING scope",
        (scope, reason, actor, to_db(now)),
    ).fetchone()
    return row is not None


def lift(conn: sqlite3.Connection, scope: str) -> None:
    """Lift the pause of ``scope`` (in the caller's transaction)."""
    conn.execute("DELETE FROM pauses WHERE scope = ?", (scope,))
