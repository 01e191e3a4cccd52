"""Console accounts: password hashes, sign-in failures and console sessions (the rows).

Users and their roles come from the config file; only the password hash lives in the
database. Failed sign-ins are counted in the database so every thread and process of the
console shares one limit. The rules (who may set whose password, how a password is hashed and
checked, when sign-in is blocked) are kepubot/services/accounts.py (docs/architecture.md §17).
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import datetime, timedelta

from kepubot.queue import audit
from kepubot.queue.db import transaction
from kepubot.timeutil import to_db


def store_password(conn: sqlite3.Connection, user: str, stored: str, *, now: datetime) -> None:
    """Set ``user``'s password hash (in the caller's transaction)."""
    conn.execute(
        'INSERT INTO user_passwords ("user", hash, updated_at) VALUES (?, ?, ?)'
        ' ON CONFLICT("user") DO UPDATE SET hash = excluded.hash,'
        " updated_at = excluded.updated_at",
        (user, stored, to_db(now)),
    )


def has_password(conn: sqlite3.Connection, user: str) -> bool:
    row = conn.execute('SELECT 1 FROM user_passwords WHERE "user" = ?', (user,)).fetchone()
    return row is not None


def stored_hash(conn: sqlite3.Connection, user: str) -> str | None:
    row = conn.execute('SELECT hash FROM user_passwords WHERE "user" = ?', (user,)).fetchone()
    return None if row is None else str(row["hash"])


def stamp_of(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


# --- failed sign-ins -------------------------------------------------------------------------


def failures_since(conn: sqlite3.Connection, key: str, since: datetime, newest: int) -> list[str]:
    """When the ``newest`` latest failures of ``key`` after ``since`` happened (stored text),
    newest first."""
    rows = conn.execute(
        "SELECT at FROM sign_in_failures WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
        (key, to_db(since), newest),
    ).fetchall()
    return [str(r["at"]) for r in rows]


def clear_failures(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM sign_in_failures WHERE key = ?", (key,))


def record_failure(conn: sqlite3.Connection, key: str, *, now: datetime) -> None:
    conn.execute("INSERT INTO sign_in_failures (key, at) VALUES (?, ?)", (key, to_db(now)))


def forget_failures_before(conn: sqlite3.Connection, before: datetime) -> None:
    conn.execute("DELETE FROM sign_in_failures WHERE at < ?", (to_db(before),))


# --- console sessions ------------------------------------------------------------------------
#
# A sign-in is a row here; the signed cookie carries only a random token whose hash is the
# row's key. Signing out deletes the row, so a copy of the cookie is worth nothing afterwards;
# a new password or an admin's "sign out everywhere" deletes every row of the user.


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(conn: sqlite3.Connection, user: str, *, now: datetime, hours: float) -> str:
    """A new session for ``user`` lasting ``hours``; returns the token for the cookie."""
    token = secrets.token_urlsafe(32)
    with transaction(conn):
        conn.execute("DELETE FROM console_sessions WHERE expires_at <= ?", (to_db(now),))
        conn.execute(
            'INSERT INTO console_sessions (token_hash, "user", created_at, expires_at)'
            " VALUES (?, ?, ?, ?)",
            (_token_hash(token), user, to_db(now), to_db(now + timedelta(hours=hours))),
        )
    return token


def session_user(
    conn: sqlite3.Connection, token: str, *, now: datetime, hours: float | None = None
) -> str | None:
    """The user of a live session, or None (signed out, ended, expired or never issued).
    ``hours``: the current session length, when it was shortened since the sign-in."""
    if not token:
        return None
    started_after = to_db(now - timedelta(hours=hours)) if hours is not None else ""
    row = conn.execute(
        'SELECT "user" FROM console_sessions'
        " WHERE token_hash = ? AND expires_at > ? AND created_at > ?",
        (_token_hash(token), to_db(now), started_after),
    ).fetchone()
    return None if row is None else str(row["user"])


def end_session(conn: sqlite3.Connection, token: str, *, now: datetime) -> str | None:
    """Sign out: the session ends now. Returns its user (None when there was none)."""
    if not token:
        return None
    with transaction(conn):
        row = conn.execute(
            'DELETE FROM console_sessions WHERE token_hash = ? RETURNING "user"',
            (_token_hash(token),),
        ).fetchone()
        if row is not None:
            audit.append(conn, at=to_db(now), actor=row["user"], action="user.signed_out")
    return None if row is None else str(row["user"])


def end_sessions(conn: sqlite3.Connection, user: str) -> None:
    """Delete every console session of ``user`` (in the caller's transaction)."""
    conn.execute('DELETE FROM console_sessions WHERE "user" = ?', (user,))


def end_live_sessions(conn: sqlite3.Connection, user: str, *, now: datetime) -> int:
    """Delete ``user``'s live console sessions (in the caller's transaction); how many."""
    cursor = conn.execute(
        'DELETE FROM console_sessions WHERE "user" = ? AND expires_at > ?', (user, to_db(now))
    )
    return int(cursor.rowcount)


def live_sessions(conn: sqlite3.Connection, *, now: datetime) -> dict[str, int]:
    """Live console sessions per user."""
    rows = conn.execute(
        'SELECT "user", COUNT(*) AS n FROM console_sessions WHERE expires_at > ? GROUP BY "user"',
        (to_db(now),),
    ).fetchall()
    return {str(r["user"]): int(r["n"]) for r in rows}
