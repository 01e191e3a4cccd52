"""The hash-chained, append-only audit log.

``hash = SHA-256(prev_hash || canonical JSON of the row)``. When ``KEPUBOT_AUDIT_KEY`` is set,
the chain is an HMAC keyed by it, so someone who can write the database file but does not
know the key cannot recompute the chain after altering a row (docs/architecture.md §9).
Appends happen inside the caller's transaction, so a change and its audit row commit together.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
from dataclasses import dataclass
from typing import Any

from kepubot.queue.db import advisory_lock

GENESIS = "0" * 64


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    message = (prev_hash + canonical).encode("utf-8")
    key = os.environ.get("KEPUBOT_AUDIT_KEY")
    if key:
        return hmac.new(key.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def _fields(
    row_id: int,
    at: str,
    actor: str,
    action: str,
    post_id: int | None,
    delivery_id: int | None,
    detail: str,
) -> dict[str, Any]:
    return {
        "id": row_id,
        "at": at,
        "actor": actor,
        "action": action,
        "post_id": post_id,
        "delivery_id": delivery_id,
        "detail": detail,
    }


def append(
    conn: sqlite3.Connection,
    *,
    at: str,
    actor: str,
    action: str,
    post_id: int | None = None,
    delivery_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> int:
    """Append one row. Must run inside the caller's ``BEGIN IMMEDIATE`` transaction."""
    if not conn.in_transaction:
        raise RuntimeError("audit.append must run inside a transaction")
    # One append at a time on the chain's head (docs/architecture.md §11.3). In a shared write
    # transaction on PostgreSQL other appenders run beside this one: the head is read only
    # after the lock is held, and the lock is released after the previous holder's COMMIT is
    # visible, so the head read is the committed newest row. Every transaction holding this
    # lock is serialised from here to its COMMIT: callers append their audit row last.
    advisory_lock(conn, "audit")
    last = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_hash = last["hash"] if last else GENESIS
    row_id = (last["id"] if last else 0) + 1
    detail_text = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)
    digest = _digest(
        prev_hash, _fields(row_id, at, actor, action, post_id, delivery_id, detail_text)
    )
    conn.execute(
        "INSERT INTO audit (id, at, actor, action, post_id, delivery_id, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (row_id, at, actor, action, post_id, delivery_id, detail_text, prev_hash, digest),
    )
    return row_id


@dataclass
class AuditRow:
    id: int
    at: str
    actor: str
    action: str
    post_id: int | None
    delivery_id: int | None
    detail: dict[str, Any]


def rows_for_post(conn: sqlite3.Connection, post_id: int) -> list[AuditRow]:
    cursor = conn.execute(
        "SELECT id, at, actor, action, post_id, delivery_id, detail FROM audit"
        " WHERE post_id = ? ORDER BY id",
        (post_id,),
    )
    return [_row(r) for r in cursor]


def recent(conn: sqlite3.Connection, limit: int = 50) -> list[AuditRow]:
    cursor = conn.execute(
        "SELECT id, at, actor, action, post_id, delivery_id, detail FROM audit"
        " ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return list(reversed([_row(r) for r in cursor]))


def _row(r: sqlite3.Row) -> AuditRow:
    try:
        detail = json.loads(r["detail"])
    except (TypeError, ValueError):
        detail = {"unreadable": r["detail"]}
    return AuditRow(
        r["id"], r["at"], r["actor"], r["action"], r["post_id"], r["delivery_id"], detail
    )


def head_hash(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


@dataclass
class VerifyResult:
    rows: int
    broken_id: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify(conn: sqlite3.Connection) -> VerifyResult:
    """Walk the chain in id order; report the first row whose links or content do not match."""
    prev_hash = GENESIS
    expected_id = 1
    count = 0
    cursor = conn.execute(
        "SELECT id, at, actor, action, post_id, delivery_id, detail, prev_hash, hash"
        " FROM audit ORDER BY id"
    )
    for r in cursor:
        count += 1
        if r["id"] != expected_id:
            return VerifyResult(
                count, r["id"], f"row {expected_id} is missing (rows were deleted before {r['id']})"
            )
        if r["prev_hash"] != prev_hash:
            return VerifyResult(count, r["id"], "its prev_hash does not match the row before it")
        fields = _fields(
            r["id"], r["at"], r["actor"], r["action"], r["post_id"], r["delivery_id"], r["detail"]
        )
        if _digest(prev_hash, fields) != r["hash"]:
            return VerifyResult(count, r["id"], "its content does not match its hash (altered)")
        prev_hash = r["hash"]
        expected_id += 1
    return VerifyResult(count)
