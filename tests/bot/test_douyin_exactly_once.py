"""Douyin exactly once (issue 10): the real daemon (`kepubot run` subprocesses) against the
sandbox's Douyin, with "accepted, then the answer is lost" on create_video, with and without
`kill -9` of the daemon in the middle of the request. The sandbox keeps a created video out of
video_list while it processes it, so "not listed yet" is not "never created".

What counts is the sandbox's ledger: every post is created exactly once, or its delivery is in
needs_attention with an alert; never twice.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from backends import connect_db

from conftest import SAMPLES
from daemon_env import DaemonEnv
from kepubot.sandbox.server import Sandbox
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow
from platform_env import FAST_DAEMON, sandbox_request

DOUYIN = {
    "client_key": "aw-once-key",
    "client_secret": "douyin-secret-ONCE-1",
    "access_token": "douyin-access-ONCE-2",
    "refresh_token": "douyin-refresh-ONCE-3",
    "open_id": "open-id-once",
}
VIDEO = SAMPLES / "media" / "short-video.mp4"
CREATE = "create_video"


def config(base: str, *, timeout: float, settle_minutes: float) -> str:
    return (
        '[kepubot]\ndatabase = "kepubot.db"\n'
        + FAST_DAEMON
        + textwrap.dedent(
            f"""
            [users.ed]
            roles = ["editor"]
            [users.rev]
            roles = ["reviewer"]

            [channels.douyin-main]
            type = "douyin"
            client_key = "{DOUYIN["client_key"]}"
            client_secret = "${{KEPUBOT_DOUYIN_SECRET}}"
            open_id = "{DOUYIN["open_id"]}"
            access_token = "${{KEPUBOT_DOUYIN_TOKEN}}"
            refresh_token = "${{KEPUBOT_DOUYIN_REFRESH}}"
            api_base = "{base}"
            timeout_seconds = {timeout}
            min_gap_minutes = 0
            settle_minutes = {settle_minutes}
            """
        )
    )


class DouyinEnv(DaemonEnv):
    def env(self, **extra: str) -> dict[str, str]:
        base = super().env()
        base.update(
            KEPUBOT_DOUYIN_SECRET=DOUYIN["client_secret"],
            KEPUBOT_DOUYIN_TOKEN=DOUYIN["access_token"],
            KEPUBOT_DOUYIN_REFRESH=DOUYIN["refresh_token"],
        )
        base.update(extra)
        return base

    def app(self):  # type: ignore[override]
        for name, value in self.env().items():
            if name.startswith("KEPUBOT_DOUYIN"):
                os.environ[name] = value
        return super().app()

    def videos(self, count: int) -> list[int]:
        """``count`` approved video posts for douyin-main, due now."""
        app = self.app()
        now = utcnow()
        items = [
            (
                PostInput(
                    title=f"洗手的科学 第{i}期",
                    body=f"第 {i} 期：七步洗手法。",
                    tags=["科普"],
                    video=VIDEO,
                    channels=["douyin-main"],
                ),
                f"test {i}",
            )
            for i in range(count)
        ]
        ids = create_posts(app, "ed", items, now=now)
        submit(app, "ed", ids, now=now)
        approve(app, "rev", ids, now=now)
        app.close()
        return ids

    def created(self) -> Counter[str]:
        """How many times the platform created each text."""
        return Counter(e["body"]["text"] for e in self.ledger("douyin")["accepted"])

    def attention_alerts(self) -> list[tuple[str, str]]:
        conn = connect_db(self.db)
        try:
            return conn.execute(
                "SELECT key, message FROM alerts WHERE key LIKE 'attention:%'"
            ).fetchall()
        finally:
            conn.close()

    def attempts(self) -> list[int]:
        conn = connect_db(self.db)
        try:
            return [n for (n,) in conn.execute("SELECT attempts FROM deliveries ORDER BY id")]
        finally:
            conn.close()

    def rows(self) -> list[tuple[int, str, str | None]]:
        conn = connect_db(self.db)
        try:
            return conn.execute(
                "SELECT id, state, remote_id FROM deliveries ORDER BY id"
            ).fetchall()
        finally:
            conn.close()


def make_env(
    tmp_path: Path,
    *,
    processing_seconds: float,
    timeout: float = 2,
    settle_minutes: float = 60,
) -> DouyinEnv:
    sandbox = Sandbox()
    base = sandbox.start()
    sandbox_request(f"{base}/_sandbox/secrets", {"douyin": DOUYIN})
    sandbox_request(
        f"{base}/_sandbox/settings",
        {"douyin_processing_seconds": processing_seconds, "douyin_review_seconds": 0},
    )
    root = tmp_path / "ws"
    root.mkdir()
    text = config(base, timeout=timeout, settle_minutes=settle_minutes)
    (root / "kepubot.toml").write_text(text, encoding="utf-8")
    env = DouyinEnv(root, sandbox, base)
    app = env.app()
    app.conn  # noqa: B018 — create and migrate before any daemon starts
    app.close()
    return env


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    """Daemons and sandboxes a test started, stopped whatever happens."""
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        if isinstance(thing, Sandbox):
            thing.stop()
        elif thing.poll() is None:
            thing.kill()
            thing.wait(timeout=10)


def exactly_once_or_attention(env: DouyinEnv, posts: int) -> dict[str, int]:
    """The ledger against the deliveries: nothing twice; a post the platform created is
    published with that item_id, or needs attention with an alert."""
    ledger = env.ledger("douyin")
    created = env.created()
    assert ledger["duplicates"] == [], ledger["duplicates"]
    assert all(n == 1 for n in created.values()), created
    items = {e["id"] for e in ledger["accepted"]}
    states = env.states()
    assert sum(states.values()) == posts
    assert set(states) <= {"published", "needs_attention"}, states
    alerted = {key for key, _ in env.attention_alerts()}
    for delivery_id, state, remote_id in env.rows():
        if state == "published":
            assert remote_id in items, (delivery_id, remote_id)
        else:
            assert f"attention:{delivery_id}" in alerted, (delivery_id, alerted)
    return states


def test_lost_create_answers_publish_each_video_once(tmp_path: Path, cleanup: list[Any]) -> None:
    env = make_env(tmp_path, processing_seconds=3)
    cleanup.append(env.sandbox)
    env.faults([{"route": "douyin", "path": CREATE, "mode": "drop_after"}])  # every create
    env.videos(3)
    daemon = env.start()
    cleanup.append(daemon)
    env.wait_for(lambda: env.states().get("published", 0) == 3, timeout=90)
    assert env.stop(daemon) == 0
    states = exactly_once_or_attention(env, 3)
    assert states == {"published": 3}
    assert sorted(env.created().values()) == [1, 1, 1]
    # every create really lost its answer, and was looked up rather than sent again
    creates = [r for r in env.requests_seen() if CREATE in r["path"]]
    assert len(creates) == 3 and all(r["fault"] == "drop_after" for r in creates)
    assert env.attempts() == [1, 1, 1]  # settled by lookups, never by a second attempt


def test_kill_9_during_an_accepted_create(tmp_path: Path, cleanup: list[Any]) -> None:
    env = make_env(tmp_path, processing_seconds=3, timeout=30)
    cleanup.append(env.sandbox)
    # the first create is applied, then its answer hangs: the daemon is killed while waiting;
    # later creates lose their answers at random
    env.faults(
        [
            {"route": "douyin", "path": CREATE, "mode": "hang_after", "seconds": 120, "count": 1},
            {"route": "douyin", "path": CREATE, "mode": "drop_after", "rate": 0.5},
        ],
        seed=3,
    )
    env.videos(3)
    first = env.start()
    cleanup.append(first)
    env.wait_for(lambda: len(env.ledger("douyin")["accepted"]) >= 1, timeout=60)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert env.states().get("sending", 0) + env.states().get("claimed", 0) >= 1
    second = env.start()
    cleanup.append(second)
    env.wait_for(lambda: env.states().get("published", 0) == 3, timeout=120)
    assert env.stop(second) == 0
    assert exactly_once_or_attention(env, 3) == {"published": 3}
    assert sorted(env.created().values()) == [1, 1, 1]


@pytest.mark.parametrize("offline", [False, True], ids=["still processing", "list offline"])
def test_a_create_that_never_shows_goes_to_a_person(
    tmp_path: Path, cleanup: list[Any], offline: bool
) -> None:
    """The video stays invisible (or video_list is taken offline, 28001056) past settle_minutes:
    needs_attention with an alert saying what is known; create is never sent again."""
    env = make_env(tmp_path, processing_seconds=3600, settle_minutes=0.05)
    cleanup.append(env.sandbox)
    rules: list[dict[str, Any]] = [{"route": "douyin", "path": CREATE, "mode": "drop_after"}]
    if offline:
        rules.append(
            {"route": "douyin", "path": "video_list", "mode": "platform_error", "code": 28001056}
        )
    env.faults(rules)
    env.videos(1)
    daemon = env.start()
    cleanup.append(daemon)
    env.wait_for(lambda: env.states().get("needs_attention", 0) == 1, timeout=60)
    time.sleep(1)  # a daemon that would wrongly send again gets the chance to
    assert env.stop(daemon) == 0
    assert exactly_once_or_attention(env, 1) == {"needs_attention": 1}
    assert list(env.created().values()) == [1]  # created once on the platform, never again
    [(_, message)] = env.attention_alerts()
    video_id = env.ledger("douyin")["accepted"][0]["body"]["video_id"]
    assert video_id in message and "creator.douyin.com" in message
    assert ("28001056" in message) is offline
