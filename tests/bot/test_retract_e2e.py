"""Retraction end to end (issue 13 §6): a post published on every channel type is taken back
against the sandbox, exactly once each, with the daemon killed mid-retraction. What counts is
the sandbox's ledger (its ``deleted`` list) and the feed files."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from backends import connect_db
from test_platforms_e2e import DOUYIN, WECHAT_APPID, WECHAT_SECRET, WEIBO_TOKEN, PlatformEnv
from test_platforms_e2e import config as platform_config

from conftest import SAMPLES
from daemon_env import CMS_SECRET, WECOM_KEY
from kepubot.files.importer import read_posts
from kepubot.sandbox.server import Sandbox
from kepubot.services.posts import approve, create_posts, submit
from kepubot.services.retraction import retract_post
from kepubot.timeutil import utcnow
from platform_env import sandbox_request

EVERY = ["weibo-main", "wechat-main", "news-feed", "cms", "staff"]


def config(base: str) -> str:
    return platform_config(base) + textwrap.dedent(
        f"""
        [users.ops]
        roles = ["operator"]

        [channels.cms]
        type = "webhook"
        url = "{base}/webhook/cms"
        lookup_url = "{base}/webhook/cms/lookup"
        secret = "${{KEPUBOT_TEST_CMS_SECRET}}"
        timeout_seconds = 2

        [channels.staff]
        type = "wecom"
        webhook_key = "${{KEPUBOT_TEST_WECOM_KEY}}"
        api_base = "{base}"
        timeout_seconds = 2
        """
    )


@pytest.fixture
def renv(tmp_path: Path):
    sandbox = Sandbox()
    base = sandbox.start()
    sandbox_request(
        f"{base}/_sandbox/secrets",
        {
            "weibo_tokens": [WEIBO_TOKEN],
            "wechat": {WECHAT_APPID: WECHAT_SECRET},
            "douyin": DOUYIN,
            "webhook": {"cms": CMS_SECRET},
            "wecom_keys": [WECOM_KEY],
        },
    )
    sandbox_request(
        f"{base}/_sandbox/settings",
        {"publish_polls_before_done": 1, "douyin_review_seconds": 0},
    )
    root = tmp_path / "ws"
    root.mkdir()
    (root / "kepubot.toml").write_text(config(base), encoding="utf-8")
    environment = PlatformEnv(root, sandbox, base)
    app = environment.app()
    app.store.migrate()
    app.close()
    yield environment
    sandbox.stop()


def rows(env: PlatformEnv) -> dict[tuple[int, str], tuple[str, str]]:
    conn = connect_db(env.db)
    try:
        return {
            (r[0], r[1]): (r[2], r[3])
            for r in conn.execute("SELECT post_id, channel, kind, state FROM deliveries")
        }
    finally:
        conn.close()


def test_a_post_on_every_channel_type_is_retracted_once_each_despite_a_kill(
    renv: PlatformEnv,
) -> None:
    env = renv
    samples = read_posts(SAMPLES / "posts")
    article, _ = samples[0]
    article.channels = EVERY
    video = next(item for item in samples if "douyin-main" in (item[0].channels or []))
    app = env.app()
    now = utcnow()
    ids = create_posts(app, "ed", [(article, "01.md"), video], now=now)
    submit(app, "ed", ids, now=now)
    approve(app, "rev", ids, now=now)
    app.close()
    env.settle(timeout=120)
    assert set(rows(env).values()) == {("publish", "published")}, rows(env)
    feed_before = (env.root / "public/feeds/feed.json").read_text(encoding="utf-8")
    assert f"/kepubot/posts/{ids[0]}" in feed_before

    # Weibo first, alone: the daemon is killed after Weibo deleted the status and before the
    # outcome was recorded. The next daemon finds the send cut short, looks (gone = done).
    app = env.app()
    retract_post(app, "rev", ids[0], reason="数据有误", now=utcnow(), channels=["weibo-main"])
    app.close()
    crashed = env.run_once(KEPUBOT_CRASH_AT="retract-after-response")
    assert crashed.returncode == -9, env.log_text()
    assert rows(env)[(ids[0], "weibo-main")] == ("retract", "sending")
    assert len(env.ledger("weibo")["deleted"]) == 1  # applied on the platform, answer lost

    app = env.app()
    result = retract_post(app, "rev", ids[0], reason="数据有误", now=utcnow())
    assert sorted(result["retracting"]) == sorted(set(EVERY) - {"weibo-main"})
    retract_post(app, "rev", ids[1], reason="数据有误", now=utcnow())
    app.close()
    env.settle(timeout=120)
    states = rows(env)
    douyin = states.pop((ids[1], "douyin-main"))
    # Douyin's open platform offers no deletion to this app: a person's task
    assert douyin == ("retract", "needs_attention")
    assert set(states.values()) == {("retract", "retracted")}, states

    # exactly once each, on the platforms' side
    weibo = env.ledger("weibo")
    assert [e["kind"] for e in weibo["deleted"]] == ["status"]
    wechat = env.ledger("wechat")["deleted"]
    assert Counter(e["kind"] for e in wechat) == {"freepublish": 1}, wechat
    webhook = env.ledger("webhook")
    events = [e for e in webhook["accepted"] if e["body"].get("event") == "retracted"]
    assert len(events) == 1 and len(webhook["deleted"]) == 1 and webhook["duplicates"] == []
    assert events[0]["idempotency_key"] != next(
        e["idempotency_key"] for e in webhook["accepted"] if "event" not in e["body"]
    )
    notices = [
        e for e in env.ledger("wecom")["accepted"] if "撤回" in json.dumps(e, ensure_ascii=False)
    ]
    assert len(notices) == 1, env.ledger("wecom")
    for route in ("weibo", "wechat", "douyin", "wecom"):
        assert env.ledger(route)["duplicates"] == [], route
    for name in ("feed.xml", "atom.xml", "feed.json"):
        text = (env.root / "public/feeds" / name).read_text(encoding="utf-8")
        assert f"/kepubot/posts/{ids[0]}" not in text and f"/kepubot/posts/{ids[1]}" not in text

    # the person removes the video and says so; the command settles the task
    conn = connect_db(env.db)
    (douyin_id,) = conn.execute(
        "SELECT id FROM deliveries WHERE post_id = ? AND channel = 'douyin-main'", (ids[1],)
    ).fetchone()
    conn.close()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "kepubot", "--config", str(env.config), "--as", "ops"),
            *("--lang", "en", "delivery", "resolve", str(douyin_id), "--retracted"),
        ],
        cwd=env.root,
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert rows(env)[(ids[1], "douyin-main")] == ("retract", "retracted")
    assert env.ledger("douyin")["deleted"] == []  # nothing was called on Douyin
