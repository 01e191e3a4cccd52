"""Per-account rate limits and circuit breakers, kept in SQLite so every daemon shares them
(docs/delivery.md §9). A breaker or an empty bucket delays work; it never drops any.

Breaker: ``closed`` -> (K consecutive ambiguous/transient failures, any auth failure, a
platform rate limit) -> ``open`` until ``open_until`` -> the next claim is the single probe
(``half_open``; one send per account is in flight at most) -> success closes it, failure
opens it again for longer.

On PostgreSQL these run inside shared write transactions (the claim, the breaker updates
after a send), beside other claims and sends (docs/architecture.md §11.3). Every
read-then-write of a channel's row (the token bucket, the failure count) first takes the
advisory lock ``limits:<channel>``, and reads after it, so it reads what the previous holder
committed; single UPDATEs (``mark_probe``, ``resume_if_credentials_changed``) are their own
compare-and-set. On SQLite the lock is nothing: BEGIN IMMEDIATE has one writer already.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from kepubot.queue.db import advisory_lock
from kepubot.timeutil import from_db, to_db

FAILURES_TO_OPEN = 3
OPEN_BASE_SECONDS = 30.0
OPEN_CAP_SECONDS = 1800.0


@dataclass
class ChannelState:
    channel: str
    breaker: str
    failures: int
    open_until: datetime | None
    blocked_until: datetime | None
    reason: str | None


def _ensure(conn: sqlite3.Connection, channel: str, now: datetime) -> None:
    conn.execute(
        "INSERT INTO channel_state (channel, updated_at) VALUES (?, ?)"
        " ON CONFLICT(channel) DO NOTHING",
        (channel, to_db(now)),
    )


def blocked_channels(conn: sqlite3.Connection, now: datetime) -> set[str]:
    """Channels whose breaker is open or whose rate limit says wait."""
    now_text = to_db(now)
    return {
        r[0]
        for r in conn.execute(
            "SELECT channel FROM channel_state WHERE (breaker = 'open' AND open_until > ?)"
            " OR blocked_until > ?",
            (now_text, now_text),
        )
    }


def is_blocked(conn: sqlite3.Connection, channel: str, now: datetime) -> bool:
    """``channel`` is in ``blocked_channels`` (read now)."""
    now_text = to_db(now)
    return (
        conn.execute(
            "SELECT 1 FROM channel_state WHERE channel = ?"
            " AND ((breaker = 'open' AND open_until > ?) OR blocked_until > ?)",
            (channel, now_text, now_text),
        ).fetchone()
        is not None
    )


def take_token(
    conn: sqlite3.Connection, channel: str, count: int, period: float, now: datetime
) -> datetime | None:
    """Token bucket (capacity ``count``, refilled at count/period per second). Takes one token
    and returns None, or returns when the next token will be there (and records it)."""
    advisory_lock(conn, f"limits:{channel}")  # the bucket is read, then written
    _ensure(conn, channel, now)
    row = conn.execute(
        "SELECT tokens, tokens_at FROM channel_state WHERE channel = ?", (channel,)
    ).fetchone()
    rate = count / period
    tokens = float(count) if row["tokens"] is None else float(row["tokens"])
    if row["tokens_at"] is not None:
        elapsed = max(0.0, (now - from_db(row["tokens_at"])).total_seconds())
        tokens = min(float(count), tokens + elapsed * rate)
    if tokens >= 1.0:
        conn.execute(
            "UPDATE channel_state SET tokens = ?, tokens_at = ?, updated_at = ? WHERE channel = ?",
            (tokens - 1.0, to_db(now), to_db(now), channel),
        )
        return None
    wait = (1.0 - tokens) / rate
    ready = now + timedelta(seconds=wait)
    conn.execute(
        "UPDATE channel_state SET tokens = ?, tokens_at = ?, blocked_until = ?, updated_at = ?"
        " WHERE channel = ?",
        (tokens, to_db(now), to_db(ready), to_db(now), channel),
    )
    return ready


def mark_probe(conn: sqlite3.Connection, channel: str, now: datetime) -> bool:
    """Called inside the claim transaction: an open breaker past ``open_until`` lets this one
    claim through as the probe. Returns True when this claim is a probe."""
    changed = conn.execute(
        "UPDATE channel_state SET breaker = 'half_open', updated_at = ?"
        " WHERE channel = ? AND breaker = 'open' AND (open_until IS NULL OR open_until <= ?)",
        (to_db(now), channel, to_db(now)),
    ).rowcount
    return changed == 1


def needs_success_write(conn: sqlite3.Connection, channel: str) -> bool:
    """False when the breaker is closed with no failures counted: then a success changes
    nothing and costs no write (this is the common case on every send)."""
    row = conn.execute(
        "SELECT breaker, failures FROM channel_state WHERE channel = ?", (channel,)
    ).fetchone()
    return row is None or row["breaker"] != "closed" or row["failures"] != 0


def record_success(conn: sqlite3.Connection, channel: str, now: datetime) -> bool:
    """Returns True when this closed an open or half-open breaker."""
    advisory_lock(conn, f"limits:{channel}")  # the breaker is read, then written
    _ensure(conn, channel, now)
    row = conn.execute("SELECT breaker FROM channel_state WHERE channel = ?", (channel,)).fetchone()
    conn.execute(
        "UPDATE channel_state SET breaker = 'closed', failures = 0, opened = 0, open_until = NULL,"
        " reason = NULL, updated_at = ? WHERE channel = ?",
        (to_db(now), channel),
    )
    return row["breaker"] != "closed"


def record_failure(
    conn: sqlite3.Connection,
    channel: str,
    now: datetime,
    *,
    kind: str,
    reason: str,
    wait_seconds: float | None = None,
    failures_to_open: int = FAILURES_TO_OPEN,
    open_seconds: float = OPEN_BASE_SECONDS,
) -> datetime | None:
    """Count a failure; returns ``open_until`` when the breaker is (re)opened by it.

    kind: "rate_limited" (open until the platform's time), "auth" (open; probe later),
    "unknown"/"transient" (open after FAILURES_TO_OPEN in a row, or at once when probing).
    """
    advisory_lock(conn, f"limits:{channel}")  # failures and opened are read, then written
    _ensure(conn, channel, now)
    row = conn.execute(
        "SELECT breaker, failures, opened FROM channel_state WHERE channel = ?", (channel,)
    ).fetchone()
    failures = row["failures"] + 1
    probing = row["breaker"] == "half_open"
    if kind in ("rate_limited", "auth") or probing or failures >= failures_to_open:
        opened = row["opened"] + 1
        if wait_seconds is None:
            wait_seconds = min(OPEN_CAP_SECONDS, open_seconds * 2 ** (opened - 1))
        until = now + timedelta(seconds=wait_seconds)
        conn.execute(
            "UPDATE channel_state SET breaker = 'open', failures = ?, opened = ?, open_until = ?,"
            " reason = ?, updated_at = ? WHERE channel = ?",
            (failures, opened, to_db(until), f"{kind}: {reason}"[:500], to_db(now), channel),
        )
        return until
    conn.execute(
        "UPDATE channel_state SET failures = ?, updated_at = ? WHERE channel = ?",
        (failures, to_db(now), channel),
    )
    return None


def set_auth_fingerprint(conn: sqlite3.Connection, channel: str, fingerprint: str) -> None:
    conn.execute(
        "UPDATE channel_state SET auth_fingerprint = ? WHERE channel = ?", (fingerprint, channel)
    )


def resume_if_credentials_changed(
    conn: sqlite3.Connection, channel: str, fingerprint: str, now: datetime
) -> bool:
    """Close a breaker opened by refused credentials when the credentials are now different."""
    changed = conn.execute(
        "UPDATE channel_state SET breaker = 'closed', failures = 0, opened = 0, open_until = NULL,"
        " reason = NULL, auth_fingerprint = NULL, updated_at = ?"
        " WHERE channel = ? AND breaker != 'closed' AND reason LIKE 'auth:%'"
        " AND auth_fingerprint IS NOT NULL AND auth_fingerprint != ?",
        (to_db(now), channel, fingerprint),
    ).rowcount
    return changed == 1


def states(conn: sqlite3.Connection) -> list[ChannelState]:
    rows = conn.execute(
        "SELECT channel, breaker, failures, open_until, blocked_until, reason FROM channel_state"
        " ORDER BY channel"
    )
    return [
        ChannelState(
            r["channel"],
            r["breaker"],
            r["failures"],
            from_db(r["open_until"]) if r["open_until"] else None,
            from_db(r["blocked_until"]) if r["blocked_until"] else None,
            r["reason"],
        )
        for r in rows
    ]
