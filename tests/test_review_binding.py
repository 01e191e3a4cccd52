"""An approval is bound to what the reviewer saw (issue 13 §1, docs/architecture.md §4.6):
the content hash and the level, read when `post approve|reject` starts (or given with
`--hash` / `--level`), checked again inside the write transaction."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from typing import IO, Any

from backends import connect_db, on_postgresql

from conftest import Workspace

MORE_REVIEWERS = """
[users.qian]
roles = ["reviewer"]
[users.sun]
roles = ["reviewer"]
"""


def shown(ws: Workspace, post_id: int) -> dict:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))


def submitted(ws: Workspace) -> int:
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(post_id), user="zhang")
    return post_id


def test_post_show_prints_the_content_hash(workspace: Workspace) -> None:
    post_id = submitted(workspace)
    digest = shown(workspace, post_id)["content_hash"]
    assert len(digest) == 64
    text = workspace.ok("post", "show", str(post_id), lang=None)  # the config's zh
    assert f"内容哈希: {digest}" in text


def test_an_edit_after_the_reviewer_read_the_post_refuses_the_approval(
    workspace: Workspace,
) -> None:
    """The reproduction: the reviewer opened body A, the author changed it to body B; the
    approval of A is refused, says what changed, and writes nothing."""
    ws = workspace
    post_id = submitted(ws)
    seen = shown(ws, post_id)["content_hash"]
    ws.ok("post", "edit", str(post_id), "--body", "改过的正文：肥皂洗手至少20秒。", user="zhang")
    now = shown(ws, post_id)["content_hash"]
    assert now != seen
    for command in (
        ("post", "approve", str(post_id), "--hash", seen, "--comment", "looked fine"),
        ("post", "reject", str(post_id), "--hash", seen, "--reason", "数据不对"),
    ):
        err = ws.refused(*command, user="li")
        assert f"post {post_id} changed since it was opened" in err
        assert f"content hash {seen[:12]} is now {now[:12]}, edited by zhang" in err
    assert shown(ws, post_id)["reviews"] == []
    # approving what is there now works, and the review records that content
    ws.ok("post", "approve", str(post_id), "--hash", now, "--comment", "looked fine", user="li")
    conn = connect_db(ws.db)
    hashes = [r[0] for r in conn.execute("SELECT content_hash FROM reviews")]
    conn.close()
    assert hashes == [now]


def test_level_stated_with_level_is_checked(workspace: Workspace) -> None:
    ws = workspace
    post_id = submitted(ws)
    ws.ok("post", "approve", str(post_id), "--level", "初审", user="li")
    err = ws.refused("post", "approve", str(post_id), "--level", "初审", user="wang")
    assert (
        f"post {post_id} is no longer at level 初审 but at 复审 (初审 was approved by li at" in err
    )
    assert "nothing was approved" in err
    # a number names the level too; an unknown level is bad input
    ws.refused("post", "approve", str(post_id), "--level", "终审", user="wang", contains="复审")
    ws.refused(
        "post", "approve", str(post_id), "--level", "三审", user="wang", contains="初审, 复审, 终审"
    )
    ws.refused("post", "reject", str(post_id), "--level", "1", "--reason", "x", user="wang")
    ws.ok("post", "approve", str(post_id), "--level", "2", user="wang")
    assert shown(ws, post_id)["review_level"] == 3


def test_hash_pins_one_post(workspace: Workspace) -> None:
    ws = workspace
    a, b = submitted(ws), submitted(ws)
    digest = shown(ws, a)["content_hash"]
    ws.refused("post", "approve", str(a), str(b), "--hash", digest, user="li", contains="one post")


def _lines(stream: IO[str], into: list[str]) -> None:
    for line in stream:
        into.append(line)


def _hold_write_lock(ws: Workspace) -> Any:
    """A connection holding what every kepubot write transaction waits for: SQLite's write
    lock (BEGIN IMMEDIATE), or on PostgreSQL the writers' advisory lock."""
    if on_postgresql():
        from kepubot.queue.db import PG_WRITER_LOCK

        conn = connect_db(ws.db)
        conn.execute("BEGIN")
        conn.execute("SELECT pg_advisory_xact_lock(?)", (PG_WRITER_LOCK,))
        return conn
    conn = sqlite3.connect(ws.db, timeout=30, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


def _race(ws: Workspace, post_id: int, pair: tuple[str, str], extra: tuple[str, ...]) -> list:
    """Two reviewers' `post approve` as real processes, both reading the post before either
    writes: the test holds the database's write lock until both have logged what they read
    (they then queue on the lock), and lets go."""
    hold = _hold_write_lock(ws)
    procs, outputs, readers = [], [], []
    try:
        for who in pair:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "kepubot", "--config", str(ws.config), "--as", who, "--lang", "en"),
                    *("--log-level", "debug", "post", "approve", str(post_id), *extra),
                ],
                cwd=ws.root,
                env=dict(os.environ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            lines: list[str] = []
            reader = threading.Thread(target=_lines, args=(proc.stderr, lines), daemon=True)
            reader.start()
            procs.append(proc)
            outputs.append(lines)
            readers.append(reader)
        deadline = time.monotonic() + 120
        while not all(any(f"post {post_id} read:" in line for line in out) for out in outputs):
            assert all(p.poll() is None for p in procs), outputs
            assert time.monotonic() < deadline, outputs
            time.sleep(0.02)
    finally:
        hold.execute("ROLLBACK")
        hold.close()
    results = []
    for proc, reader, lines in zip(procs, readers, outputs, strict=True):
        proc.wait(timeout=120)
        reader.join(timeout=10)
        results.append((proc.returncode, "".join(lines)))
    return results


def test_two_reviewers_approving_at_once_one_is_refused(workspace: Workspace) -> None:
    """Six pairs of simultaneous approvals by two reviewers (two posts, three levels each):
    exactly one of each pair succeeds; the other is refused because the level changed."""
    ws = workspace
    ws.config.write_text(ws.config.read_text(encoding="utf-8") + MORE_REVIEWERS, "utf-8")
    reviewers = ["li", "wang", "zhao", "qian", "sun"]
    levels = ["初审", "复审", "终审"]
    for post_number in range(2):
        post_id = submitted(ws)
        approved_by: list[str] = []
        for level, name in enumerate(levels, start=1):
            free = [
                r for r in reviewers[post_number:] + reviewers[:post_number] if r not in approved_by
            ]
            pair = (free[0], free[1])
            # the first post: each process reads the level itself; the second: --level NAME
            extra = ("--level", name) if post_number else ()
            results = _race(ws, post_id, pair, extra)
            codes = sorted(code for code, _ in results)
            assert codes == [0, 2], results
            winner = pair[[code for code, _ in results].index(0)]
            loser_err = next(err for code, err in results if code == 2)
            now = "and is approved" if level == len(levels) else f"but at {levels[level]}"
            assert f"is no longer at level {name} {now} ({name} was approved by {winner} at" in (
                loser_err
            ), loser_err
            assert "Traceback" not in loser_err
            approved_by.append(winner)
            state = shown(ws, post_id)
            approvals = [r for r in state["reviews"] if r["decision"] == "approve"]
            assert [(r["level_name"], r["reviewer"]) for r in approvals] == list(
                zip(levels[:level], approved_by, strict=True)
            )
        assert shown(ws, post_id)["state"] == "approved"
