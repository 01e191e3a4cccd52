"""Tokens obtained at run time (WeChat access tokens, rotated Douyin tokens), shared by every
daemon, with a single-flight refresh: one process refreshes while holding a short lease on
the row, the others wait and then use what it stored (reliability.md §6.4).

App secrets never come here (they stay in the environment). A refresh token is never
overwritten with an empty value.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from kepubot.channels.base import Token
from kepubot.errors import StoreError
from kepubot.queue.db import transaction
from kepubot.timeutil import from_db, to_db, utcnow


class CredentialStore:
    """Implements ``channels.base.Credentials`` on the credentials table."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        owner: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        lease_seconds: float = 30.0,
        wait_seconds: float = 35.0,
    ) -> None:
        self._connect = connect
        self.owner = owner
        self.clock = clock
        self.lease_seconds = lease_seconds
        self.wait_seconds = wait_seconds

    def get(self, channel: str) -> Token | None:
        row = (
            self._connect()
            .execute(
                "SELECT access_token, refresh_token, expires_at, refresh_expires_at FROM credentials"
                " WHERE channel = ?",
                (channel,),
            )
            .fetchone()
        )
        if row is None or row["access_token"] is None:
            return None
        return Token(
            access_token=row["access_token"],
            refresh_token=row["refresh_token"],
            expires_at=from_db(row["expires_at"]) if row["expires_at"] else None,
            refresh_expires_at=from_db(row["refresh_expires_at"])
            if row["refresh_expires_at"]
            else None,
        )

    def put(self, channel: str, token: Token) -> None:
        conn = self._connect()
        with transaction(conn):
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
                token.access_token,
                token.refresh_token or None,
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
        conn = self._connect()
        deadline = time.monotonic() + self.wait_seconds
        while True:
            now = self.clock()
            with transaction(conn):
                conn.execute(
                    "INSERT INTO credentials (channel, updated_at) VALUES (?, ?)"
                    " ON CONFLICT(channel) DO NOTHING",
                    (channel, to_db(now)),
                )
                row = conn.execute(
                    "SELECT access_token, lease_owner, lease_until FROM credentials WHERE channel = ?",
                    (channel,),
                ).fetchone()
                current = row["access_token"]
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
            with transaction(conn):
                self._store(conn, channel, token)
            return self.get(channel) or token
        finally:
            with transaction(conn):
                conn.execute(
                    "UPDATE credentials SET lease_owner = NULL, lease_until = NULL"
                    " WHERE channel = ? AND lease_owner = ?",
                    (channel, self.owner),
                )

    def _fresh(self, channel: str, now: datetime) -> bool:
        token = self.get(channel)
        return token is not None and not token.expires_soon(now)
