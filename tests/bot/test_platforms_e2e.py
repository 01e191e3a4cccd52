"""The three platform channels end to end: daemons as subprocesses against the sandbox's
independent emulators of Weibo, WeChat and Douyin. What counts is the sandbox's ledger."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import connect_db

from conftest import SAMPLES
from daemon_env import DaemonEnv
from kepubot.files.importer import read_posts
from kepubot.sandbox.server import Sandbox
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow
from platform_env import FAST_DAEMON, sandbox_request, weibo_wechat_channels

WEIBO_TOKEN = "weibo-token-VALUE-1"
WECHAT_APPID = "wx00000000demo01"
WECHAT_SECRET = "wechat-secret-VALUE-2"
DOUYIN = {
    "client_key": "aw-demo-key",
    "client_secret": "douyin-secret-VALUE-3",
    "access_token": "douyin-access-VALUE-4",
    "refresh_token": "douyin-refresh-VALUE-5",
    "open_id": "open-id-demo",
}
SECRETS = [
    WEIBO_TOKEN,
    WECHAT_SECRET,
    DOUYIN["client_secret"],
    DOUYIN["access_token"],
    DOUYIN["refresh_token"],
]


def config(base: str) -> str:
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
        + weibo_wechat_channels(base, WECHAT_APPID)
        + textwrap.dedent(
            f"""
            [channels.douyin-main]
            type = "douyin"
            client_key = "{DOUYIN["client_key"]}"
            client_secret = "${{KEPUBOT_DOUYIN_SECRET}}"
            open_id = "{DOUYIN["open_id"]}"
            access_token = "${{KEPUBOT_DOUYIN_TOKEN}}"
            refresh_token = "${{KEPUBOT_DOUYIN_REFRESH}}"
            api_base = "{base}"
            timeout_seconds = 2

            [channels.news-feed]
            type = "feed"
            output_dir = "public/feeds"
            site_url = "https://kepu.example.org"
            title = "科普资讯"
            """
        )
    )


class PlatformEnv(DaemonEnv):
    def env(self, **extra: str) -> dict[str, str]:
        base = super().env()
        base.update(
            KEPUBOT_WEIBO_TOKEN=WEIBO_TOKEN,
            KEPUBOT_WECHAT_SECRET=WECHAT_SECRET,
            KEPUBOT_DOUYIN_SECRET=DOUYIN["client_secret"],
            KEPUBOT_DOUYIN_TOKEN=DOUYIN["access_token"],
            KEPUBOT_DOUYIN_REFRESH=DOUYIN["refresh_token"],
        )
        base.update(extra)
        return base

    def app(self):  # type: ignore[override]
        import os

        for name, value in self.env().items():
            if name.startswith("KEPUBOT_"):
                os.environ[name] = value
        return super().app()

    def import_samples(self) -> list[int]:
        app = self.app()
        now = utcnow()
        ids = create_posts(app, "ed", read_posts(SAMPLES / "posts"), now=now)
        submit(app, "ed", ids, now=now)
        approve(app, "rev", ids, now=now)
        app.close()
        return ids

    def created(self, route: str) -> Counter[str]:
        ledger = self.ledger(route)
        return Counter(entry.get("kind", "") for entry in ledger["accepted"])

    def stats(self, route: str) -> dict[str, Any]:
        return sandbox_request(f"{self.base}/_sandbox/stats?route={route}")


@pytest.fixture
def penv(tmp_path: Path):
    sandbox = Sandbox()
    base = sandbox.start()
    sandbox_request(
        f"{base}/_sandbox/secrets",
        {"weibo_tokens": [WEIBO_TOKEN], "wechat": {WECHAT_APPID: WECHAT_SECRET}, "douyin": DOUYIN},
    )
    sandbox_request(
        f"{base}/_sandbox/settings",
        {
            "publish_polls_before_done": 1,
            "douyin_review_seconds": 0,
            "wechat_publishes_per_minute": 100,
        },
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


def published_everywhere(env: PlatformEnv, *, wechat: int = 12) -> None:
    assert env.created("weibo")["status"] == 12
    assert env.created("douyin")["video"] == 1
    created = env.created("wechat")
    assert created["freepublish"] == wechat and created["draft"] == wechat
    for route in ("weibo", "wechat", "douyin"):
        assert env.ledger(route)["duplicates"] == [], route


def test_sample_posts_reach_all_three_platforms_exactly_once(penv: PlatformEnv) -> None:
    penv.import_samples()  # 12 posts x (weibo, wechat, feed) + 1 video x (douyin, feed) = 38
    process = penv.start(KEPUBOT_LOG_LEVEL="debug")
    try:
        penv.wait_for(lambda: penv.states().get("published", 0) == 38, timeout=120)
    finally:
        assert penv.stop(process) == 0
    published_everywhere(penv)
    text = penv.log_text()
    assert "DEBUG" in text and "access_token=***" in text  # WeChat's token is in its URLs
    stored = (
        connect_db(penv.db)
        .execute("SELECT channel, access_token, refresh_token FROM credentials")
        .fetchall()
    )
    assert stored  # tokens the platforms issued at run time, encrypted at rest
    assert all(v.startswith("enc1:") for row in stored for v in row[1:] if v)
    raw = b"".join(p.read_bytes() for p in penv.root.glob("kepubot.db*"))
    for secret in SECRETS:
        assert secret not in text
        assert secret.encode() not in raw  # Douyin's configured tokens included
    app = penv.app()
    for channel, _, _ in stored:
        token = app.credentials.get(channel)
        assert token is not None
        for value in (token.access_token, token.refresh_token):
            if value and len(value) > 8:
                assert value not in text
                assert value.encode() not in raw
    app.close()


def test_lost_responses_after_acceptance_are_reconciled_exactly_once(penv: PlatformEnv) -> None:
    penv.faults(
        [
            {"route": "weibo", "path": "share.json", "mode": "drop_after", "rate": 0.3},
            {"route": "wechat", "path": "freepublish/submit", "mode": "drop_after", "rate": 0.3},
            {
                "route": "douyin",
                "path": "create_video",
                "mode": "drop_after",
                "rate": 1,
                "count": 1,
            },
        ],
        seed=5,
    )
    penv.import_samples()
    # A WeChat article whose publish_id was lost is listed by freepublish/batchget only once
    # it has finished publishing (a minute on the platform): let the platform's clock run fast.
    stop = threading.Event()

    def fast_platform_clock() -> None:
        while not stop.wait(0.5):
            sandbox_request(f"{penv.base}/_sandbox/clock", {"advance": 10})

    ticker = threading.Thread(target=fast_platform_clock, daemon=True)
    ticker.start()
    process = penv.start()
    try:
        penv.wait_for(penv.settled, timeout=180)
    finally:
        stop.set()
        penv.stop(process)
    states = penv.states()
    # a lost draft/add may leave an orphan draft (harmless), never a second publication
    assert penv.created("weibo")["status"] <= 12 and penv.created("wechat")["freepublish"] <= 12
    assert penv.ledger("weibo")["duplicates"] == [] and penv.ledger("douyin")["duplicates"] == []
    assert set(states) <= {"published", "needs_attention"}, states
    assert states.get("published", 0) == 38, states
    published_everywhere_once = (
        penv.created("weibo")["status"] == 12 and penv.created("douyin")["video"] == 1
    )
    assert published_everywhere_once


def test_wechat_token_expiry_with_two_daemons_one_refresh(penv: PlatformEnv) -> None:
    penv.import_samples()
    first, second = penv.start(), penv.start()
    try:
        penv.wait_for(lambda: penv.created("wechat")["freepublish"] >= 3, timeout=60)
    finally:
        penv.stop(first)
        penv.stop(second)
    # How many WeChat articles went out by now depends on the machine's speed (on a fast one,
    # all twelve): one more article makes sure WeChat work is left when the token the daemons
    # share expires, so that a refresh is needed whatever the timing.
    app = penv.app()
    now = utcnow()
    [extra] = create_posts(
        app,
        "ed",
        [
            (
                PostInput(
                    title="令牌过期之后",
                    body="过期之后的第一篇。",
                    link="https://kepu.example.org/a/token",
                    cover=SAMPLES / "media" / "cover-wide.png",
                    channels=["wechat-main"],
                ),
                "test",
            )
        ],
        now=now,
    )
    submit(app, "ed", [extra], now=now)
    approve(app, "rev", [extra], now=now)
    app.close()
    before = penv.stats("wechat")
    sandbox_request(f"{penv.base}/_sandbox/expire", {"route": "wechat"})
    first, second = penv.start(), penv.start()
    try:
        penv.wait_for(lambda: penv.states().get("published", 0) == 39, timeout=120)
    finally:
        penv.stop(first)
        penv.stop(second)
    after = penv.stats("wechat")
    fetched = lambda s: s["wechat"]["token_fetches"] + s["wechat"]["stable_token_fetches"]  # noqa: E731
    assert fetched(after) - fetched(before) == 1, (before, after)
    published_everywhere(penv, wechat=13)


def test_douyin_refresh_token_expiry_then_reauthorization(penv: PlatformEnv) -> None:
    sandbox_request(f"{penv.base}/_sandbox/expire", {"route": "douyin", "what": "access"})
    sandbox_request(f"{penv.base}/_sandbox/expire", {"route": "douyin", "what": "refresh"})
    penv.import_samples()
    for _ in range(3):
        penv.run_once()
        time.sleep(0.3)
    states = penv.states()
    # the video waits; nothing is lost or failed (whether every other delivery is published
    # after three passes depends on the machine's speed: a slow answer becomes a retry)
    conn = connect_db(penv.db)
    try:
        douyin = conn.execute(
            "SELECT state FROM deliveries WHERE channel = 'douyin-main'"
        ).fetchall()
    finally:
        conn.close()
    assert douyin == [("queued",)], douyin
    assert "failed" not in states
    assert "re-author" in penv.log_text().lower()
    # The account is authorized again: new tokens in the platform and in the config.
    fresh = {**DOUYIN, "access_token": "douyin-access-NEW", "refresh_token": "douyin-refresh-NEW"}
    sandbox_request(f"{penv.base}/_sandbox/secrets", {"douyin": fresh})
    assert penv.settle(
        timeout=60,
        KEPUBOT_DOUYIN_TOKEN="douyin-access-NEW",
        KEPUBOT_DOUYIN_REFRESH="douyin-refresh-NEW",
    ) == {"published": 38}
    assert penv.created("douyin")["video"] == 1
    assert json.dumps(penv.ledger("douyin")["duplicates"]) == "[]"


def debug_states(env: PlatformEnv) -> str:

    conn = connect_db(env.db)
    rows = conn.execute(
        "SELECT id, channel, state, attempts, last_error FROM deliveries WHERE state != 'published'"
    ).fetchall()
    conn.close()
    return "\n".join(map(str, rows))


def test_collected_snapshots_equal_the_platforms_figures(tmp_path: Path) -> None:
    """Collection against the emulators: every snapshot equals what the platform reports at
    collection time (the sandbox clock is frozen, so its figures are exact)."""
    import requests

    from kepubot.bot.collect import collect_accounts, collect_pass
    from kepubot.bot.dispatch import Engine
    from kepubot.reports.aggregate import build_report

    frozen = [time.time()]
    sandbox = Sandbox(clock=lambda: frozen[0])
    base = sandbox.start()
    try:
        sandbox_request(
            f"{base}/_sandbox/secrets",
            {
                "weibo_tokens": [WEIBO_TOKEN],
                "wechat": {WECHAT_APPID: WECHAT_SECRET},
                "douyin": DOUYIN,
            },
        )
        sandbox_request(
            f"{base}/_sandbox/settings",
            {
                "publish_polls_before_done": 1,
                "douyin_review_seconds": 0,
                "wechat_publishes_per_minute": 100,
            },
        )
        root = tmp_path / "ws"
        root.mkdir()
        (root / "kepubot.toml").write_text(config(base), encoding="utf-8")
        env = PlatformEnv(root, sandbox, base)
        env.import_samples()
        assert env.settle(timeout=120) == {"published": 38}
        frozen[0] += 6 * 3600  # six hours later on the platforms...
        app = env.app()
        later = utcnow() + timedelta(hours=6)  # ...and for the collector
        engine = Engine(app, worker="collector", clock=lambda: later)
        result = collect_pass(engine)
        accounts = collect_accounts(engine)
        engine.close()
        rows = (
            app.store.conn()
            .execute(
                "SELECT d.channel, d.remote_id, m.views, m.likes, m.comments, m.shares FROM deliveries d"
                " JOIN metrics_latest m ON m.delivery_id = d.id"
            )
            .fetchall()
        )
        weibo = {r[1]: r for r in rows if r[0] == "weibo-main"}
        assert len(weibo) == 12 and result["collected"] >= 13
        answer = requests.get(
            f"{base}/2/statuses/count.json",
            params={"access_token": WEIBO_TOKEN, "ids": ",".join(weibo)},
            timeout=5,
        ).json()
        assert answer and all(isinstance(a, dict) for a in answer)
        for item in answer:
            _, _, views, likes, comments, shares = weibo[str(item["id"])]
            assert (views, likes, comments, shares) == (
                None,
                item["attitudes"],
                item["comments"],
                item["reposts"],
            )
        douyin = [r for r in rows if r[0] == "douyin-main"]
        assert len(douyin) == 1 and douyin[0][2] is not None
        # Account figures are collected once a day per channel that has them: by the daemon
        # run above (if its day is `later`'s day) or by this pass, so how many this pass took
        # depends on timing. What holds either way: each such channel has `later`'s day now.
        from kepubot.channels.base import Channel
        from kepubot.queue import metrics as store

        day = later.astimezone(app.tz).strftime("%Y-%m-%d")
        with_accounts = [
            name
            for name, channel in app.channels.items()
            if type(channel).account_metrics is not Channel.account_metrics
        ]
        assert "weibo-main" in with_accounts
        assert 0 <= accounts <= len(with_accounts)
        assert all(store.account_collected(app.store.conn(), name, day) for name in with_accounts)
        followers = (
            app.store.conn()
            .execute(
                "SELECT followers FROM account_metrics WHERE channel = 'weibo-main' AND day = ?",
                (day,),
            )
            .fetchone()
        )
        assert followers is not None and followers[0] >= 1000
        report = build_report(app, now=later)
        assert report["channels"]["weibo-main"]["likes"] == sum(a["attitudes"] for a in answer)
        assert report["channels"]["weibo-main"]["views"] is None  # Weibo reports no views: null
        app.close()
    finally:
        sandbox.stop()


def test_channels_check_names_a_missing_permission(penv: PlatformEnv) -> None:
    """`kepubot channels check` against the sandbox: every channel ok; then the WeChat account
    loses its publishing interface (48001 on a harmless read) and the check says so, exit 1."""
    import subprocess
    import sys

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *(sys.executable, "-m", "kepubot", "--config", str(penv.config)),
                *("--lang", "en", "channels", "check"),
            ],
            cwd=penv.root,
            env=penv.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    fine = check()
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "missing permission" not in fine.stdout
    assert "wechat-main (wechat): ok:" in fine.stdout
    penv.faults(
        [
            {
                "route": "wechat",
                "path": "freepublish/batchget",
                "mode": "platform_error",
                "code": 48001,
            }
        ]
    )
    refused = check()
    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = [line for line in refused.stdout.splitlines() if "missing permission" in line]
    assert lines == [
        "wechat-main (wechat): missing permission freepublish (发布能力): needed for publishing"
        " the article (cgi-bin/freepublish/batchget: errcode 48001; 接口未授权（errcode 48001）："
        "该公众号没有此接口的权限。未认证的订阅号不能调用发布（freepublish）、群发和数据统计接口；"
        '请在微信公众平台完成微信认证，或把该渠道的 mode 改为 "draft"（只存入草稿箱，由人工发表）)'
    ]
    for secret in SECRETS:
        assert secret not in refused.stdout + refused.stderr

    # an unverified subscription account, as the sandbox emulates it: publishing and the
    # statistics are closed, and the check says why before the first post
    penv.clear_faults()
    sandbox_request(f"{penv.base}/_sandbox/settings", {"wechat_verified": False})
    unverified = check()
    assert unverified.returncode == 1, unverified.stdout + unverified.stderr
    missing = [line for line in unverified.stdout.splitlines() if "missing permission" in line]
    assert [line.split(": needed for")[0] for line in missing] == [
        "wechat-main (wechat): missing permission freepublish (发布能力)",
        "wechat-main (wechat): missing permission datacube (数据统计)",
    ]
    assert all("未认证的订阅号" in line for line in missing)
