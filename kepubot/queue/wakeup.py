"""Waking idle daemons when something becomes due (docs/architecture.md §11.5).

PostgreSQL: migration 23's triggers ``NOTIFY kepubot_due`` at the COMMIT that makes a delivery
claimable (queued, rescheduled, released, retried) or lifts a pause. A daemon keeps one extra
connection that ``LISTEN``s and waits on it with a timeout: its poll interval, or less when a
queued delivery's ``not_before`` comes sooner, so a delivery scheduled for 10:00 is claimed at
10:00 and not at the next poll. SQLite has no such channel between processes: daemons poll.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kepubot.queue.postpause import NOT_PAUSED
from kepubot.timeutil import from_db, to_db

CHANNEL = "kepubot_due"


def next_not_before(conn: Any, now: datetime) -> datetime | None:
    """The earliest ``not_before`` of a queued delivery still in the future (due ones are
    claimed now or wait for what blocks them, which NOTIFY or a finished send reports)."""
    row = conn.execute(
        "SELECT MIN(not_before) FROM deliveries WHERE state = 'queued' AND not_before > ?",
        (to_db(now),),
    ).fetchone()
    return from_db(row[0]) if row and row[0] else None


class Listener:
    """A connection of its own that LISTENs on the channel (PostgreSQL only)."""

    def __init__(self, store: Any) -> None:
        self.conn = store.connect()
        self.conn.execute(f"LISTEN {CHANNEL}")

    def wait(self, timeout: float) -> bool:
        """True when a notification arrived within ``timeout`` seconds (all pending ones are
        consumed: one wake-up is enough for any number of them)."""
        got = False
        for _ in self.conn.raw.notifies(timeout=max(0.0, timeout), stop_after=1):
            got = True
        if got:  # drain what else is waiting without blocking
            for _ in self.conn.raw.notifies(timeout=0.0):
                pass
        return got

    def close(self) -> None:
        self.conn.close()


def anything_claimable(conn: Any, now: datetime) -> bool:
    """Whether a claim could find anything: a queued, due delivery on a channel with no send
    in flight, of a post that is not paused. A read, outside any transaction: ``claim_next``
    only narrows this set (channel pauses, breakers, rate limits, exclusions), so False means
    its write transaction would find nothing; a row committed just after this read is picked
    up by the next wake-up, tick or finished send, as it would be had the claim run a moment
    earlier."""
    row = conn.execute(
        "SELECT 1 FROM deliveries WHERE state = 'queued' AND not_before <= ?"
        " AND channel NOT IN (SELECT channel FROM deliveries"
        f" WHERE state IN ('claimed', 'sending')){NOT_PAUSED} LIMIT 1",
        (to_db(now),),
    ).fetchone()
    return row is not None
