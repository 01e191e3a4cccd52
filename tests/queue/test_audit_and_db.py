"""The audit chain, the SQL-level guards and the connection settings, on a real database file."""

from __future__ import annotations

import json
import sqlite3
import stat

import pytest
from backends import connect_db, on_postgresql

from conftest import SECRETS, Workspace
from kepubot.app import App
from kepubot.config import load_config
from kepubot.queue import audit, deliveries
from kepubot.queue.db import connect
from kepubot.queue.migrations import MIGRATIONS
from kepubot.timeutil import utcnow


def workflow(ws: Workspace) -> int:
    post_id = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


def test_changing_one_audit_row_by_hand_fails_verify_at_that_row(workspace: Workspace) -> None:
    workflow(workspace)
    assert "audit chain intact: 7 rows" in workspace.ok("audit", "verify")
    conn = connect_db(workspace.db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 4")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit WHERE id = 4")
    # Someone with file access can drop the trigger; the chain still tells.
    conn.execute("DROP TRIGGER audit_no_update" + (" ON audit" if on_postgresql() else ""))
    conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = 4")
    conn.commit()
    conn.close()
    result = workspace.run("audit", "verify")
    assert result.exit_code == 1
    assert (
        result.stderr.strip()
        == "error: audit row 4 is broken: its content does not match its hash (altered)"
    )


def test_deleting_an_audit_row_is_found(workspace: Workspace) -> None:
    workflow(workspace)
    conn = connect_db(workspace.db)
    conn.execute("DROP TRIGGER audit_no_delete" + (" ON audit" if on_postgresql() else ""))
    conn.execute("DELETE FROM audit WHERE id = 3")
    conn.commit()
    conn.close()
    result = workspace.run("audit", "verify")
    assert result.exit_code == 1 and "audit row 4 is broken: row 3 is missing" in result.stderr


def test_keyed_chain_cannot_be_recomputed_without_the_key(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEPUBOT_AUDIT_KEY", "audit-key")
    workflow(workspace)
    assert "intact" in workspace.ok("audit", "verify")
    monkeypatch.delenv("KEPUBOT_AUDIT_KEY")
    assert workspace.run("audit", "verify").exit_code == 1


def test_delivery_transitions_are_guarded_in_sql(workspace: Workspace) -> None:
    workflow(workspace)
    conn = connect_db(workspace.db)
    with pytest.raises(sqlite3.IntegrityError, match="not allowed by the state machine"):
        conn.execute("UPDATE deliveries SET state = 'published', published_at = 'x' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE deliveries SET state = 'teleported' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match=r"UNIQUE|unique constraint"):
        conn.execute(
            "INSERT INTO deliveries (post_id, channel, state, due_at, not_before, content_hash,"
            " created_at, updated_at) SELECT post_id, channel, 'queued', due_at, not_before,"
            " content_hash, created_at, updated_at FROM deliveries WHERE id = 1"
        )
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM deliveries WHERE id = 1")
    conn.close()


def test_author_review_refused_by_trigger_too(workspace: Workspace) -> None:
    post_id = workflow(workspace)
    conn = connect_db(workspace.db)
    with pytest.raises(sqlite3.IntegrityError, match="never reviews"):
        conn.execute(
            "INSERT INTO reviews (post_id, round, level, reviewer, decision, content_hash, at)"
            " VALUES (?, 1, 1, 'zhang', 'approve', 'h', 'now')",
            (post_id,),
        )
    # li approved level 1 of round 1: level 2 of the same round is refused (the trigger says
    # so before the unique index would)
    with pytest.raises(sqlite3.IntegrityError, match="at most one level"):
        conn.execute(
            "INSERT INTO reviews (post_id, round, level, reviewer, decision, content_hash, at)"
            " VALUES (?, 1, 2, 'li', 'approve', 'h', 'now')",
            (post_id,),
        )
    # a new round (after an edit) is reviewed afresh: li may approve another level there
    # (migration 16, issue 13 §2)
    conn.execute(
        "INSERT INTO reviews (post_id, round, level, reviewer, decision, content_hash, at)"
        " VALUES (?, 2, 2, 'li', 'approve', 'h', 'now')",
        (post_id,),
    )
    conn.close()


def test_every_connection_is_wal_full_with_foreign_keys(tmp_path) -> None:
    conn = connect(tmp_path / "x.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    conn.execute("CREATE TABLE t (x)")
    for suffix in ("", "-wal", "-shm"):
        mode = stat.S_IMODE((tmp_path / f"x.db{suffix}").stat().st_mode)
        assert mode == 0o600, (suffix, oct(mode))
    conn.close()


def test_migrations_are_recorded_and_idempotent(workspace: Workspace) -> None:
    workspace.ok("post", "list")
    workspace.ok("post", "list")
    conn = connect_db(workspace.db)
    rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
    assert [r[0] for r in rows] == sorted(version for version, _, _ in MIGRATIONS)
    conn.close()


def test_no_secret_reaches_the_database(workspace: Workspace) -> None:
    workflow(workspace)
    workspace.ok("post", "preview", "1")
    raw = b"".join(p.read_bytes() for p in workspace.root.glob("kepubot.db*"))
    for value in SECRETS.values():
        assert value.encode() not in raw


def test_lease_fencing_refuses_a_stale_worker(workspace: Workspace) -> None:
    workflow(workspace)
    app = App(load_config(workspace.config))
    now = utcnow()
    first = deliveries.claim_next(app.store.conn(), worker="w1", now=now, lease_seconds=1)
    assert first is not None
    from datetime import timedelta

    later = now + timedelta(seconds=5)
    assert deliveries.expire_leases(app.store.conn(), now=later, actor="reaper") == (1, 0)
    # w2 claims the same delivery (oldest due first); w1's late intent must be refused.
    second = deliveries.claim_next(app.store.conn(), worker="w2", now=later, lease_seconds=60)
    assert second is not None and second.id == first.id
    assert second.lease_version == first.lease_version + 1
    from kepubot.errors import LeaseLost

    with pytest.raises(LeaseLost):
        deliveries.begin_send(
            app.store.conn(), delivery=first, worker="w1", now=later, lease_seconds=60
        )
    deliveries.begin_send(
        app.store.conn(), delivery=second, worker="w2", now=later, lease_seconds=60
    )
    open_attempts = (
        app.store.conn()
        .execute(
            "SELECT COUNT(*) FROM attempts WHERE delivery_id = ? AND finished_at IS NULL",
            (second.id,),
        )
        .fetchone()[0]
    )
    assert open_attempts == 1
    # A crash while sending: the lease expires and the outcome is unknown, never queued.
    assert deliveries.expire_leases(
        app.store.conn(), now=later + timedelta(seconds=120), actor="reaper"
    ) == (0, 1)
    assert deliveries.get(app.store.conn(), second.id).state == "unknown"
    assert audit.verify(app.store.conn()).ok
    history = [json.dumps(r.detail) for r in audit.rows_for_post(app.store.conn(), second.post_id)]
    assert any('"to": "unknown"' in h for h in history)
    app.close()
