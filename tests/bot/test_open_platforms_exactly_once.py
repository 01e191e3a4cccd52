"""Bilibili and Kuaishou exactly once (issue 15): the real daemon (`kepubot run` subprocesses)
publishes the sample video to both against the sandbox, with the creating call (Bilibili's
archive submission, Kuaishou's photo/publish) applied and its answer lost, and with `kill -9`
of the daemon while such a call hangs. Both platforms review asynchronously and list a new
item only after a while, so "not listed yet" is not "never created".

What counts is the sandbox's ledger: every post is created exactly once on each platform, or
its delivery is in needs_attention with an alert; never twice.
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
from open_platforms import BILI, ENV, KS

from conftest import SAMPLES
from daemon_env import DaemonEnv
from kepubot.sandbox.server import Sandbox
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow
from platform_env import FAST_DAEMON, sandbox_request

VIDEO = SAMPLES / "media" / "short-video.mp4"
COVER = SAMPLES / "media" / "cover-wide.png"
CHANNELS = ["bilibili-main", "kuaishou-main"]
CREATING = {"bilibili": "add-by-utoken", "kuaishou": "photo/publish"}


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

            [channels.bilibili-main]
            type = "bilibili"
            client_id = "{BILI["client_id"]}"
            client_secret = "${{KP_BILI_SECRET}}"
            access_token = "${{KP_BILI_TOKEN}}"
            refresh_token = "${{KP_BILI_REFRESH}}"
            api_base = "{base}"
            upload_base = "{base}"
            oauth_base = "{base}"
            tid = 201
            poll_seconds = 0.5
            timeout_seconds = {timeout}
            min_gap_minutes = 0
            settle_minutes = {settle_minutes}

            [channels.kuaishou-main]
            type = "kuaishou"
            app_id = "{KS["app_id"]}"
            app_secret = "${{KP_KS_SECRET}}"
            access_token = "${{KP_KS_TOKEN}}"
            refresh_token = "${{KP_KS_REFRESH}}"
            api_base = "{base}"
            poll_seconds = 0.5
            timeout_seconds = {timeout}
            min_gap_minutes = 0
            settle_minutes = {settle_minutes}
            """
        )
    )


class VideoEnv(DaemonEnv):
    def env(self, **extra: str) -> dict[str, str]:
        base = super().env()
        base.update(ENV)
        base.update(extra)
        return base

    def app(self):  # type: ignore[override]
        for name, value in ENV.items():
            os.environ[name] = value
        return super().app()

    def videos(self, count: int) -> list[int]:
        app = self.app()
        now = utcnow()
        items = [
            (
                PostInput(
                    title=f"洗手的科学 第{i}期",
                    body=f"第 {i} 期：七步洗手法。",
                    tags=["科普", "洗手"],
                    video=VIDEO,
                    cover=COVER,
                    channels=CHANNELS,
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

    def created(self, route: str) -> Counter[str]:
        key = "title" if route == "bilibili" else "caption"
        return Counter(e["body"][key] for e in self.ledger(route)["accepted"])

    def rows(self) -> list[tuple[int, str, str, str | None]]:
        conn = connect_db(self.db)
        try:
            return conn.execute(
                "SELECT id, channel, state, remote_id FROM deliveries ORDER BY id"
            ).fetchall()
        finally:
            conn.close()

    def attention_alerts(self) -> set[str]:
        conn = connect_db(self.db)
        try:
            rows = conn.execute("SELECT key FROM alerts WHERE key LIKE 'attention:%'").fetchall()
        finally:
            conn.close()
        return {key for (key,) in rows}


def make_env(tmp_path: Path, *, timeout: float = 2, settle_minutes: float = 60) -> VideoEnv:
    sandbox = Sandbox()
    base = sandbox.start()
    sandbox_request(f"{base}/_sandbox/secrets", {"bilibili": BILI, "kuaishou": KS})
    sandbox_request(
        f"{base}/_sandbox/settings",
        {
            "bilibili_review_seconds": 2,
            "bilibili_list_delay_seconds": 3,
            "kuaishou_pending_seconds": 2,
            "kuaishou_list_delay_seconds": 3,
        },
    )
    root = tmp_path / "ws"
    root.mkdir()
    (root / "kepubot.toml").write_text(
        config(base, timeout=timeout, settle_minutes=settle_minutes), encoding="utf-8"
    )
    env = VideoEnv(root, sandbox, base)
    app = env.app()
    app.conn  # noqa: B018 — create and migrate before any daemon starts
    app.close()
    return env


@pytest.fixture
def cleanup() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        if isinstance(thing, Sandbox):
            thing.stop()
        elif thing.poll() is None:
            thing.kill()
            thing.wait(timeout=10)


def exactly_once_or_attention(env: VideoEnv, posts: int) -> dict[str, int]:
    states = env.states()
    assert sum(states.values()) == posts * len(CHANNELS)
    assert set(states) <= {"published", "needs_attention"}, states
    alerted = env.attention_alerts()
    for route in CREATING:
        ledger = env.ledger(route)
        assert ledger["duplicates"] == [], ledger["duplicates"]
        assert all(n == 1 for n in env.created(route).values()), env.created(route)
    items = {e["id"] for route in CREATING for e in env.ledger(route)["accepted"]}
    for delivery_id, _channel, state, remote_id in env.rows():
        if state == "published":
            assert remote_id in items, (delivery_id, remote_id)
        else:
            assert f"attention:{delivery_id}" in alerted, (delivery_id, alerted)
    return states


def test_lost_answers_publish_the_video_once_on_both(tmp_path: Path, cleanup: list[Any]) -> None:
    env = make_env(tmp_path)
    cleanup.append(env.sandbox)
    env.faults(
        [{"route": route, "path": path, "mode": "drop_after"} for route, path in CREATING.items()]
    )
    env.videos(2)
    daemon = env.start()
    cleanup.append(daemon)
    env.wait_for(lambda: env.states().get("published", 0) == 4, timeout=120)
    assert env.stop(daemon) == 0
    assert exactly_once_or_attention(env, 2) == {"published": 4}
    for route, path in CREATING.items():
        assert sorted(env.created(route).values()) == [1, 1]
        calls = [r for r in env.requests_seen() if path in r["path"]]
        assert len(calls) == 2 and all(r["fault"] == "drop_after" for r in calls), route


def test_kill_9_during_an_accepted_creating_call(tmp_path: Path, cleanup: list[Any]) -> None:
    env = make_env(tmp_path, timeout=30)
    cleanup.append(env.sandbox)
    rules: list[dict[str, Any]] = []
    for route, path in CREATING.items():
        rules.append(
            {"route": route, "path": path, "mode": "hang_after", "seconds": 120, "count": 1}
        )
        rules.append({"route": route, "path": path, "mode": "drop_after", "rate": 0.5})
    env.faults(rules, seed=5)
    env.videos(2)
    first = env.start()
    cleanup.append(first)
    env.wait_for(
        lambda: all(len(env.ledger(route)["accepted"]) >= 1 for route in CREATING), timeout=60
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    second = env.start()
    cleanup.append(second)
    env.wait_for(lambda: env.states().get("published", 0) == 4, timeout=150)
    assert env.stop(second) == 0
    assert exactly_once_or_attention(env, 2) == {"published": 4}


def test_a_creation_that_never_shows_goes_to_a_person(tmp_path: Path, cleanup: list[Any]) -> None:
    env = make_env(tmp_path, settle_minutes=0.05)
    cleanup.append(env.sandbox)
    sandbox_request(
        f"{env.base}/_sandbox/settings",
        {"bilibili_list_delay_seconds": 3600, "kuaishou_list_delay_seconds": 3600},
    )
    env.faults(
        [{"route": route, "path": path, "mode": "drop_after"} for route, path in CREATING.items()]
    )
    env.videos(1)
    daemon = env.start()
    cleanup.append(daemon)
    env.wait_for(lambda: env.states().get("needs_attention", 0) == 2, timeout=90)
    time.sleep(1)  # a daemon that would wrongly send again gets the chance to
    assert env.stop(daemon) == 0
    assert exactly_once_or_attention(env, 1) == {"needs_attention": 2}
    for route in CREATING:
        assert list(env.created(route).values()) == [1]


def test_an_ended_authorization_pauses_both_then_new_tokens_publish(
    tmp_path: Path, cleanup: list[Any]
) -> None:
    """Both refresh tokens expired: the videos wait in the queue (never failed, never lost),
    the log asks for a new authorization; new tokens in the config publish them once."""
    env = make_env(tmp_path)
    cleanup.append(env.sandbox)
    for route in CREATING:
        sandbox_request(f"{env.base}/_sandbox/expire", {"route": route, "what": "access"})
        sandbox_request(f"{env.base}/_sandbox/expire", {"route": route, "what": "refresh"})
    env.videos(1)
    for _ in range(3):
        env.run_once()
        time.sleep(0.3)
    assert env.states() == {"queued": 2}, env.states()
    logs = "".join(path.read_text(encoding="utf-8") for path in env.logs).lower()
    assert "authorise the application again" in logs
    for secret in (*ENV.values(),):
        assert secret.lower() not in logs
    fresh = {
        "bilibili": {
            **BILI,
            "access_token": "bili-access-NEW",
            "refresh_token": "bili-refresh-NEW",
        },
        "kuaishou": {**KS, "access_token": "ks-access-NEW", "refresh_token": "ks-refresh-NEW"},
    }
    sandbox_request(f"{env.base}/_sandbox/secrets", fresh)
    daemon = env.start(
        KP_BILI_TOKEN="bili-access-NEW",
        KP_BILI_REFRESH="bili-refresh-NEW",
        KP_KS_TOKEN="ks-access-NEW",
        KP_KS_REFRESH="ks-refresh-NEW",
    )
    cleanup.append(daemon)
    env.wait_for(lambda: env.states().get("published", 0) == 2, timeout=90)
    assert env.stop(daemon) == 0
    assert exactly_once_or_attention(env, 1) == {"published": 2}
