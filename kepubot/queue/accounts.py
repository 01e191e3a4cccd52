"""Console accounts: password hashes and sign-in rate limiting.

Users and their roles come from the config file; only the password hash lives in the
database (scrypt from the standard library, salted, parameters stored with the hash). The
plain password is never stored, logged or echoed. Failed sign-ins are counted in SQLite so
every thread and process of the console shares one limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kepubot.errors import InvalidInput, NotFound
from kepubot.queue import audit
from kepubot.queue.db import transaction
from kepubot.timeutil import from_db, to_db

if TYPE_CHECKING:
    from kepubot.app import App

# scrypt cost: N=2^14, r=8, p=1 takes 16 MiB and ~50 ms, the interactive-login figure of the
# scrypt paper and of Python's hashlib documentation.
_N, _R, _P = 2**14, 8, 1
MIN_LENGTH = 8


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${_N}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def _matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# a hash to check unknown users against, so that "no such user" costs as much as a wrong
# password and the timing does not tell which names exist
_DUMMY = hash_password(secrets.token_hex(8))


def require_user(app: App, user: str) -> None:
    """Console accounts are the users of [users]; anyone else is refused."""
    if app.config.roles_of(user) is None:
        raise NotFound(
            f"user {user!r} is not configured in [users] of {app.config.path.name};"
            " add the user with their roles first"
        )


def set_password(app: App, actor: str, user: str, password: str, *, now: datetime) -> None:
    """Set ``user``'s console password (the user must be configured in [users])."""
    require_user(app, user)
    if len(password) < MIN_LENGTH:
        raise InvalidInput(f"the password is too short; use at least {MIN_LENGTH} characters")
    if password.strip() != password or "\n" in password:
        raise InvalidInput("the password starts or ends with white space; type it again")
    stored = hash_password(password)
    with transaction(app.conn):
        app.conn.execute(
            'INSERT INTO user_passwords ("user", hash, updated_at) VALUES (?, ?, ?)'
            ' ON CONFLICT("user") DO UPDATE SET hash = excluded.hash,'
            " updated_at = excluded.updated_at",
            (user, stored, to_db(now)),
        )
        # a new password ends every console session signed in with the old one
        app.conn.execute('DELETE FROM console_sessions WHERE "user" = ?', (user,))
        audit.append(
            app.conn, at=to_db(now), actor=actor, action="user.password_set", detail={"user": user}
        )


def require_password_right(app: App, actor: str, user: str) -> None:
    """Users set their own password; only an admin sets another user's (the console's
    rule, and the command line's)."""
    if actor == user and app.config.roles_of(actor) is not None:
        return
    app.require_role(actor, "admin", action=f"setting the password of {user!r}")


def change_password(app: App, actor: str, user: str, password: str, *, now: datetime) -> None:
    """``set_password`` after checking that ``actor`` may set ``user``'s password."""
    require_user(app, user)
    require_password_right(app, actor, user)
    set_password(app, actor, user, password, now=now)


def has_password(conn: sqlite3.Connection, user: str) -> bool:
    row = conn.execute('SELECT 1 FROM user_passwords WHERE "user" = ?', (user,)).fetchone()
    return row is not None


def _stored_hash(conn: sqlite3.Connection, user: str) -> str | None:
    row = conn.execute('SELECT hash FROM user_passwords WHERE "user" = ?', (user,)).fetchone()
    return None if row is None else str(row["hash"])


def _stamp_of(stored: str) -> str:
    return hashlib.sha256(stored.encode()).hexdigest()[:16]


def stamp(conn: sqlite3.Connection, user: str) -> str | None:
    """A short fingerprint of the current hash: a session carries it, so a new password
    (or a removed one) ends every session signed in with the old one."""
    stored = _stored_hash(conn, user)
    return None if stored is None else _stamp_of(stored)


@dataclass(frozen=True)
class SignInLimit:
    per_user: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


class SignInBlocked(Exception):
    def __init__(self, retry_after: timedelta) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after = retry_after


def _keys(user: str, address: str) -> list[tuple[str, str]]:
    return [("user", f"user:{user.strip().lower()}"), ("address", f"ip:{address}")]


def _blocked_for(
    conn: sqlite3.Connection, user: str, address: str, now: datetime, limit: SignInLimit
) -> timedelta | None:
    since = to_db(now - limit.window)
    longest: timedelta | None = None
    for kind, key in _keys(user, address):
        allowed = limit.per_user if kind == "user" else limit.per_address
        rows = conn.execute(
            "SELECT at FROM sign_in_failures WHERE key = ? AND at > ? ORDER BY at DESC LIMIT ?",
            (key, since, allowed),
        ).fetchall()
        if len(rows) >= allowed:
            # blocked until the oldest of the last `allowed` failures leaves the window
            until = from_db(rows[-1]["at"]) + limit.window
            wait = until - now
            if longest is None or wait > longest:
                longest = wait
    return longest


def authenticate(
    app: App,
    user: str,
    password: str,
    *,
    address: str,
    now: datetime,
    limit: SignInLimit | None = None,
) -> str | None:
    """The user's session stamp if the password is right, else None.

    Raises SignInBlocked (checked before the password) when the user name or the client
    address had too many failures within the window; a failure is counted for both.
    """
    limit = limit or SignInLimit()
    conn = app.conn
    user = user.strip()
    wait = _blocked_for(conn, user, address, now, limit)
    if wait is not None:
        raise SignInBlocked(wait)
    stored = _stored_hash(conn, user) if app.config.roles_of(user) is not None else None
    ok = _matches(password, stored or _DUMMY) and stored is not None
    with transaction(conn):
        if ok:
            conn.execute(
                "DELETE FROM sign_in_failures WHERE key = ?", (_keys(user, address)[0][1],)
            )
            audit.append(conn, at=to_db(now), actor=user, action="user.signed_in")
        else:
            for _, key in _keys(user, address):
                conn.execute(
                    "INSERT INTO sign_in_failures (key, at) VALUES (?, ?)", (key, to_db(now))
                )
            conn.execute(
                "DELETE FROM sign_in_failures WHERE at < ?", (to_db(now - limit.window * 4),)
            )
    return _stamp_of(stored) if ok and stored is not None else None


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


def sign_out_everywhere(app: App, actor: str, user: str, *, now: datetime) -> int:
    """End every console session of ``user`` (an admin for anyone, a user for themself).
    Returns how many were live."""
    require_user(app, user)
    if actor != user:
        app.require_role(actor, "admin", action="signing another user out")
    else:
        app.roles(actor)
    with transaction(app.conn):
        cursor = app.conn.execute(
            'DELETE FROM console_sessions WHERE "user" = ? AND expires_at > ?', (user, to_db(now))
        )
        ended = cursor.rowcount
        app.conn.execute('DELETE FROM console_sessions WHERE "user" = ?', (user,))
        audit.append(
            app.conn,
            at=to_db(now),
            actor=actor,
            action="user.signed_out_everywhere",
            detail={"user": user, "sessions": ended},
        )
    return ended


def live_sessions(conn: sqlite3.Connection, *, now: datetime) -> dict[str, int]:
    """Live console sessions per user."""
    rows = conn.execute(
        'SELECT "user", COUNT(*) AS n FROM console_sessions WHERE expires_at > ? GROUP BY "user"',
        (to_db(now),),
    ).fetchall()
    return {str(r["user"]): int(r["n"]) for r in rows}
