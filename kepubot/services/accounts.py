"""Console accounts: who may set whose password, how passwords are hashed and checked, when
sign-in is blocked, and signing a user out everywhere. The rows (hashes, failures, sessions)
are kepubot/queue/accounts.py (docs/architecture.md §17).

Users and their roles come from the config file; only the password hash lives in the
database (scrypt from the standard library, salted, parameters stored with the hash). The
plain password is never stored, logged or echoed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from kepubot.errors import InvalidInput, NotFound
from kepubot.queue.accounts import stamp_of
from kepubot.timeutil import from_db, to_db

if TYPE_CHECKING:
    from kepubot.app import App
    from kepubot.queue.store import Store

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
    store = app.store
    with store.transaction():
        store.accounts.store_password(user, stored, now=now)
        # a new password ends every console session signed in with the old one
        store.accounts.end_sessions(user)
        store.audit.append(
            at=to_db(now), actor=actor, action="user.password_set", detail={"user": user}
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
    store: Store, user: str, address: str, now: datetime, limit: SignInLimit
) -> timedelta | None:
    longest: timedelta | None = None
    for kind, key in _keys(user, address):
        allowed = limit.per_user if kind == "user" else limit.per_address
        failures = store.accounts.failures_since(key, now - limit.window, allowed)
        if len(failures) >= allowed:
            # blocked until the oldest of the last `allowed` failures leaves the window
            until = from_db(failures[-1]) + limit.window
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
    store = app.store
    user = user.strip()
    wait = _blocked_for(store, user, address, now, limit)
    if wait is not None:
        raise SignInBlocked(wait)
    stored = store.accounts.stored_hash(user) if app.config.roles_of(user) is not None else None
    ok = _matches(password, stored or _DUMMY) and stored is not None
    with store.transaction():
        if ok:
            store.accounts.clear_failures(_keys(user, address)[0][1])
            store.audit.append(at=to_db(now), actor=user, action="user.signed_in")
        else:
            for _, key in _keys(user, address):
                store.accounts.record_failure(key, now=now)
            store.accounts.forget_failures_before(now - limit.window * 4)
    return stamp_of(stored) if ok and stored is not None else None


def sign_out_everywhere(app: App, actor: str, user: str, *, now: datetime) -> int:
    """End every console session of ``user`` (an admin for anyone, a user for themself).
    Returns how many were live."""
    require_user(app, user)
    if actor != user:
        app.require_role(actor, "admin", action="signing another user out")
    else:
        app.roles(actor)
    store = app.store
    with store.transaction():
        ended = store.accounts.end_live_sessions(user, now=now)
        store.accounts.end_sessions(user)
        store.audit.append(
            at=to_db(now),
            actor=actor,
            action="user.signed_out_everywhere",
            detail={"user": user, "sessions": ended},
        )
    return ended
