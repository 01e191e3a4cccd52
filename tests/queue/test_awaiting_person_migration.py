"""Migration 24 makes ``awaiting_person`` a delivery state (docs/delivery.md §17.1): a database
written before it, with an assisted task waiting in ``processing`` with the marker, comes out
with that task in ``awaiting_person`` (audited) and every other row as it was. Both backends."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from backends import _admin, _server_url, on_postgresql

from kepubot.queue import db, migrations
from kepubot.queue.db import transaction

NOW = "2026-03-02T01:00:00+00:00"
LATER = "2026-03-03T01:00:00+00:00"


def _before_24(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """A connection to a new database migrated up to 23, and a function dropping it."""
    before = [m for m in migrations.MIGRATIONS if m[0] < 24]
    monkeypatch.setattr(db, "MIGRATIONS", before)
    if on_postgresql():
        from kepubot.queue.store import Store

        name = f"kp_m24_{uuid.uuid4().hex[:10]}"
        with _admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        store = Store(_server_url(name))
        conn = store.conn()  # migrated up to 23 (the patched list)

        def drop() -> None:
            store.close()
            with _admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        return conn, drop
    conn = db.open_database(tmp_path / "m24.db", NOW)
    return conn, conn.close


def test_migration_24_moves_a_marked_processing_row_to_awaiting_person(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, drop = _before_24(tmp_path, monkeypatch)
    try:
        with transaction(conn):
            conn.execute(
                "INSERT INTO posts (id, title, body, author, state, content_hash, approved_hash,"
                " created_at, updated_at) VALUES (1, 't', 'b', 'ed', 'approved', 'h', 'h', ?, ?)",
                (NOW, NOW),
            )
            rows = (
                (1, "tt", {"awaiting_person": True, "pack": "/packs/a"}),  # issue 14's first form
                (2, "wechat", {"publish_id": "p-1"}),  # a real platform job: stays polled
            )
            for delivery_id, channel, progress in rows:
                conn.execute(
                    "INSERT INTO deliveries (id, post_id, channel, state, due_at, not_before,"
                    " progress, content_hash, created_at, updated_at)"
                    " VALUES (?, 1, ?, 'processing', ?, ?, ?, 'h', ?, ?)",
                    (delivery_id, channel, NOW, NOW, json.dumps(progress), NOW, NOW),
                )
        # before 24 the state does not exist
        with pytest.raises(Exception, match=r"not allowed|CHECK|check"), transaction(conn):
            conn.execute("UPDATE deliveries SET state = 'awaiting_person' WHERE id = 1")

        monkeypatch.setattr(db, "MIGRATIONS", migrations.MIGRATIONS)
        assert db.migrate(conn, LATER) == migrations.MIGRATIONS[-1][0]

        states = dict(conn.execute("SELECT id, state FROM deliveries ORDER BY id").fetchall())
        assert states == {1: "awaiting_person", 2: "processing"}
        (progress,) = conn.execute("SELECT progress FROM deliveries WHERE id = 1").fetchone()
        assert json.loads(progress)["pack"] == "/packs/a"  # the task keeps its pack
        audited = conn.execute(
            "SELECT actor, action, delivery_id FROM audit WHERE action = 'delivery.awaiting_person'"
        ).fetchall()
        assert [tuple(r) for r in audited] == [("migration 24", "delivery.awaiting_person", 1)]
        # and the person's confirmation is a transition the database now allows
        with transaction(conn):
            conn.execute(
                "UPDATE deliveries SET state = 'published', published_at = ?, remote_url = ?"
                " WHERE id = 1",
                (LATER, "https://www.toutiao.com/article/1/"),
            )
        # a state change migration 24 does not allow is still refused
        with pytest.raises(Exception, match=r"not allowed|state machine"), transaction(conn):
            conn.execute("UPDATE deliveries SET state = 'queued' WHERE id = 2")
    finally:
        drop()
