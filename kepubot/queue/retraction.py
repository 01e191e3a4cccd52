"""Taking back what was published (docs/delivery.md §14) and corrections (§15).

A retraction is the same delivery row walking the same engine a second time with
``kind = 'retract'``: ``published`` -> ``queued`` (kind retract) -> ``claimed`` -> ``sending``
(intent committed before the platform's delete call) -> ``retracted``; an ambiguous answer goes
to ``unknown`` and is settled by looking (gone = done), a channel without a deletion interface
goes to ``needs_attention`` as a task for a person. So every guarantee of publishing (claim,
lease, fencing, intent before the call, attempts, reconciliation, alerts, audit) holds for
retraction without a second engine.

This module is the storage side (docs/architecture.md §17); who may retract and what a
correction is are kepubot/services/retraction.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kepubot.errors import InvalidTransition, NotFound
from kepubot.queue import audit
from kepubot.queue.db import transaction
from kepubot.timeutil import to_db

#: What migration 18 allows (a frozen copy; the live table is kepubot/states.py).
M018_TRANSITIONS: tuple[tuple[str, str], ...] = (
    ("published", "queued"),  # a retraction starts (only with kind = 'retract', see trigger)
    ("sending", "retracted"),
    ("unknown", "retracted"),
    ("needs_attention", "retracted"),
    ("claimed", "needs_attention"),  # a channel with no deletion interface: a person's task
)

#: Shown for a retraction that has started and not finished (any non-terminal state).
RETRACTING = "retracting"


def migrate_18(conn: Any, now_text: str) -> None:
    """Migration 18: deliveries get a ``kind`` (publish | retract) and a ``retracted`` state;
    pauses; posts get ``correction_of``. SQLite cannot alter a CHECK constraint; adding a value
    to the state list changes no stored row, so the table's definition is edited in place as
    SQLite documents for such changes (writable_schema + schema_version), within the migration
    transaction."""
    conn.execute(
        "ALTER TABLE deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'publish'"
        " CHECK (kind IN ('publish', 'retract'))"
    )
    conn.execute("ALTER TABLE deliveries ADD COLUMN retract_reason TEXT")
    conn.execute("ALTER TABLE deliveries ADD COLUMN retracted_at TEXT")
    conn.execute("ALTER TABLE posts ADD COLUMN correction_of INTEGER REFERENCES posts(id)")
    old = "'failed', 'cancelled'))"
    row = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'"
    ).fetchone()
    if row is None or old not in row[0]:
        raise RuntimeError("migration 18: the deliveries table is not the one migration 1 made")
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    conn.execute("PRAGMA writable_schema = ON")
    try:
        conn.execute(
            "UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'deliveries'",
            (row[0].replace(old, "'failed', 'cancelled', 'retracted'))"),),
        )
        conn.execute(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        conn.execute("PRAGMA writable_schema = OFF")
    rows = ", ".join(f"('{a}', '{b}')" for a, b in M018_TRANSITIONS)
    conn.execute(f"INSERT INTO delivery_transitions (from_state, to_state) VALUES {rows}")
    # A publication leaves `published` only to be retracted; nothing else may take it back.
    conn.execute(
        "CREATE TRIGGER deliveries_leave_published_only_to_retract BEFORE UPDATE OF state"
        " ON deliveries WHEN OLD.state = 'published' AND NEW.state != 'published'"
        " AND NEW.kind != 'retract'"
        " BEGIN SELECT RAISE(ABORT, 'delivery state change not allowed by the state machine:"
        " a published delivery is only left by a retraction'); END"
    )
    conn.execute("CREATE INDEX deliveries_post_kind ON deliveries(post_id, kind)")
    # Emergency stop: '*' pauses every channel, otherwise one row per paused channel.
    conn.execute(
        "CREATE TABLE pauses (scope TEXT PRIMARY KEY, reason TEXT NOT NULL,"
        " paused_by TEXT NOT NULL, paused_at TEXT NOT NULL)"
    )


# --- retraction -----------------------------------------------------------------------------


def retraction_state(rows: Iterable[Any]) -> str | None:
    """The post's retraction as shown: ``retracted`` when every retraction finished,
    ``retracting`` while one is under way, None when nothing was retracted."""

    def field(row: Any, name: str) -> Any:
        return row[name] if hasattr(row, "keys") else getattr(row, name)

    kinds = [(field(r, "kind"), field(r, "state")) for r in rows if field(r, "kind") == "retract"]
    if not kinds:
        return None
    return "retracted" if all(state == "retracted" for _, state in kinds) else RETRACTING


def shown_state(kind: str, state: str, progress: dict[str, Any] | None = None) -> str:
    """A delivery's state as people read it: a retraction under way is ``retracting``. (An
    assisted task is its own state, ``awaiting_person``, since migration 24.)"""
    if kind == "retract" and state not in ("retracted",):
        if state in ("failed", "needs_attention"):
            return f"retract:{state}"
        return RETRACTING
    return state


def start(
    conn: sqlite3.Connection,
    *,
    post_id: int,
    reason: str,
    actor: str,
    now: datetime,
    channels: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    """Queue a retraction for every published delivery of the post (or of ``channels``), and
    cancel deliveries not yet sent on those channels, in one transaction.

    Returns {"retracting": [...], "cancelled": [...], "in_flight": [...], "already": [...]}:
    ``in_flight`` ones may still be published; run retract again once they have settled."""
    from kepubot.queue import deliveries

    wanted = set(channels) if channels else None
    result: dict[str, list[str]] = {
        "retracting": [],
        "cancelled": [],
        "in_flight": [],
        "already": [],
    }
    with transaction(conn):
        post = conn.execute("SELECT id FROM posts WHERE id = ?", (post_id,)).fetchone()
        if post is None:
            raise NotFound(f"post {post_id} does not exist; see `kepubot post list`")
        rows = conn.execute(
            "SELECT id, post_id, channel, state, kind FROM deliveries WHERE post_id = ?"
            " ORDER BY channel",
            (post_id,),
        ).fetchall()
        known = {r["channel"] for r in rows}
        if wanted is not None and not wanted <= known:
            missing = ", ".join(sorted(wanted - known))
            raise InvalidTransition(f"post {post_id} has no delivery on {missing}")
        for row in rows:
            if wanted is not None and row["channel"] not in wanted:
                continue
            if row["kind"] == "retract":
                result["already"].append(row["channel"])
            elif row["state"] == "published":
                deliveries._set_state(
                    conn,
                    row,
                    "queued",
                    now=now,
                    actor=actor,
                    action="delivery.retract_requested",
                    extra_sets={
                        "kind": "retract",
                        "retract_reason": reason,
                        # due now: the watchdog's overdue clock starts with the retraction
                        "due_at": to_db(now),
                        "not_before": to_db(now),
                        "attempts": 0,
                        "reconcile_tries": 0,
                        "error_kind": None,
                        "last_error": None,
                        "next_metrics_at": None,
                    },
                    detail={"reason": reason, "channel": row["channel"]},
                )
                result["retracting"].append(row["channel"])
            elif row["state"] in ("pending", "queued", "claimed"):
                result["cancelled"].append(row["channel"])
            elif row["state"] in (
                "sending",
                "processing",
                "awaiting_person",
                "unknown",
                "needs_attention",
            ):
                # an assisted task may already be published by hand: it settles first (§17)
                result["in_flight"].append(row["channel"])
        if result["cancelled"]:
            deliveries.cancel_for_post(
                conn, post_id=post_id, now=now, actor=actor, channels=result["cancelled"]
            )
        if not (result["retracting"] or result["cancelled"]):
            if result["already"]:
                raise InvalidTransition(
                    f"post {post_id}: a retraction was already requested on"
                    f" {', '.join(result['already'])}; see `kepubot post show {post_id}`"
                )
            raise InvalidTransition(
                f"post {post_id} has no published delivery to retract"
                + (
                    f" (still in flight on {', '.join(result['in_flight'])}: run it again once"
                    " they have settled)"
                    if result["in_flight"]
                    else ""
                )
            )
        audit.append(
            conn,
            at=to_db(now),
            actor=actor,
            action="post.retract",
            post_id=post_id,
            detail={"reason": reason, **{k: v for k, v in result.items() if v}},
        )
    return result


def record_retracted(
    conn: sqlite3.Connection,
    *,
    delivery: Any,
    worker: str,
    now: datetime,
    how: str = "deleted",
    fence: bool = True,
) -> None:
    """The platform no longer has it (or the notice went out): ``retracted``."""
    from kepubot.queue import deliveries

    with transaction(conn):
        deliveries._set_state(
            conn,
            delivery,
            "retracted",
            now=now,
            actor=worker,
            action="delivery.retracted",
            extra_sets={
                "lease_owner": None,
                "lease_until": None,
                "retracted_at": to_db(now),
                "error_kind": None,
                "last_error": None,
            },
            fence=(worker, delivery.lease_version)
            if fence and delivery.state == "sending"
            else None,
            detail={"how": how},
        )
        deliveries._close_attempt(conn, delivery.id, now, "retracted", None)
    delivery.state = "retracted"


def hand_to_person(
    conn: sqlite3.Connection, *, delivery: Any, worker: str, now: datetime, task: str
) -> None:
    """A claimed retraction on a channel with no deletion interface: nothing is called; a
    person deletes it and confirms with ``kepubot delivery resolve ID --retracted``."""
    from kepubot.queue import deliveries

    with transaction(conn):
        deliveries._set_state(
            conn,
            delivery,
            "needs_attention",
            now=now,
            actor=worker,
            action="delivery.retract_by_person",
            extra_sets={"lease_owner": None, "lease_until": None, "last_error": task},
            fence=(worker, delivery.lease_version),
            detail={"task": task},
        )
    delivery.state = "needs_attention"


# --- corrections ----------------------------------------------------------------------------


def corrections_of(conn: sqlite3.Connection, post_id: int) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM posts WHERE correction_of = ? ORDER BY id", (post_id,)
        )
    ]


def correction_of(conn: sqlite3.Connection, post_id: int) -> int | None:
    row = conn.execute("SELECT correction_of FROM posts WHERE id = ?", (post_id,)).fetchone()
    return int(row[0]) if row and row[0] is not None else None


def link_correction(conn: sqlite3.Connection, correction_id: int, original_id: int) -> None:
    """Mark post ``correction_id`` as the correction of ``original_id`` (in the caller's
    transaction)."""
    conn.execute("UPDATE posts SET correction_of = ? WHERE id = ?", (original_id, correction_id))


def original_link(conn: sqlite3.Connection, post_id: int) -> dict[str, Any] | None:
    """For a correction: the original post's id, title and where it was published."""
    original = correction_of(conn, post_id)
    if original is None:
        return None
    row = conn.execute("SELECT id, title, link FROM posts WHERE id = ?", (original,)).fetchone()
    urls = {
        r["channel"]: r["remote_url"]
        for r in conn.execute(
            "SELECT channel, remote_url FROM deliveries WHERE post_id = ? AND remote_url IS NOT NULL",
            (original,),
        )
    }
    return {"post_id": row["id"], "title": row["title"], "link": row["link"], "urls": urls}


def progress_json(progress: dict[str, Any]) -> str:
    return json.dumps(progress, ensure_ascii=False, sort_keys=True)


def operator_resolve(
    conn: sqlite3.Connection, *, delivery_id: int, actor: str, now: datetime, retracted: bool
) -> str:
    """A person settles a retraction in needs_attention: it is gone (``retracted``) or still
    there (``queued``: the daemon deletes again, or hands it to a person again)."""
    from kepubot.queue import deliveries

    with transaction(conn):
        delivery = deliveries.get(conn, delivery_id)
        if delivery.kind != "retract":
            raise InvalidTransition(
                f"delivery {delivery_id} is a publication, not a retraction; use --published or"
                " --not-published"
            )
        if delivery.state != "needs_attention":
            raise InvalidTransition(
                f"delivery {delivery_id} is {delivery.state}; only deliveries in needs_attention"
                " can be resolved"
            )
        if retracted:
            deliveries._set_state(
                conn,
                delivery,
                "retracted",
                now=now,
                actor=actor,
                action="delivery.resolved_by_operator",
                extra_sets={"retracted_at": to_db(now), "error_kind": None, "last_error": None},
                detail={"retracted": True},
            )
            return "retracted"
        deliveries._set_state(
            conn,
            delivery,
            "queued",
            now=now,
            actor=actor,
            action="delivery.resolved_by_operator",
            extra_sets={"not_before": to_db(now), "reconcile_tries": 0},
            detail={"retracted": False},
        )
        return "queued"
