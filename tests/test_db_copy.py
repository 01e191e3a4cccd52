"""`kepubot db copy --to postgresql://…`: the demo's SQLite database into an empty PostgreSQL
database, verified; the copy then serves `post list`, `audit verify` and `status` exactly as
the original did (docs/architecture.md §11.6, docs/operations.md §15)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import _admin, _server_url, unreachable

from kepubot.demo import DEMO_SECRETS

pytestmark = pytest.mark.sqlite_only  # the source is a SQLite file; the target is made here


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if unreachable() is not None:
        pytest.skip(f"no PostgreSQL server to copy into: {unreachable()}")
    folder = tmp_path_factory.mktemp("copy") / "demo"
    env = {k: v for k, v in os.environ.items() if k != "KEPUBOT_DATABASE"}
    done = subprocess.run(
        [sys.executable, "-m", "kepubot", "demo", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.fixture
def empty_pg() -> Iterator[str]:
    name = f"kp_copy_{uuid.uuid4().hex[:10]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _server_url(name)
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def kepubot(
    demo: Path, *args: str, database: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEPUBOT_DATABASE"}
    env.update(dict.fromkeys(DEMO_SECRETS, "x"))
    if database:
        env["KEPUBOT_DATABASE"] = database
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kepubot",
            "--config",
            str(demo / "kepubot.toml"),
            "--lang",
            "en",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_copy_then_the_target_answers_like_the_source(demo: Path, empty_pg: str) -> None:
    copied = kepubot(demo, "db", "copy", "--to", empty_pg)
    assert copied.returncode == 0, copied.stderr
    assert "row counts match" in copied.stdout
    source_status = json.loads(kepubot(demo, "status", "--json").stdout)
    published = source_status["deliveries"]["published"]
    # the counts reported are the source file's own rows, read here without kepubot
    source = sqlite3.connect(demo / "kepubot.db")
    try:
        rows = {
            table: source.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("deliveries", "audit")
        }
    finally:
        source.close()
    assert published > 0 and rows["deliveries"] >= published
    lines = copied.stdout.splitlines()
    assert f"  deliveries: {rows['deliveries']}" in lines
    assert f"  audit: {rows['audit']}" in lines

    for args in (("post", "list", "--json"), ("audit", "verify")):
        source = kepubot(demo, *args)
        target = kepubot(demo, *args, database=empty_pg)
        assert source.returncode == target.returncode == 0, target.stderr
        assert target.stdout == source.stdout  # same posts; same chain, same head hash
    status = kepubot(demo, "status", "--json", database=empty_pg)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["deliveries"] == source_status["deliveries"] == {"published": published}
    assert data["daemons"], "the demo daemon's heartbeat was copied"

    # sequences run past the copied ids: a new post on the target gets a fresh id
    import psycopg

    with psycopg.connect(empty_pg, autocommit=True) as conn:
        top = conn.execute("SELECT MAX(id) FROM posts").fetchone()[0]
        audit_top = conn.execute("SELECT MAX(id) FROM audit").fetchone()[0]
    new = kepubot(
        demo,
        "--as",
        "zhang",
        "post",
        "add",
        "--title",
        "复制之后",
        "--body",
        "正文。",
        "--channel",
        "news-feed",
        database=empty_pg,
    )
    assert new.returncode == 0, new.stderr
    with psycopg.connect(empty_pg, autocommit=True) as conn:
        assert conn.execute("SELECT MAX(id) FROM posts").fetchone()[0] == top + 1
        assert conn.execute("SELECT MAX(id) FROM audit").fetchone()[0] > audit_top
    assert kepubot(demo, "audit", "verify", database=empty_pg).returncode == 0


def test_a_non_empty_target_is_refused_and_left_as_it_was(demo: Path, empty_pg: str) -> None:
    assert kepubot(demo, "db", "copy", "--to", empty_pg).returncode == 0
    import psycopg

    with psycopg.connect(empty_pg, autocommit=True) as conn:
        before = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    again = kepubot(demo, "db", "copy", "--to", empty_pg)
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), again.stderr
    assert "not empty" in lines[0] and "Traceback" not in again.stderr
    with psycopg.connect(empty_pg, autocommit=True) as conn:
        assert conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == before


@pytest.mark.parametrize(
    ("to", "words"),
    [
        ("/tmp/elsewhere.db", "not a postgresql:// URL"),
        ("postgresql://kepubot:plaintext@127.0.0.1:5432/x", "${ENV_NAME} reference"),
    ],
)
def test_a_bad_target_is_one_error_line(demo: Path, to: str, words: str) -> None:
    done = kepubot(demo, "db", "copy", "--to", to)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], done.stderr
    assert "plaintext" not in done.stderr
