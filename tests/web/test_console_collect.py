"""After publishing (issue 16, docs/architecture.md §15.3): the post page reads 已发布 and shows
each channel's link and latest figures with their time; a manager's or operator's 立即采集
fetches a new post's figures at once (against the sandbox's Weibo), an editor's is refused."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import connect_db
from click.testing import CliRunner
from test_console import PASSWORD, token_of

from conftest import SAMPLES, Workspace, snapshot
from kepubot.cli import cli
from kepubot.config import load_config
from kepubot.sandbox.server import Sandbox
from kepubot.web.app import create_app
from platform_env import FAST_DAEMON, sandbox_request, weibo_wechat_channels

WEIBO_TOKEN = "weibo-token-COLLECT-1"
WECHAT_APPID = "wx00000000collect1"


@pytest.fixture
def sandbox() -> Iterator[str]:
    server = Sandbox()
    base = server.start()
    try:
        sandbox_request(f"{base}/_sandbox/secrets", {"weibo_tokens": [WEIBO_TOKEN]})
        yield base
    finally:
        server.stop()


def _workspace(tmp_path: Path, base: str, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("KEPUBOT_WEIBO_TOKEN", WEIBO_TOKEN)
    monkeypatch.setenv("KEPUBOT_WECHAT_SECRET", "unused-wechat-secret")
    config = (
        '[kepubot]\ndatabase = "kepubot.db"\ntimezone = "Asia/Shanghai"\n'
        + FAST_DAEMON
        # the first collection point is a week away: only 立即采集 fetches figures now
        + textwrap.dedent(
            """
            [metrics]
            cadence = ["7d"]
            daily_days = 0

            [review]
            levels = ["终审"]

            [users.zhang]
            roles = ["editor"]
            [users.li]
            roles = ["reviewer"]
            [users.boss]
            roles = ["manager"]
            [users.ops]
            roles = ["operator"]
            """
        )
        + weibo_wechat_channels(base, WECHAT_APPID)
    )
    (tmp_path / "kepubot.toml").write_text(config, encoding="utf-8")
    shutil.copy(SAMPLES / "sensitive_words.txt", tmp_path / "sensitive_words.txt")
    ws = Workspace(tmp_path, CliRunner())
    for name in ("zhang", "boss", "ops"):
        result = ws.runner.invoke(
            cli,
            ["--config", str(ws.config), "--as", name, "user", "passwd", name, "--password-stdin"],
            input=PASSWORD + "\n",
        )
        assert result.exit_code == 0, result.output
    return ws


def test_collect_now_fetches_a_new_posts_figures_and_the_page_shows_them(
    tmp_path: Path, sandbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path, sandbox, monkeypatch)
    post_id = ws.add_post("--channel", "weibo-main")
    ws.ok("post", "submit", str(post_id), user="zhang")
    ws.ok("post", "approve", str(post_id), user="li")
    ws.ok("run", "--once", user="ops")
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    assert [d["state"] for d in shown["deliveries"]] == ["published"]
    sandbox_request(f"{sandbox}/_sandbox/clock", {"advance": 3600})  # likes grow per hour

    flask = create_app(load_config(ws.config))

    def client(name: str):  # type: ignore[no-untyped-def]
        c = flask.test_client()
        token = token_of(c.get("/login").text)
        c.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
        return c, token_of(c.get("/posts").text)

    boss, boss_token = client("boss")
    page = boss.get(f"/posts/{post_id}").text
    assert re.search(r'id="post-state">\s*已发布', page), "a published post reads 已发布"
    assert "尚无数据" in page and 'id="collect-post"' in page

    # an editor has no 立即采集, and the server refuses it
    zhang, zhang_token = client("zhang")
    assert 'id="collect-post"' not in zhang.get(f"/posts/{post_id}").text
    before = snapshot(ws.db)
    refused = zhang.post(f"/posts/{post_id}/collect", data={"csrf_token": zhang_token})
    assert refused.status_code == 403
    assert snapshot(ws.db) == before

    done = boss.post(f"/posts/{post_id}/collect", data={"csrf_token": boss_token})
    assert done.status_code == 303 and done.headers["Location"] == f"/posts/{post_id}"
    with connect_db(ws.db) as conn:
        rows = conn.execute(
            "SELECT m.likes, d.next_metrics_at FROM metrics_latest m"
            " JOIN deliveries d ON d.id = m.delivery_id WHERE d.post_id = ?",
            (post_id,),
        ).fetchall()
    assert len(rows) == 1 and rows[0][0] > 0, rows
    assert rows[0][1] is not None  # the cadence keeps its week-away point
    page = boss.get(f"/posts/{post_id}").text
    assert "已采集 1 条数据（1 个发布任务）。" in page
    assert 'data-metric="likes"' in page and "采集时间" in page
    assert "尚无数据" not in page

    # the reports page's button runs one pass over everything due (nothing is due here)
    ops, ops_token = client("ops")
    answer = ops.post("/collect", data={"csrf_token": ops_token, "back": "/posts"})
    assert answer.status_code == 303
    assert "已采集 0 条数据（0 个发布任务）。" in ops.get("/posts").text


def test_metrics_collect_post_on_the_command_line(
    tmp_path: Path, sandbox: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = _workspace(tmp_path, sandbox, monkeypatch)
    post_id = ws.add_post("--channel", "weibo-main")
    ws.ok("post", "submit", str(post_id), user="zhang")
    ws.ok("post", "approve", str(post_id), user="li")
    ws.ok("run", "--once", user="ops")
    ws.refused("metrics", "collect", "--post", str(post_id), user="zhang", contains="manager")
    out = ws.ok("metrics", "collect", "--post", str(post_id), user="boss")
    assert out.strip() == f"collected 1 snapshots of post {post_id} (1 deliveries), 0 failed"
    with connect_db(ws.db) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM metrics_latest").fetchone()
    assert count == 1
