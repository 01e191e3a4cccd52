"""Tokens obtained at run time (WeChat access tokens, rotated Douyin tokens), shared by every
daemon, with a single-flight refresh: one process refreshes while holding a short lease on
the row, the others wait and then use what it stored (docs/delivery.md §10).

Every write here is a shared write transaction on PostgreSQL (docs/architecture.md §11.3):
the stores are single upserts, the lease release one owner-fenced UPDATE, and the
single-flight's read-then-lease runs under the advisory lock ``credentials:<channel>``.

App secrets never come here (they stay in the environment). A refresh token is never
overwritten with an empty value. Tokens are encrypted at rest (Fernet: AES-128-CBC with an
HMAC-SHA256) with ``[kepubot] token_key`` (a ``${ENV}`` reference), or else with a random key
kept in ``token.key`` (0600) beside the database: a copy of the database file alone (a
backup, a support bundle) holds no usable token.
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kepubot.channels.base import Token
from kepubot.errors import StoreError
from kepubot.queue.db import advisory_lock, transaction
from kepubot.timeutil import from_db, to_db, utcnow

if TYPE_CHECKING:
    from kepubot.queue.store import Store

_PREFIX = "enc1:"


class TokenCipher:
    """Encrypts token values for the credentials table; reads legacy plain values as they are."""

    def __init__(self, secret: bytes) -> None:
        from cryptography.fernet import Fernet

        # any secret text works: it is hashed to Fernet's 32-byte key
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret).digest()))

    def seal(self, value: str | None) -> str | None:
        if not value:
            return value
        return _PREFIX + self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, stored: str | None, channel: str) -> str | None:
        if not stored or not stored.startswith(_PREFIX):
            return stored  # written before tokens were encrypted; sealed at the next write
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(stored[len(_PREFIX) :].encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise StoreError(
                f"channel {channel}: its stored token was encrypted with another key; restore"
                " the token key (token_key or token.key beside the database) or delete the"
                " channel's row in the credentials table and authorise again"
            ) from None


def load_cipher(secret: str | None, key_file: Path) -> TokenCipher:
    """The configured secret, or the key file beside the database (made once, 0600)."""
    from kepubot.keyfile import read_or_create

    if secret is not None:
        return TokenCipher(secret.encode("utf-8"))
    return TokenCipher(read_or_create(key_file))


class CredentialStore:
    """Implements ``channels.base.Credentials`` on the credentials table."""

    def __init__(
        self,
        store: Store,
        owner: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        lease_seconds: float = 30.0,
        wait_seconds: float = 35.0,
        cipher: TokenCipher | None = None,
    ) -> None:
        # every call works on the calling thread's connection of ``store``
        self._db = store
        self.cipher = cipher
        self.owner = owner
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds

    @classmethod
    def for_store(cls, store: Store, owner: str, *, cipher: TokenCipher | None) -> CredentialStore:
        """The credentials of ``store``'s database, on the calling thread's connection."""
        return cls(store, owner, cipher=cipher)

    def get(self, channel: str) -> Token | None:
        row = (
            self._db.conn()
            .execute(
                "SELECT access_token, refresh_token, expires_at, refresh_expires_at FROM credentials"
                " WHERE channel = ?",
                (channel,),
            )
            .fetchone()
        )
        if row is None or row["access_token"] is None:
            return None
        access_token = self._open(row["access_token"], channel)
        assert access_token is not None
        return Token(
            access_token=access_token,
            refresh_token=self._open(row["refresh_token"], channel),
            expires_at=from_db(row["expires_at"]) if row["expires_at"] else None,
            refresh_expires_at=from_db(row["refresh_expires_at"])
            if row["refresh_expires_at"]
            else None,
        )

    def _open(self, stored: str | None, channel: str) -> str | None:
        if self.cipher is None:
            if stored and stored.startswith(_PREFIX):
                raise StoreError(f"channel {channel}: its stored token is encrypted; no key given")
            return stored
        return self.cipher.open(stored, channel)

    def _seal(self, value: str | None) -> str | None:
        return value if self.cipher is None else self.cipher.seal(value)

    def put(self, channel: str, token: Token) -> None:
        conn = self._db.conn()
        with transaction(conn, shared=True):
            self._store(conn, channel, token)

    def _store(self, conn: sqlite3.Connection, channel: str, token: Token) -> None:
        now = to_db(self.clock())
        conn.execute(
            "INSERT INTO credentials (channel, access_token, refresh_token, expires_at,"
            " refresh_expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(channel) DO UPDATE SET access_token = excluded.access_token,"
            # never replace a stored refresh token with nothing (postiz PR #1884)
            " refresh_token = COALESCE(NULLIF(excluded.refresh_token, ''), credentials.refresh_token),"
            " expires_at = excluded.expires_at,"
            " refresh_expires_at = COALESCE(excluded.refresh_expires_at, credentials.refresh_expires_at),"
            " updated_at = excluded.updated_at",
            (
                channel,
                self._seal(token.access_token),
                self._seal(token.refresh_token or None),
                to_db(token.expires_at) if token.expires_at else None,
                to_db(token.refresh_expires_at) if token.refresh_expires_at else None,
                now,
            ),
        )

    def refresh(
        self,
        channel: str,
        fetch: Callable[[Token | None], Token],
        *,
        stale: Token | None = None,
    ) -> Token:
        """Single flight: refresh unless another process already replaced ``stale``.

        ``fetch(current)`` calls the platform; it runs outside any transaction while this
        process holds the row's lease. Others wait for the lease and then take the new token.
        """
        conn = self._db.conn()
        deadline = time.monotonic() + self.wait_seconds
        while True:
            now = self.clock()
            with transaction(conn, shared=True):
                # the token single-flight (docs/architecture.md §11.3)
                advisory_lock(conn, f"credentials:{channel}")
                conn.execute(
                    "INSERT INTO credentials (channel, updated_at) VALUES (?, ?)"
                    " ON CONFLICT(channel) DO NOTHING",
                    (channel, to_db(now)),
                )
                row = conn.execute(
                    "SELECT access_token, lease_owner, lease_until FROM credentials WHERE channel = ?",
                    (channel,),
                ).fetchone()
                current = self._open(row["access_token"], channel)
                if (
                    current is not None
                    and (stale is None or current != stale.access_token)
                    and (stale is not None or self._fresh(channel, now))
                ):
                    # someone else refreshed meanwhile: use theirs
                    token = self.get(channel)
                    assert token is not None
                    return token
                leased = (
                    row["lease_owner"] and row["lease_until"] and row["lease_until"] > to_db(now)
                )
                if not leased:
                    conn.execute(
                        "UPDATE credentials SET lease_owner = ?, lease_until = ? WHERE channel = ?",
                        (self.owner, to_db(now + timedelta(seconds=self.lease_seconds)), channel),
                    )
                    break
            if time.monotonic() > deadline:
                raise StoreError(
                    f"channel {channel}: another process holds the token refresh too long"
                )
            time.sleep(0.05)
        try:
            token = fetch(self.get(channel))
            with transaction(conn, shared=True):
                self._store(conn, channel, token)
            return self.get(channel) or token
        finally:
            with transaction(conn, shared=True):
                conn.execute(
                    "UPDATE credentials SET lease_owner = NULL, lease_until = NULL"
                    " WHERE channel = ? AND lease_owner = ?",
                    (channel, self.owner),
                )

    def _fresh(self, channel: str, now: datetime) -> bool:
        token = self.get(channel)
        return token is not None and not token.expires_soon(now)
