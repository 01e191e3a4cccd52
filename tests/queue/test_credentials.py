"""Run-time tokens: single-flight refresh across connections, refresh tokens never blanked."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from kepubot.channels.base import Token
from kepubot.queue.credentials import CredentialStore
from kepubot.queue.db import connect, open_database
from kepubot.timeutil import to_db, utcnow


def store(db: Path, owner: str) -> CredentialStore:
    local = threading.local()

    def conn():
        if not hasattr(local, "conn"):
            local.conn = connect(db)
        return local.conn

    return CredentialStore(conn, owner)


def test_one_refresh_for_many_concurrent_callers(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    open_database(db, to_db(utcnow())).close()
    old = Token("old-token", "refresh-1", utcnow() + timedelta(hours=1))
    store(db, "setup").put("wechat-main", old)
    calls: list[str] = []

    def fetch(current: Token | None) -> Token:
        calls.append(current.access_token if current else "")
        time.sleep(0.2)  # the platform is slow; everyone else must wait, not refresh too
        return Token(f"new-token-{len(calls)}", "", utcnow() + timedelta(hours=2))

    results: list[str] = []

    def worker(i: int) -> None:
        token = store(db, f"w{i}").refresh("wechat-main", fetch, stale=old)
        results.append(token.access_token)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["old-token"]
    assert results == ["new-token-1"] * 6
    stored = store(db, "check").get("wechat-main")
    assert stored is not None and stored.refresh_token == "refresh-1"  # not blanked
    assert "new-token" not in repr(stored)


def test_a_fresh_token_is_not_refreshed_again(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    open_database(db, to_db(utcnow())).close()
    s = store(db, "a")
    s.put("douyin-main", Token("t1", "r1", utcnow() + timedelta(days=1)))
    token = s.refresh("douyin-main", lambda current: Token("t2", "r2"))
    assert token.access_token == "t1"
    s.put("douyin-main", Token("t3", "r3", utcnow() + timedelta(seconds=10)))
    token = s.refresh(
        "douyin-main", lambda current: Token("t4", "r4", utcnow() + timedelta(days=1))
    )
    assert (token.access_token, token.refresh_token) == ("t4", "r4")
