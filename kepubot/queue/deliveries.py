"""Every state transition of a delivery (one post x one channel), docs/delivery.md §2.

Rules this module keeps:
- each change is one ``BEGIN IMMEDIATE`` transaction together with its audit row;
- on PostgreSQL the daemon's side (claim, intent, outcome, polls) runs in shared write
  transactions side by side (docs/architecture.md §11.3); each such function says in a
  comment why each of its read-then-writes is safe there;
- after a claim, every write is fenced by ``lease_owner`` + ``lease_version`` and checks that it
  changed exactly one row (``LeaseLost`` otherwise);
- the intent (``sending`` + an open attempt row) is committed before any platform call;
- a ``sending`` row never goes back to ``queued`` by itself: an expired lease there means the
  outcome is unknown, and only reconciliation decides.
The ``delivery_transitions`` table and its trigger refuse any other change in SQL as well.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from kepubot.errors import InvalidTransition, LeaseLost, NotFound
from kepubot.models import Delivery
from kepubot.queue import audit
from kepubot.queue.db import advisory_lock, dialect, for_update, skip_locked, transaction
from kepubot.states import (  # the state machine, as data (docs/delivery.md §2.4)
    DeliveryState,
    allowed,
)
from kepubot.timeutil import from_db, to_db

_COLUMNS = (
    "id, post_id, channel, state, due_at, not_before, attempts, lease_owner, lease_until,"
    " lease_version, progress, remote_id, remote_url, error_kind, last_error, published_at,"
    " next_metrics_at, content_hash, reconcile_tries, kind, retract_reason"
)


def _require(from_state: str, to_state: str, delivery_id: int) -> None:
    if not allowed(from_state, to_state):
        raise InvalidTransition(
            f"delivery {delivery_id}: cannot go from {from_state} to {to_state}"
        )


def from_row(row: sqlite3.Row) -> Delivery:
    def t(value: str | None) -> datetime | None:
        return from_db(value) if value else None

    return Delivery(
        id=row["id"],
        post_id=row["post_id"],
        channel=row["channel"],
        state=row["state"],
        due_at=from_db(row["due_at"]),
        not_before=from_db(row["not_before"]),
        attempts=row["attempts"],
        lease_owner=row["lease_owner"],
        lease_until=t(row["lease_until"]),
        lease_version=row["lease_version"],
        progress=json.loads(row["progress"] or "{}"),
        remote_id=row["remote_id"],
        remote_url=row["remote_url"],
        error_kind=row["error_kind"],
        last_error=row["last_error"],
        published_at=t(row["published_at"]),
        next_metrics_at=t(row["next_metrics_at"]),
        content_hash=row["content_hash"],
        reconcile_tries=row["reconcile_tries"],
        kind=row["kind"],
        retract_reason=row["retract_reason"],
    )


def get(conn: sqlite3.Connection, delivery_id: int) -> Delivery:
    row = conn.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    if row is None:
        raise NotFound(f"delivery {delivery_id} does not exist; see `kepubot delivery list`")
    return from_row(row)


def _get_locked(conn: sqlite3.Connection, delivery_id: int) -> Delivery:
    """``get`` inside a write transaction, the row locked until it ends (``FOR UPDATE`` on
    PostgreSQL): what is decided from it stays true until COMMIT, also in a shared
    transaction (docs/architecture.md §11.3)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?{for_update(conn)}", (delivery_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"delivery {delivery_id} does not exist; see `kepubot delivery list`")
    return from_row(row)


def for_post(conn: sqlite3.Connection, post_id: int) -> list[Delivery]:
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE post_id = ? ORDER BY channel", (post_id,)
    )
    return [from_row(r) for r in cursor]


def list_deliveries(
    conn: sqlite3.Connection,
    *,
    state: str | None = None,
    channel: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Delivery]:
    where, args = [], []
    if state:
        where.append("state = ?")
        args.append(state)
    if channel:
        where.append("channel = ?")
        args.append(channel)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM deliveries {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return [from_row(r) for r in cursor]


def due_ids(conn: sqlite3.Connection, state: str, now: datetime) -> list[int]:
    """Deliveries in ``state`` whose ``not_before`` has come (lookups, polls), oldest first."""
    rows = conn.execute(
        "SELECT id FROM deliveries INDEXED BY deliveries_due WHERE state = ?"
        " AND not_before <= ? ORDER BY not_before, id",
        (state, to_db(now)),
    ).fetchall()
    return [r[0] for r in rows]


def claimed_by(conn: sqlite3.Connection, worker: str) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM deliveries WHERE state = 'claimed' AND lease_owner = ?", (worker,)
    ).fetchall()
    return [r[0] for r in rows]


def first_attempt_started(conn: sqlite3.Connection, delivery_id: int) -> datetime | None:
    row = conn.execute(
        "SELECT MIN(started_at) FROM attempts WHERE delivery_id = ?", (delivery_id,)
    ).fetchone()
    return from_db(row[0]) if row and row[0] else None


def uncertain_since(conn: sqlite3.Connection, delivery_id: int) -> datetime | None:
    """When the attempt whose outcome is in doubt started (the latest attempt): the start of
    a delivery's ``settle_minutes``."""
    row = conn.execute(
        "SELECT started_at FROM attempts WHERE delivery_id = ? ORDER BY number DESC LIMIT 1",
        (delivery_id,),
    ).fetchone()
    return from_db(row[0]) if row and row[0] else None


#: Watched by the generic overdue/stuck checks; ``awaiting_person`` has its own clock
#: (``confirm_within_hours``, docs/delivery.md §17.2).
NOT_DONE = ("queued", "claimed", "sending", "processing", "unknown", "needs_attention")


def oldest_overdue(conn: sqlite3.Connection, now: datetime) -> dict[str, Any] | None:
    marks = ", ".join("?" for _ in NOT_DONE)
    row = conn.execute(
        f"SELECT id, post_id, channel, state, due_at FROM deliveries WHERE state IN ({marks})"
        " AND due_at < ? ORDER BY due_at LIMIT 1",
        (*NOT_DONE, to_db(now)),
    ).fetchone()
    return dict(row) if row else None


def needing_a_look(
    conn: sqlite3.Connection, *, overdue_before: datetime, stuck_before: datetime
) -> list[dict[str, Any]]:
    """Not finished and either needing a person, overdue, or sitting in one state too long."""
    marks = ", ".join("?" for _ in NOT_DONE)
    rows = conn.execute(
        "SELECT id, post_id, channel, state, due_at, updated_at, last_error FROM deliveries"
        f" WHERE state IN ({marks}) AND (state = 'needs_attention' OR due_at < ?"
        " OR (state != 'queued' AND updated_at < ?)) ORDER BY due_at",
        (*NOT_DONE, to_db(overdue_before), to_db(stuck_before)),
    ).fetchall()
    return [dict(r) for r in rows]


def counts_by_channel(conn: sqlite3.Connection, state: str) -> dict[str, int]:
    return {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT channel, COUNT(*) FROM deliveries WHERE state = ? GROUP BY channel", (state,)
        )
    }


def counts_of(conn: sqlite3.Connection, states: tuple[str, ...]) -> dict[str, int]:
    """How many deliveries are in each of these states: one index range count per state,
    so asking about the few active or troubled ones stays cheap however much was published."""
    return {
        state: conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = ?", (state,)).fetchone()[
            0
        ]
        for state in states
    }


def counts_by_state(conn: sqlite3.Connection) -> dict[str, int]:
    return {
        r["state"]: r["n"]
        for r in conn.execute("SELECT state, COUNT(*) AS n FROM deliveries GROUP BY state")
    }


def _set_state(
    conn: sqlite3.Connection,
    delivery: Delivery | sqlite3.Row,
    to_state: str,
    *,
    now: datetime,
    actor: str,
    action: str,
    extra_sets: dict[str, Any] | None = None,
    fence: tuple[str, int] | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Move one delivery to ``to_state`` (inside the caller's transaction), fenced if asked,
    and append its audit row."""
    entry = _move(
        conn,
        delivery,
        to_state,
        now=now,
        actor=actor,
        action=action,
        extra_sets=extra_sets,
        fence=fence,
        detail=detail,
    )
    audit.append(conn, **entry)


def _move(
    conn: sqlite3.Connection,
    delivery: Delivery | sqlite3.Row,
    to_state: str,
    *,
    now: datetime,
    actor: str,
    action: str,
    extra_sets: dict[str, Any] | None = None,
    fence: tuple[str, int] | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``_set_state`` without the audit append: returns the audit row's arguments, for a
    caller that appends it last, just before COMMIT (the audit lock is the one every write
    meets; docs/architecture.md §11.3).

    The UPDATE is its own compare-and-set: ``WHERE id AND state = <the state the caller
    read> [AND lease_owner AND lease_version]``. On PostgreSQL an UPDATE that meets a row
    another transaction changed waits for it and re-checks its WHERE on the committed row, so
    it changes the row only if it still is what the caller saw, and then holds the row's lock
    until COMMIT. Exactly one row or ``LeaseLost``/``InvalidTransition``."""
    delivery_id = delivery["id"] if not isinstance(delivery, Delivery) else delivery.id
    from_state = delivery["state"] if not isinstance(delivery, Delivery) else delivery.state
    post_id = delivery["post_id"] if not isinstance(delivery, Delivery) else delivery.post_id
    _require(from_state, to_state, delivery_id)
    sets = {"state": to_state, "updated_at": to_db(now), **(extra_sets or {})}
    assignments = ", ".join(f"{column} = ?" for column in sets)
    sql = f"UPDATE deliveries SET {assignments} WHERE id = ? AND state = ?"
    args: list[Any] = [*sets.values(), delivery_id, from_state]
    if fence is not None:
        sql += " AND lease_owner = ? AND lease_version = ?"
        args.extend(fence)
    if conn.execute(sql, args).rowcount != 1:
        if fence is not None:
            raise LeaseLost(
                f"delivery {delivery_id}: no longer held by {fence[0]} (version {fence[1]})"
            )
        raise InvalidTransition(f"delivery {delivery_id}: changed concurrently; try again")
    return {
        "at": to_db(now),
        "actor": actor,
        "action": action,
        "post_id": post_id,
        "delivery_id": delivery_id,
        "detail": {"from": from_state, "to": to_state, **(detail or {})},
    }


# --- created and held by the editorial workflow (called inside its transactions) ---------


def queue_for_post(
    conn: sqlite3.Connection,
    *,
    post_id: int,
    due_by_channel: dict[str, datetime],
    content_hash: str,
    now: datetime,
    actor: str,
) -> list[int]:
    """On final approval: create (or re-queue held) deliveries, one per target channel; held
    deliveries of channels the post no longer targets are cancelled."""
    ids = []
    existing = {
        r["channel"]: r
        for r in conn.execute(f"SELECT {_COLUMNS} FROM deliveries WHERE post_id = ?", (post_id,))
    }
    for channel, due in sorted(due_by_channel.items()):
        row = existing.get(channel)
        if row is None:
            cursor = conn.execute(
                "INSERT INTO deliveries (post_id, channel, state, due_at, not_before,"
                " content_hash, created_at, updated_at) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?)"
                " RETURNING id",
                (post_id, channel, to_db(due), to_db(due), content_hash, to_db(now), to_db(now)),
            )
            delivery_id = int(cursor.fetchone()[0])
            audit.append(
                conn,
                at=to_db(now),
                actor=actor,
                action="delivery.queued",
                post_id=post_id,
                delivery_id=delivery_id,
                detail={"to": "queued", "channel": channel, "due_at": to_db(due)},
            )
        elif row["state"] == "pending":
            delivery_id = row["id"]
            _set_state(
                conn,
                row,
                "queued",
                now=now,
                actor=actor,
                action="delivery.queued",
                extra_sets={
                    "due_at": to_db(due),
                    "not_before": to_db(due),
                    "content_hash": content_hash,
                },
                detail={"channel": channel, "due_at": to_db(due)},
            )
        else:
            # Already in flight or finished on this channel: leave it alone.
            delivery_id = row["id"]
        ids.append(delivery_id)
    for channel, row in existing.items():
        if channel not in due_by_channel and row["state"] == "pending":
            _set_state(
                conn,
                row,
                "cancelled",
                now=now,
                actor=actor,
                action="delivery.cancelled",
                detail={"reason": "the approved post no longer targets this channel"},
            )
    return ids


def hold_for_review(conn: sqlite3.Connection, *, post_id: int, now: datetime, actor: str) -> int:
    """The post went back to review: its queued deliveries wait for the new approval."""
    rows = conn.execute(
        # a retraction waiting in the queue is not held: it takes back what is live
        # (docs/delivery.md §14)
        f"SELECT {_COLUMNS} FROM deliveries WHERE post_id = ? AND state = 'queued'"
        " AND kind = 'publish'",
        (post_id,),
    ).fetchall()
    for row in rows:
        _set_state(conn, row, "pending", now=now, actor=actor, action="delivery.held")
    return len(rows)


def in_flight_or_done(conn: sqlite3.Connection, post_id: int) -> list[Delivery]:
    """Deliveries that have left the queue (may have reached the platform)."""
    cursor = conn.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE post_id = ?"
        " AND state NOT IN ('pending', 'queued', 'cancelled', 'failed')",
        (post_id,),
    )
    return [from_row(r) for r in cursor]


def cancel_for_post(
    conn: sqlite3.Connection,
    *,
    post_id: int,
    now: datetime,
    actor: str,
    channels: Iterable[str] | None = None,
    awaiting_person: bool = False,
) -> int:
    """Cancel the post's deliveries that have not started sending (and, when the post itself
    is cancelled, assisted tasks nobody has confirmed yet: docs/delivery.md §17.1)."""
    states = "'pending', 'queued', 'claimed'" + (", 'awaiting_person'" if awaiting_person else "")
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM deliveries WHERE post_id = ? AND state IN ({states})",
        (post_id,),
    ).fetchall()
    wanted = set(channels) if channels is not None else None
    count = 0
    for row in rows:
        if wanted is not None and row["channel"] not in wanted:
            continue
        _set_state(
            conn,
            row,
            "cancelled",
            now=now,
            actor=actor,
            action="delivery.cancelled",
            extra_sets={"lease_owner": None, "lease_until": None},
        )
        count += 1
    return count


def reschedule(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    due: datetime,
    now: datetime,
    actor: str,
) -> None:
    if delivery.state not in ("pending", "queued"):
        raise InvalidTransition(
            f"delivery {delivery.id} ({delivery.channel}) is {delivery.state}; only pending or"
            " queued deliveries can be rescheduled"
        )
    changed = conn.execute(
        "UPDATE deliveries SET due_at = ?, not_before = ?, updated_at = ?"
        " WHERE id = ? AND state = ?",
        (to_db(due), to_db(due), to_db(now), delivery.id, delivery.state),
    ).rowcount
    if changed != 1:
        raise InvalidTransition(f"delivery {delivery.id}: changed concurrently; try again")
    audit.append(
        conn,
        at=to_db(now),
        actor=actor,
        action="delivery.rescheduled",
        post_id=delivery.post_id,
        delivery_id=delivery.id,
        detail={"due_at": to_db(due)},
    )


# --- the daemon's side: claim, intent, outcome ---------------------------------------------


def claim_next(
    conn: sqlite3.Connection,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    exclude_channels: Iterable[str] = (),
    rate_limits: Mapping[str, tuple[int, float]] | None = None,
    hold_publishing: Iterable[str] = (),
) -> Delivery | None:
    """Claim the oldest due delivery in one ``BEGIN IMMEDIATE`` with ``UPDATE ... RETURNING``.

    Skipped: channels with a send in flight (at most one per account, across all daemons),
    channels whose breaker is open or whose rate limit says wait, and ``exclude_channels``.
    A claim on a channel whose breaker has cooled down is that breaker's single probe.

    A shared write transaction on PostgreSQL (docs/architecture.md §11.3): other claims,
    intents and outcomes run beside it, never a workflow or operator write. Why each
    read-then-write holds there:
    - pauses and post pauses: written only by exclusive transactions, none of which commits
      while this one holds the shared lock; read as under the one-writer rule;
    - the candidate row: ``FOR UPDATE SKIP LOCKED`` locks it (re-checking that it is still
      queued and due) or passes over it, never waits; the claiming UPDATE is on a row this
      transaction holds, so two claims never take one delivery;
    - one send per account: the channels in flight and the blocked ones are read first, for
      all channels at once, and may be stale when a candidate is found (claims and outcomes
      commit meanwhile). So the account lock ``account:<channel>`` is taken without waiting
      (a claim holding it is deciding about that channel right now: pass over it; waiting
      could deadlock two claims that each hold one channel and move on to the other's), and
      under it the channel is read again: a send in flight (a claim committed since), then
      breaker and rate limit (a breaker is opened before the failing send's outcome is
      recorded, so a channel whose send is seen to have ended shows it);
    - the rate bucket: ``limits.take_token`` reads and writes it under ``limits:<channel>``;
      the probe: ``limits.mark_probe`` is one UPDATE, its own compare-and-set;
    - the audit row: appended last, under the ``audit`` lock (kepubot/queue/audit.py).
    """
    from kepubot.queue import limits
    from kepubot.queue.postpause import NOT_PAUSED  # paused posts wait (docs/delivery.md §18)

    now_text = to_db(now)
    postgresql = dialect(conn) == "postgresql"
    with transaction(conn, shared=True):
        # emergency stop (docs/operations.md §13): read in the claim's own transaction, so a
        # pause committed before this poll is seen by it; '*' stops every channel
        paused = {r[0] for r in conn.execute("SELECT scope FROM pauses")}
        if "*" in paused:
            return None
        skip = set(exclude_channels) | paused
        skip |= {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT channel FROM deliveries INDEXED BY deliveries_due"
                " WHERE state IN ('claimed', 'sending')"
            )
        }
        skip |= limits.blocked_channels(conn, now)
        # blackout dates (docs/delivery.md §16) hold publishing only: a retraction still goes
        held = sorted(set(hold_publishing) - skip)
        while True:
            exclusion = f" AND channel NOT IN ({', '.join('?' for _ in skip)})" if skip else ""
            if held:
                exclusion += (
                    f" AND NOT (kind = 'publish' AND channel IN ({', '.join('?' for _ in held)}))"
                )
            candidate = conn.execute(
                "SELECT id, channel FROM deliveries INDEXED BY deliveries_due"
                f" WHERE state = 'queued' AND not_before <= ?{exclusion}{NOT_PAUSED}"
                f" ORDER BY not_before, id LIMIT 1{skip_locked(conn)}",
                (now_text, *skip, *held),
            ).fetchone()
            if candidate is None:
                return None
            channel = candidate["channel"]
            # the per-account send lease (docs/architecture.md §11.3): one claim per account
            if not advisory_lock(conn, f"account:{channel}", wait=False) or (
                postgresql and not _still_free(conn, channel, now)
            ):
                skip.add(channel)
                continue
            limit = (rate_limits or {}).get(channel)
            if limit is not None and limits.take_token(conn, channel, limit[0], limit[1], now):
                skip.add(channel)
                continue
            break
        row = conn.execute(
            "UPDATE deliveries SET state = 'claimed', lease_owner = ?, lease_until = ?,"
            " lease_version = lease_version + 1, updated_at = ?"
            f" WHERE id = ? AND state = 'queued' RETURNING {_COLUMNS}",
            (worker, to_db(now + timedelta(seconds=lease_seconds)), now_text, candidate["id"]),
        ).fetchone()
        if row is None:  # cannot happen: this transaction holds the queued row
            raise InvalidTransition(f"delivery {candidate['id']}: changed concurrently")
        delivery = from_row(row)
        probe = limits.mark_probe(conn, channel, now)
        audit.append(
            conn,
            at=now_text,
            actor=worker,
            action="delivery.claimed",
            post_id=delivery.post_id,
            delivery_id=delivery.id,
            detail={
                "from": "queued",
                "to": "claimed",
                "lease_version": delivery.lease_version,
                **({"probe": True} if probe else {}),
            },
        )
    return delivery


def _still_free(conn: sqlite3.Connection, channel: str, now: datetime) -> bool:
    """Under the channel's account lock in a shared claim (PostgreSQL): no send in flight on
    it, then neither breaker nor rate limit holding it, read now (see ``claim_next``)."""
    from kepubot.queue import limits

    busy = conn.execute(
        "SELECT 1 FROM deliveries INDEXED BY deliveries_due"
        " WHERE state IN ('claimed', 'sending') AND channel = ? LIMIT 1",
        (channel,),
    ).fetchone()
    return busy is None and not limits.is_blocked(conn, channel, now)


def begin_send(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    now: datetime,
    lease_seconds: float,
) -> int:
    """Commit the intent (state ``sending`` + an open attempt row) before the platform call.

    Shared on PostgreSQL (docs/architecture.md §11.3): the fenced UPDATE is the compare-and-set
    (``_move``) and then holds the delivery's row until COMMIT; every writer of a delivery's
    attempts changes that row first, so the attempt number (MAX + 1) is read and written by
    one transaction at a time. The audit row goes last."""
    with transaction(conn, shared=True):
        entry = _move(
            conn,
            delivery,
            "sending",
            now=now,
            actor=worker,
            action="delivery.sending",
            extra_sets={
                "attempts": delivery.attempts + 1,
                "lease_until": to_db(now + timedelta(seconds=lease_seconds)),
            },
            fence=(worker, delivery.lease_version),
        )
        # numbered from the attempts table: `attempts` restarts after an operator's retry
        cursor = conn.execute(
            "INSERT INTO attempts (delivery_id, number, worker, started_at) VALUES (?,"
            " (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE delivery_id = ?), ?, ?)"
            " RETURNING id",
            (delivery.id, delivery.id, worker, to_db(now)),
        )
        attempt_id = int(cursor.fetchone()[0])
        audit.append(conn, **entry)
    delivery.state = "sending"
    delivery.attempts += 1
    return attempt_id


def _close_attempt(
    conn: sqlite3.Connection, delivery_id: int, now: datetime, outcome: str, error: str | None
) -> None:
    conn.execute(
        "UPDATE attempts SET finished_at = ?, outcome = ?, error = ?"
        " WHERE delivery_id = ? AND finished_at IS NULL",
        (to_db(now), outcome, error, delivery_id),
    )


def _release_lease() -> dict[str, Any]:
    return {"lease_owner": None, "lease_until": None}


def release_claim(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    now: datetime,
    not_before: datetime | None = None,
    reason: str = "",
) -> None:
    """Give a claim back before anything was sent (shutdown, breaker open, token refresh failed).
    Only a ``claimed`` delivery: once the intent is committed the request may be out."""
    if delivery.state != "claimed":
        raise InvalidTransition(
            f"delivery {delivery.id} is {delivery.state}; only a claim not yet sending is released"
        )
    sets = _release_lease()
    if not_before is not None:
        sets["not_before"] = to_db(not_before)
    # shared on PostgreSQL: one fenced UPDATE (its own compare-and-set, ``_move``), then audit
    with transaction(conn, shared=True):
        _set_state(
            conn,
            delivery,
            "queued",
            now=now,
            actor=worker,
            action="delivery.released",
            extra_sets=sets,
            fence=(worker, delivery.lease_version),
            detail={"reason": reason} if reason else None,
        )
    delivery.state = "queued"


def save_progress(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    progress: dict[str, Any],
    now: datetime,
) -> None:
    """Checkpoint a multi-step publish (uploaded media ids, draft id, ...), fenced.

    Shared on PostgreSQL: one fenced UPDATE, re-checked on the committed row if another
    transaction changed it meanwhile (see ``_move``); nothing else is read."""
    with transaction(conn, shared=True):
        changed = conn.execute(
            "UPDATE deliveries SET progress = ?, updated_at = ? WHERE id = ?"
            " AND state IN ('sending', 'processing') AND lease_owner = ? AND lease_version = ?",
            (
                json.dumps(progress, ensure_ascii=False, sort_keys=True),
                to_db(now),
                delivery.id,
                worker,
                delivery.lease_version,
            ),
        ).rowcount
        if changed != 1:
            raise LeaseLost(f"delivery {delivery.id}: no longer held by {worker}")
    delivery.progress = dict(progress)


def record_published(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    now: datetime,
    remote_id: str,
    remote_url: str | None,
    published_at: datetime | None = None,
    how: str = "sent",
) -> None:
    # shared on PostgreSQL: the fenced (or state-checked) UPDATE is the compare-and-set and
    # holds the row, which also guards its open attempt; the audit row goes last (§11.3)
    with transaction(conn, shared=True):
        entry = _move(
            conn,
            delivery,
            "published",
            now=now,
            actor=worker,
            action="delivery.published",
            extra_sets={
                **_release_lease(),
                "remote_id": remote_id,
                "remote_url": remote_url,
                "published_at": to_db(published_at or now),
                "error_kind": None,
                "last_error": None,
            },
            fence=(worker, delivery.lease_version) if delivery.state == "sending" else None,
            detail={"remote_id": remote_id, "remote_url": remote_url, "how": how},
        )
        _close_attempt(conn, delivery.id, now, "published", None)
        audit.append(conn, **entry)
    delivery.state = "published"


def record_processing(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    now: datetime,
    progress: dict[str, Any],
    poll_at: datetime,
) -> None:
    """Accepted by an asynchronous platform; poll from ``poll_at``. The lease is released.
    An assisted outlet's answer (``progress["awaiting_person"]``: the copy pack is written)
    goes to ``awaiting_person`` instead, which is never polled (docs/delivery.md §17)."""
    target = awaiting_or_processing(progress)
    # shared on PostgreSQL: the fenced (or state-checked) UPDATE is the compare-and-set and
    # holds the row, which also guards its open attempt; the audit row goes last (§11.3)
    with transaction(conn, shared=True):
        entry = _move(
            conn,
            delivery,
            target,
            now=now,
            actor=worker,
            action=f"delivery.{target}",
            extra_sets={
                **_release_lease(),
                "progress": json.dumps(progress, ensure_ascii=False, sort_keys=True),
                "not_before": to_db(poll_at),
            },
            fence=(worker, delivery.lease_version),
        )
        _close_attempt(conn, delivery.id, now, "processing", None)
        audit.append(conn, **entry)
    delivery.state = target


def awaiting_or_processing(progress: Mapping[str, Any] | None) -> DeliveryState:
    """``awaiting_person`` for an assisted task (the channel's ``Processing`` carries the
    marker), else ``processing``."""
    return "awaiting_person" if (progress or {}).get("awaiting_person") else "processing"


def record_retry(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    now: datetime,
    not_before: datetime,
    error_kind: str,
    error: str,
) -> None:
    """Definitely not accepted (refused before send, rate limited, transient code): queue again."""
    # shared on PostgreSQL: the fenced (or state-checked) UPDATE is the compare-and-set and
    # holds the row, which also guards its open attempt; the audit row goes last (§11.3)
    with transaction(conn, shared=True):
        entry = _move(
            conn,
            delivery,
            "queued",
            now=now,
            actor=worker,
            action="delivery.retry",
            extra_sets={
                **_release_lease(),
                "not_before": to_db(not_before),
                "error_kind": error_kind,
                "last_error": error,
            },
            fence=(worker, delivery.lease_version),
            detail={"error_kind": error_kind, "not_before": to_db(not_before)},
        )
        _close_attempt(conn, delivery.id, now, error_kind, error)
        audit.append(conn, **entry)
    delivery.state = "queued"


def record_failed(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    now: datetime,
    error_kind: str,
    error: str,
) -> None:
    fence = (worker, delivery.lease_version) if delivery.state == "sending" else None
    # shared on PostgreSQL: the fenced (or state-checked) UPDATE is the compare-and-set and
    # holds the row, which also guards its open attempt; the audit row goes last (§11.3)
    with transaction(conn, shared=True):
        entry = _move(
            conn,
            delivery,
            "failed",
            now=now,
            actor=worker,
            action="delivery.failed",
            extra_sets={**_release_lease(), "error_kind": error_kind, "last_error": error},
            fence=fence,
            detail={"error_kind": error_kind, "error": error},
        )
        _close_attempt(conn, delivery.id, now, "failed", error)
        audit.append(conn, **entry)
    delivery.state = "failed"


def record_unknown(
    conn: sqlite3.Connection,
    *,
    delivery: Delivery,
    worker: str,
    now: datetime,
    error: str,
    look_at: datetime | None = None,
) -> None:
    """The request may have reached the platform: never resend; reconciliation decides, from
    ``look_at`` on (platforms index new posts with a delay)."""
    fence = (worker, delivery.lease_version) if delivery.state == "sending" else None
    # shared on PostgreSQL: the fenced (or state-checked) UPDATE is the compare-and-set and
    # holds the row, which also guards its open attempt; the audit row goes last (§11.3)
    with transaction(conn, shared=True):
        entry = _move(
            conn,
            delivery,
            "unknown",
            now=now,
            actor=worker,
            action="delivery.unknown",
            extra_sets={
                **_release_lease(),
                "error_kind": "unknown",
                "last_error": error,
                "not_before": to_db(look_at or now),
            },
            fence=fence,
            detail={"error": error},
        )
        _close_attempt(conn, delivery.id, now, "unknown", error)
        audit.append(conn, **entry)
    delivery.state = "unknown"


def lease_owners(conn: sqlite3.Connection) -> set[str]:
    return {
        r[0]
        for r in conn.execute(
            "SELECT DISTINCT lease_owner FROM deliveries INDEXED BY deliveries_lease"
            " WHERE state IN ('claimed', 'sending')"
        )
    }


def expire_leases(
    conn: sqlite3.Connection,
    *,
    now: datetime,
    actor: str,
    dead_owners: Iterable[str] = (),
    look_at: datetime | None = None,
) -> tuple[int, int]:
    """Expired claims go back to the queue (nothing was sent); expired sends become unknown,
    to be looked up from ``look_at`` on (``reconcile_after_seconds`` ahead, as for any other
    unknown outcome). Leases of ``dead_owners`` (a daemon known to have died) count as expired
    now.

    Returns (released claims, sends turned unknown).
    """
    now_text = to_db(now)
    dead = list(dead_owners)
    dead_clause = f" OR lease_owner IN ({', '.join('?' for _ in dead)})" if dead else ""
    released = unknown = 0
    with transaction(conn):
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM deliveries INDEXED BY deliveries_lease"
            f" WHERE state IN ('claimed', 'sending') AND (lease_until < ?{dead_clause})",
            (now_text, *dead),
        ).fetchall()
        for row in rows:
            if row["state"] == "claimed":
                _set_state(
                    conn,
                    row,
                    "queued",
                    now=now,
                    actor=actor,
                    action="delivery.lease_expired",
                    extra_sets=_release_lease(),
                )
                released += 1
            else:
                _set_state(
                    conn,
                    row,
                    "unknown",
                    now=now,
                    actor=actor,
                    action="delivery.lease_expired",
                    extra_sets={
                        **_release_lease(),
                        "error_kind": "unknown",
                        "last_error": "the sending worker stopped before recording the outcome",
                        "not_before": to_db(look_at or now),
                    },
                )
                _close_attempt(conn, row["id"], now, "unknown", "lease expired while sending")
                unknown += 1
    return released, unknown


def record_reconciled(
    conn: sqlite3.Connection,
    *,
    delivery_id: int,
    actor: str,
    now: datetime,
    found: tuple[str, str | None] | None,
    decided: bool,
    retry_at: datetime | None = None,
    reason: str = "",
    poll_at: datetime | None = None,
    progress: Mapping[str, Any] | None = None,
) -> str:
    """Outcome of looking for an ``unknown`` delivery on the platform.

    ``found`` = (remote_id, remote_url) -> published; ``poll_at`` -> processing (the platform
    has the job; poll it from then; ``progress``, what the lookup learned about the job, is
    merged into the checkpoints); ``decided`` and not found -> queued again (confirmed
    absent); otherwise -> needs_attention.

    Shared on PostgreSQL (docs/architecture.md §11.3): the row is read locked (``FOR
    UPDATE``), so its state and progress, which the new state and the merged checkpoints are
    decided from, stay as read until COMMIT; the audit row goes last.
    """
    with transaction(conn, shared=True):
        delivery = _get_locked(conn, delivery_id)
        if delivery.state != "unknown":
            raise InvalidTransition(
                f"delivery {delivery_id} is {delivery.state}, not unknown; nothing to reconcile"
            )
        sets: dict[str, Any]
        if found is not None and delivery.kind == "retract":
            # a retraction whose answer was lost, looked at: gone (docs/delivery.md §14)
            to_state = "retracted"
            sets = {"retracted_at": to_db(now), "error_kind": None, "last_error": None}
        elif found is not None:
            to_state = "published"
            sets = {
                "remote_id": found[0],
                "remote_url": found[1],
                "published_at": to_db(now),
                "error_kind": None,
                "last_error": None,
            }
        elif poll_at is not None:
            # a platform job to poll, or an assisted task whose pack find() saw (§17)
            to_state = awaiting_or_processing(progress)
            sets = {"not_before": to_db(poll_at), "reconcile_tries": 0}
            if progress:
                merged = {**delivery.progress, **progress}
                sets["progress"] = json.dumps(merged, ensure_ascii=False, sort_keys=True)
        elif decided:
            to_state = "queued"
            sets = {"not_before": to_db(retry_at or now), "reconcile_tries": 0}
        else:
            to_state = "needs_attention"
            sets = {"last_error": reason or "the platform cannot tell whether it was published"}
        _set_state(
            conn,
            delivery,
            to_state,
            now=now,
            actor=actor,
            action="delivery.reconciled",
            extra_sets=sets,
            detail={"reason": reason} if reason else None,
        )
    return to_state


def note_reconcile_try(
    conn: sqlite3.Connection,
    *,
    delivery_id: int,
    now: datetime,
    error: str,
    next_at: datetime | None = None,
) -> int:
    """The platform could not tell this time; look again at ``next_at``. Returns the number of
    tries so far. Shared on PostgreSQL: one UPDATE, its WHERE re-checked on the committed row
    if another transaction changed it meanwhile; the count is incremented in SQL."""
    with transaction(conn, shared=True):
        row = conn.execute(
            "UPDATE deliveries SET reconcile_tries = reconcile_tries + 1, last_error = ?,"
            " updated_at = ?, not_before = ? WHERE id = ? AND state = 'unknown'"
            " RETURNING reconcile_tries",
            (error, to_db(now), to_db(next_at or now), delivery_id),
        ).fetchone()
    return int(row[0]) if row else 0


def record_polled(
    conn: sqlite3.Connection,
    *,
    delivery_id: int,
    actor: str,
    now: datetime,
    published: tuple[str, str | None] | None = None,
    failed: str | None = None,
    poll_at: datetime | None = None,
) -> str:
    """Result of polling a ``processing`` delivery.

    Shared on PostgreSQL (docs/architecture.md §11.3): the row is read locked (``FOR
    UPDATE``), so the state checked here is the state until COMMIT, also for the plain
    ``not_before`` UPDATE at the end (two daemons polling one delivery: the second waits,
    then sees the first one's outcome and is refused)."""
    with transaction(conn, shared=True):
        delivery = _get_locked(conn, delivery_id)
        if delivery.state != "processing":
            raise InvalidTransition(f"delivery {delivery_id} is {delivery.state}, not processing")
        if published is not None:
            _set_state(
                conn,
                delivery,
                "published",
                now=now,
                actor=actor,
                action="delivery.published",
                extra_sets={
                    "remote_id": published[0],
                    "remote_url": published[1],
                    "published_at": to_db(now),
                },
                detail={"remote_id": published[0], "how": "polled"},
            )
            return "published"
        if failed is not None:
            _set_state(
                conn,
                delivery,
                "failed",
                now=now,
                actor=actor,
                action="delivery.failed",
                extra_sets={"error_kind": "permanent", "last_error": failed},
                detail={"error": failed},
            )
            return "failed"
        conn.execute(
            "UPDATE deliveries SET not_before = ?, updated_at = ? WHERE id = ?",
            (to_db(poll_at or now), to_db(now), delivery_id),
        )
        return "processing"


# --- operators ------------------------------------------------------------------------------


def operator_retry(
    conn: sqlite3.Connection, *, delivery_id: int, actor: str, now: datetime
) -> None:
    """failed -> queued, with a fresh attempt budget, for the post's current approved content.
    Refused when the post is no longer approved or no longer targets the channel."""
    with transaction(conn):
        delivery = get(conn, delivery_id)
        if delivery.state != "failed":
            raise InvalidTransition(
                f"delivery {delivery_id} is {delivery.state}; only failed deliveries can be retried"
            )
        post = conn.execute(
            "SELECT state, approved_hash, channels FROM posts WHERE id = ?", (delivery.post_id,)
        ).fetchone()
        if delivery.kind == "retract":
            # taking back what is live needs no approval of its content (docs/delivery.md §14)
            _set_state(
                conn,
                delivery,
                "queued",
                now=now,
                actor=actor,
                action="delivery.retry_by_operator",
                extra_sets={"not_before": to_db(now), "attempts": 0},
            )
            return
        if post["state"] != "approved":
            raise InvalidTransition(
                f"delivery {delivery_id}: post {delivery.post_id} is {post['state']}; it must be"
                " approved again before it is sent"
            )
        if delivery.channel not in json.loads(post["channels"]):
            raise InvalidTransition(
                f"delivery {delivery_id}: post {delivery.post_id} no longer targets {delivery.channel}"
            )
        _set_state(
            conn,
            delivery,
            "queued",
            now=now,
            actor=actor,
            action="delivery.retry_by_operator",
            extra_sets={
                "not_before": to_db(now),
                "attempts": 0,
                "content_hash": post["approved_hash"],
            },
        )


def operator_resolve(
    conn: sqlite3.Connection,
    *,
    delivery_id: int,
    actor: str,
    now: datetime,
    published: str | None,
) -> str:
    """needs_attention -> published (with the URL or id a person found) | queued (not published)."""
    with transaction(conn):
        delivery = get(conn, delivery_id)
        if delivery.state != "needs_attention":
            raise InvalidTransition(
                f"delivery {delivery_id} is {delivery.state}; only deliveries in needs_attention"
                " can be resolved"
            )
        if published:
            is_url = published.startswith(("http://", "https://"))
            _set_state(
                conn,
                delivery,
                "published",
                now=now,
                actor=actor,
                action="delivery.resolved_by_operator",
                extra_sets={
                    "remote_id": None if is_url else published,
                    "remote_url": published if is_url else None,
                    "published_at": to_db(now),
                    "error_kind": None,
                },
                detail={"published": published},
            )
            return "published"
        _set_state(
            conn,
            delivery,
            "queued",
            now=now,
            actor=actor,
            action="delivery.resolved_by_operator",
            extra_sets={"not_before": to_db(now)},
            detail={"published": None},
        )
        return "queued"
