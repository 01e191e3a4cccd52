"""The daemons' bookkeeping in the database: heartbeats, the instance id, one-time claims in
``meta``, remembered alerts, WAL checkpoints. (All SQL stays in ``kepubot.queue``.)"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from kepubot.queue.db import transaction
from kepubot.timeutil import to_db


def instance_id(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM meta WHERE key = 'instance'").fetchone()
    return str(row[0]) if row else "0"


def claim_once(conn: sqlite3.Connection, key: str, owner: str) -> bool:
    """True for the first caller only, across every process sharing the database."""
    with transaction(conn):
        return (
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                (key, owner),
            ).rowcount
            == 1
        )


def heartbeat(
    conn: sqlite3.Connection, *, worker: str, host: str, pid: int, now: datetime, stopped: bool
) -> None:
    stamp = to_db(now)
    with transaction(conn):
        conn.execute(
            "INSERT INTO daemons (worker, host, pid, started_at, heartbeat_at, stopped_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(worker) DO UPDATE SET"
            " heartbeat_at = excluded.heartbeat_at, stopped_at = excluded.stopped_at",
            (worker, host, pid, stamp, stamp, stamp if stopped else None),
        )


def daemons(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT worker, host, pid, started_at, heartbeat_at, stopped_at FROM daemons"
        " ORDER BY heartbeat_at DESC LIMIT ?",
        (limit,),
    )
    return [dict(r) for r in rows]


def alerted_since(conn: sqlite3.Connection, key: str, since: datetime) -> bool:
    row = conn.execute(
        "SELECT 1 FROM alerts WHERE key = ? AND at > ? LIMIT 1", (key, to_db(since))
    ).fetchone()
    return row is not None


def remember_alerts(conn: sqlite3.Connection, keys: list[str], now: datetime, message: str) -> None:
    with transaction(conn):
        conn.executemany(
            "INSERT INTO alerts (key, at, level, message) VALUES (?, ?, 'error', ?)",
            [(key, to_db(now), message[:1000]) for key in keys],
        )


def wal_checkpoint(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """SQLite's WAL checkpoint; PostgreSQL manages its own log (nothing to do: zeros)."""
    if getattr(conn, "dialect", "sqlite") == "postgresql":
        return 0, 0, 0
    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return int(row[0]), int(row[1]), int(row[2])
