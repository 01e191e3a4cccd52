"""Exactly once on the open-platform video channels (issues 10 and 15): the real daemon
(`kepubot run` subprocesses) publishes the sample video against the sandbox's Douyin, and
against its Bilibili and Kuaishou together, with the creating call (Douyin's create_video,
Bilibili's archive submission, Kuaishou's photo/publish) applied and its answer lost, with and
without `kill -9` of the daemon while such a call hangs. Each platform processes or reviews a
new item and lists it only after a while (the sandbox keeps a created Douyin video out of
video_list while it processes it), so "not listed yet" is not "never created".

The tests are the same for every platform; ``Platforms`` holds what differs (channels,
secrets, the creating calls, the sandbox settings that keep a new item invisible). What counts
is the sandbox's ledger: every post is created exactly once on each platform, or its delivery
is in needs_attention with an alert; never twice.
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
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

DOUYIN = {
    "client_key": "aw-once-key",
    "client_secret": "douyin-secret-ONCE-1",
    "access_token": "douyin-access-ONCE-2",
    "refresh_token": "douyin-refresh-ONCE-3",
    "open_id": "open-id-once",
}


@dataclass(frozen=True)
class Platforms:
    """One daemon's video channels and what the tests need to know of their platforms."""

    name: str
    channels: tuple[str, ...]
    #: sandbox route -> (the creating call's path, the ledger field that names the post)
    creating: dict[str, tuple[str, str]]
    secrets: dict[str, dict[str, str]]
    env: dict[str, str]
    #: the [channels.*] tables; {base}, {timeout} and {settle_minutes} are filled in
    tables: str
    #: sandbox settings for every test, and those that keep a created item out of lookups
    settings: dict[str, float]
    invisible: dict[str, float]
    tags: tuple[str, ...]
    cover: bool
    #: posts the lost-answer and kill -9 tests publish, and the kill -9 test's fault seed
    posts: int
    kill_seed: int
    #: a fault that takes the account's list offline, where the platform has one
    offline: dict[str, Any] | None = None
    #: where a person looks, and the ledger field of what the alert must name (Douyin)
    look_at: str = ""
    named_in_alert: str = ""


DOUYIN_ONLY = Platforms(
    name="douyin",
    channels=("douyin-main",),
    creating={"douyin": ("create_video", "text")},
    secrets={"douyin": DOUYIN},
    env={
        "KEPUBOT_DOUYIN_SECRET": DOUYIN["client_secret"],
        "KEPUBOT_DOUYIN_TOKEN": DOUYIN["access_token"],
        "KEPUBOT_DOUYIN_REFRESH": DOUYIN["refresh_token"],
    },
    tables=f"""
        [channels.douyin-main]
        type = "douyin"
        client_key = "{DOUYIN["client_key"]}"
        client_secret = "${{{{KEPUBOT_DOUYIN_SECRET}}}}"
        open_id = "{DOUYIN["open_id"]}"
        access_token = "${{{{KEPUBOT_DOUYIN_TOKEN}}}}"
        refresh_token = "${{{{KEPUBOT_DOUYIN_REFRESH}}}}"
        api_base = "{{base}}"
        timeout_seconds = {{timeout}}
        min_gap_minutes = 0
        settle_minutes = {{settle_minutes}}
        """,
    settings={"douyin_processing_seconds": 3, "douyin_review_seconds": 0},
    invisible={"douyin_processing_seconds": 3600},
    tags=("科普",),
    cover=False,
    posts=3,
    kill_seed=3,
    offline={"route": "douyin", "path": "video_list", "mode": "platform_error", "code": 28001056},
    look_at="creator.douyin.com",
    named_in_alert="video_id",
)

BILIBILI_AND_KUAISHOU = Platforms(
    name="bilibili+kuaishou",
    channels=("bilibili-main", "kuaishou-main"),
    creating={"bilibili": ("add-by-utoken", "title"), "kuaishou": ("photo/publish", "caption")},
    secrets={"bilibili": BILI, "kuaishou": KS},
    env=ENV,
    tables=f"""
        [channels.bilibili-main]
        type = "bilibili"
        client_id = "{BILI["client_id"]}"
        client_secret = "${{{{KP_BILI_SECRET}}}}"
        access_token = "${{{{KP_BILI_TOKEN}}}}"
        refresh_token = "${{{{KP_BILI_REFRESH}}}}"
        api_base = "{{base}}"
        upload_base = "{{base}}"
        oauth_base = "{{base}}"
        tid = 201
        poll_seconds = 0.5
        timeout_seconds = {{timeout}}
        min_gap_minutes = 0
        settle_minutes = {{settle_minutes}}

        [channels.kuaishou-main]
        type = "kuaishou"
        app_id = "{KS["app_id"]}"
        app_secret = "${{{{KP_KS_SECRET}}}}"
        access_token = "${{{{KP_KS_TOKEN}}}}"
        refresh_token = "${{{{KP_KS_REFRESH}}}}"
        api_base = "{{base}}"
        poll_seconds = 0.5
        timeout_seconds = {{timeout}}
        min_gap_minutes = 0
        settle_minutes = {{settle_minutes}}
        """,
    settings={
        "bilibili_review_seconds": 2,
        "bilibili_list_delay_seconds": 3,
        "kuaishou_pending_seconds": 2,
        "kuaishou_list_delay_seconds": 3,
    },
    invisible={"bilibili_list_delay_seconds": 3600, "kuaishou_list_delay_seconds": 3600},
    tags=("科普", "洗手"),
    cover=True,
    posts=2,
    kill_seed=5,
)

PLATFORMS = [
    pytest.param(DOUYIN_ONLY, id=DOUYIN_ONLY.name),
    pytest.param(BILIBILI_AND_KUAISHOU, id=BILIBILI_AND_KUAISHOU.name),
]


def config(platforms: Platforms, base: str, *, timeout: float, settle_minutes: float) -> str:
    tables = platforms.tables.format(base=base, timeout=timeout, settle_minutes=settle_minutes)
    return (
        '[kepubot]\ndatabase = "kepubot.db"\n'
        + FAST_DAEMON
        + textwrap.dedent(
            """
            [users.ed]
            roles = ["editor"]
            [users.rev]
            roles = ["reviewer"]
            """
        )
        + textwrap.dedent(tables)
    )


class VideoEnv(DaemonEnv):
    platforms: Platforms

    def env(self, **extra: str) -> dict[str, str]:
        base = super().env()
        base.update(self.platforms.env)
        base.update(extra)
        return base

    def app(self):  # type: ignore[override]
        for name, value in self.platforms.env.items():
            os.environ[name] = value
        return super().app()

    def videos(self, count: int) -> list[int]:
        """``count`` approved video posts for every channel, due now."""
        app = self.app()
        now = utcnow()
        items = [
            (
                PostInput(
                    title=f"洗手的科学 第{i}期",
                    body=f"第 {i} 期：七步洗手法。",
                    tags=list(self.platforms.tags),
                    video=VIDEO,
                    cover=COVER if self.platforms.cover else None,
                    channels=list(self.platforms.channels),
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
        """How many times the platform created each post."""
        key = self.platforms.creating[route][1]
        return Counter(e["body"][key] for e in self.ledger(route)["accepted"])

    def rows(self) -> list[tuple[int, str, str | None]]:
        conn = connect_db(self.db)
        try:
            return conn.execute(
                "SELECT id, state, remote_id FROM deliveries ORDER BY id"
            ).fetchall()
        finally:
            conn.close()

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

    def creating_faults(self, mode: str, **rule: Any) -> list[dict[str, Any]]:
        return [
            {"route": route, "path": path, "mode": mode, **rule}
            for route, (path, _) in self.platforms.creating.items()
        ]


def make_env(
    tmp_path: Path, platforms: Platforms, *, timeout: float = 2, settle_minutes: float = 60
) -> VideoEnv:
    sandbox = Sandbox()
    base = sandbox.start()
    sandbox_request(f"{base}/_sandbox/secrets", platforms.secrets)
    sandbox_request(f"{base}/_sandbox/settings", platforms.settings)
    root = tmp_path / "ws"
    root.mkdir()
    text = config(platforms, base, timeout=timeout, settle_minutes=settle_minutes)
    (root / "kepubot.toml").write_text(text, encoding="utf-8")
    env = VideoEnv(root, sandbox, base)
    env.platforms = platforms
    app = env.app()
    app.store.migrate()  # create and migrate before any daemon starts
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


def exactly_once_or_attention(env: VideoEnv, posts: int) -> dict[str, int]:
    """The ledgers against the deliveries: nothing twice; a post a platform created is
    published with that id, or needs attention with an alert."""
    states = env.states()
    assert sum(states.values()) == posts * len(env.platforms.channels)
    assert set(states) <= {"published", "needs_attention"}, states
    alerted = {key for key, _ in env.attention_alerts()}
    for route in env.platforms.creating:
        ledger = env.ledger(route)
        assert ledger["duplicates"] == [], ledger["duplicates"]
        assert all(n == 1 for n in env.created(route).values()), env.created(route)
    items = {e["id"] for route in env.platforms.creating for e in env.ledger(route)["accepted"]}
    for delivery_id, state, remote_id in env.rows():
        if state == "published":
            assert remote_id in items, (delivery_id, remote_id)
        else:
            assert f"attention:{delivery_id}" in alerted, (delivery_id, alerted)
    return states


@pytest.mark.parametrize("platforms", PLATFORMS)
def test_lost_answers_publish_each_video_once(
    tmp_path: Path, cleanup: list[Any], platforms: Platforms
) -> None:
    env = make_env(tmp_path, platforms)
    cleanup.append(env.sandbox)
    env.faults(env.creating_faults("drop_after"))  # every creating call
    posts = platforms.posts
    deliveries = posts * len(platforms.channels)
    env.videos(posts)
    daemon = env.start()
    cleanup.append(daemon)
    env.wait_for(lambda: env.states().get("published", 0) == deliveries, timeout=120)
    assert env.stop(daemon) == 0
    assert exactly_once_or_attention(env, posts) == {"published": deliveries}
    for route, (path, _) in platforms.creating.items():
        assert sorted(env.created(route).values()) == [1] * posts
        # every creating call really lost its answer, and was looked up rather than sent again
        calls = [r for r in env.requests_seen() if path in r["path"]]
        assert len(calls) == posts and all(r["fault"] == "drop_after" for r in calls), route
    assert env.attempts() == [1] * deliveries  # settled by lookups, never by a second attempt


@pytest.mark.parametrize("platforms", PLATFORMS)
def test_kill_9_during_an_accepted_creating_call(
    tmp_path: Path, cleanup: list[Any], platforms: Platforms
) -> None:
    env = make_env(tmp_path, platforms, timeout=30)
    cleanup.append(env.sandbox)
    # the first creating call is applied, then its answer hangs: the daemon is killed while
    # waiting; later ones lose their answers at random
    rules: list[dict[str, Any]] = []
    for hang, drop in zip(
        env.creating_faults("hang_after", seconds=120, count=1),
        env.creating_faults("drop_after", rate=0.5),
        strict=True,
    ):
        rules += [hang, drop]
    env.faults(rules, seed=platforms.kill_seed)
    posts = platforms.posts
    deliveries = posts * len(platforms.channels)
    env.videos(posts)
    first = env.start()
    cleanup.append(first)
    env.wait_for(
        lambda: all(len(env.ledger(route)["accepted"]) >= 1 for route in platforms.creating),
        timeout=60,
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert env.states().get("sending", 0) + env.states().get("claimed", 0) >= 1
    second = env.start()
    cleanup.append(second)
    env.wait_for(lambda: env.states().get("published", 0) == deliveries, timeout=150)
    assert env.stop(second) == 0
    assert exactly_once_or_attention(env, posts) == {"published": deliveries}
    for route in platforms.creating:
        assert sorted(env.created(route).values()) == [1] * posts


@pytest.mark.parametrize(
    ("platforms", "offline"),
    [
        pytest.param(DOUYIN_ONLY, False, id="douyin-still processing"),
        pytest.param(DOUYIN_ONLY, True, id="douyin-list offline"),
        pytest.param(BILIBILI_AND_KUAISHOU, False, id=BILIBILI_AND_KUAISHOU.name),
    ],
)
def test_a_creation_that_never_shows_goes_to_a_person(
    tmp_path: Path, cleanup: list[Any], platforms: Platforms, offline: bool
) -> None:
    """The created item stays invisible past settle_minutes (or Douyin's video_list is taken
    offline, 28001056): needs_attention with an alert saying what is known; the creating call
    is never sent again."""
    env = make_env(tmp_path, platforms, settle_minutes=0.05)
    cleanup.append(env.sandbox)
    sandbox_request(f"{env.base}/_sandbox/settings", platforms.invisible)
    rules = env.creating_faults("drop_after")
    if offline:
        assert platforms.offline is not None
        rules.append(platforms.offline)
    env.faults(rules)
    env.videos(1)
    daemon = env.start()
    cleanup.append(daemon)
    deliveries = len(platforms.channels)
    env.wait_for(lambda: env.states().get("needs_attention", 0) == deliveries, timeout=90)
    time.sleep(1)  # a daemon that would wrongly send again gets the chance to
    assert env.stop(daemon) == 0
    assert exactly_once_or_attention(env, 1) == {"needs_attention": deliveries}
    for route in platforms.creating:
        assert list(env.created(route).values()) == [1]  # created once, never again
    if platforms.named_in_alert:
        [(_, message)] = env.attention_alerts()
        [route] = platforms.creating
        named = env.ledger(route)["accepted"][0]["body"][platforms.named_in_alert]
        assert named in message and platforms.look_at in message
        assert ("28001056" in message) is offline


def test_an_ended_authorization_pauses_both_then_new_tokens_publish(
    tmp_path: Path, cleanup: list[Any]
) -> None:
    """Bilibili's and Kuaishou's refresh tokens expired: the videos wait in the queue (never
    failed, never lost), the log asks for a new authorization; new tokens in the config publish
    them once."""
    env = make_env(tmp_path, BILIBILI_AND_KUAISHOU)
    cleanup.append(env.sandbox)
    for route in BILIBILI_AND_KUAISHOU.creating:
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
