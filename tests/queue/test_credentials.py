"""Run-time tokens: single-flight refresh across connections, refresh tokens never blanked."""

from __future__ import annotations

import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from backends import connect_db, on_postgresql, open_db

from kepubot.channels.base import Token
from kepubot.queue.credentials import CredentialStore, TokenCipher, load_cipher
from kepubot.queue.store import Store
from kepubot.timeutil import utcnow

CIPHER = TokenCipher(b"a test key")


def store(db: Path, owner: str, cipher: TokenCipher | None = CIPHER) -> CredentialStore:
    """Every process encrypts, as the App's store does (one key for all of them). Each
    store is one process: its own connection per thread, on the test's database."""
    target = os.environ["KEPUBOT_DATABASE"] if on_postgresql() else db
    return CredentialStore(Store(target), owner, cipher=cipher)


def test_one_refresh_for_many_concurrent_callers(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    open_db(db).close()
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
    open_db(db).close()
    s = store(db, "a")
    s.put("douyin-main", Token("t1", "r1", utcnow() + timedelta(days=1)))
    token = s.refresh("douyin-main", lambda current: Token("t2", "r2"))
    assert token.access_token == "t1"
    s.put("douyin-main", Token("t3", "r3", utcnow() + timedelta(seconds=10)))
    token = s.refresh(
        "douyin-main", lambda current: Token("t4", "r4", utcnow() + timedelta(days=1))
    )
    assert (token.access_token, token.refresh_token) == ("t4", "r4")


def test_tokens_are_encrypted_at_rest(tmp_path: Path) -> None:

    db = tmp_path / "k.db"
    open_db(db).close()
    token = Token("access-PLAIN-1234", "refresh-PLAIN-5678", utcnow() + timedelta(hours=1))
    store(db, "a").put("douyin-main", token)
    got = store(db, "b").get("douyin-main")
    assert got is not None
    assert (got.access_token, got.refresh_token) == (token.access_token, token.refresh_token)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("k.db*"))
    assert b"PLAIN" not in raw
    row = connect_db(db).execute("SELECT access_token, refresh_token FROM credentials")
    assert all(value.startswith("enc1:") for value in row.fetchone())


def test_a_plain_token_from_before_is_read_then_sealed(tmp_path: Path) -> None:

    db = tmp_path / "k.db"
    open_db(db).close()
    store(db, "old", cipher=None).put("wechat-main", Token("legacy-token", None, None))
    assert store(db, "new").get("wechat-main") == Token("legacy-token", None, None)
    store(db, "new").put("wechat-main", Token("next-token", None, None))
    (value,) = connect_db(db).execute("SELECT access_token FROM credentials").fetchone()
    assert value.startswith("enc1:") and "next-token" not in value


def test_another_key_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from kepubot.errors import StoreError

    db = tmp_path / "k.db"
    open_db(db).close()
    store(db, "a").put("wechat-main", Token("t", None, None))
    with pytest.raises(StoreError, match="encrypted with another key"):
        store(db, "b", cipher=TokenCipher(b"another key")).get("wechat-main")
    with pytest.raises(StoreError, match="no key given"):
        store(db, "c", cipher=None).get("wechat-main")


def test_the_key_file_is_made_once_even_by_processes_starting_together(tmp_path: Path) -> None:
    key_file = tmp_path / "token.key"
    ciphers: list[TokenCipher] = []
    threads = [
        threading.Thread(target=lambda: ciphers.append(load_cipher(None, key_file)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert len(key_file.read_text().strip()) == 64
    sealed = ciphers[0].seal("value")
    assert all(c.open(sealed, "x") == "value" for c in ciphers)
    assert [p.name for p in tmp_path.iterdir()] == ["token.key"]  # no temporary file left
    configured = load_cipher("from-the-environment", tmp_path / "unused.key")
    assert configured.open(configured.seal("v"), "x") == "v"
    assert not (tmp_path / "unused.key").exists()


def test_a_damaged_key_file_is_a_clear_error(tmp_path: Path) -> None:
    import pytest

    from kepubot.errors import ConfigError

    key_file = tmp_path / "token.key"
    key_file.write_text("not hex at all")
    with pytest.raises(ConfigError, match="does not hold a key"):
        load_cipher(None, key_file)
