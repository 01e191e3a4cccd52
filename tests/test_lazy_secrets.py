"""${ENV} secrets are read when what references them is used (issue 11 item 18): listing posts
or users needs no channel token and no console key; publishing, collecting and checking need
every variable of what they use, and name all that are missing at once."""

from __future__ import annotations

import pytest

from conftest import Workspace
from kepubot.config import load_config

WEB_SECRET = "a-console-signing-key-of-more-than-32-bytes-0123456789"
ALERT = """
[alerts]
urls = ["${KEPUBOT_TEST_ALERT_URL}"]
"""


@pytest.fixture
def ws(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    text = workspace.config.read_text(encoding="utf-8")
    text = text.replace(
        "[users.zhang]", '[web]\nsecret_key = "${KEPUBOT_WEB_SECRET}"\n\n[users.zhang]', 1
    )
    workspace.config.write_text(text + ALERT, encoding="utf-8")
    for name in ("KEPUBOT_WEIBO_TOKEN", "KEPUBOT_WEB_SECRET", "KEPUBOT_TEST_ALERT_URL"):
        monkeypatch.delenv(name, raising=False)
    return workspace


def _error_lines(err: str) -> list[str]:
    return [line for line in err.strip().splitlines() if line]


def test_everyday_commands_need_no_channel_secret_and_no_console_key(ws: Workspace) -> None:
    post_id = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    ws.ok("post", "list")
    ws.ok("post", "list", "--json")
    ws.ok("post", "show", str(post_id))
    ws.ok("post", "preview", str(post_id))  # rendering a Weibo status needs no token
    ws.ok("post", "submit", str(post_id), user="zhang")
    ws.ok("post", "approve", str(post_id), user="li")
    ws.ok("user", "list")
    ws.ok("delivery", "list")
    ws.ok("status")
    ws.ok("channels", "list")
    ws.ok("audit", "verify")


def test_the_daemon_names_every_missing_variable_at_once(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.add_post("--channel", "news-feed")
    monkeypatch.delenv("KEPUBOT_DOUYIN_TOKEN")
    for command in (("run", "--once"), ("metrics", "collect")):
        err = ws.refused(*command)
        lines = _error_lines(err)
        assert len(lines) == 3, err
        assert any(
            "channels.weibo-main.access_token" in line and "KEPUBOT_WEIBO_TOKEN" in line
            for line in lines
        )
        assert any(
            "channels.douyin-main.access_token" in line and "KEPUBOT_DOUYIN_TOKEN" in line
            for line in lines
        )
        assert any("alerts.urls[0]" in line and "KEPUBOT_TEST_ALERT_URL" in line for line in lines)
        # the console's key is not the daemon's business
        assert "KEPUBOT_WEB_SECRET" not in err


def test_checking_a_channel_needs_only_that_channels_variables(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEPUBOT_DOUYIN_TOKEN")
    monkeypatch.delenv("KEPUBOT_DOUYIN_REFRESH")
    err = ws.refused("channels", "check", "douyin-main")
    lines = _error_lines(err)
    assert len(lines) == 2, err
    assert "KEPUBOT_DOUYIN_TOKEN" in lines[0] and "KEPUBOT_DOUYIN_REFRESH" in lines[1]
    assert "KEPUBOT_WEIBO_TOKEN" not in err
    err = ws.refused("channels", "check")
    assert len(_error_lines(err)) == 3 and "KEPUBOT_WEIBO_TOKEN" in err


def test_the_console_needs_its_key_and_no_channel_secret(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    err = ws.refused("web", "--port", "0")
    lines = _error_lines(err)
    assert len(lines) == 1 and "web.secret_key" in lines[0] and "KEPUBOT_WEB_SECRET" in lines[0]
    # with its key the console works although no Weibo token is set
    monkeypatch.setenv("KEPUBOT_WEB_SECRET", WEB_SECRET)
    from kepubot.web.app import create_app

    flask = create_app(load_config(ws.config))
    client = flask.test_client()
    assert client.get("/login").status_code == 200


def test_a_set_variable_is_read_when_used_and_never_printed(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEPUBOT_WEIBO_TOKEN", "weibo-token-LATE-VALUE")
    from kepubot.app import App

    app = App(load_config(ws.config))
    token = app.channels["weibo-main"].settings.access_token  # type: ignore[attr-defined]
    assert token.get_secret_value() == "weibo-token-LATE-VALUE"
    assert "LATE-VALUE" not in repr(app.channels["weibo-main"].settings)
    assert "LATE-VALUE" not in str(token)


def test_a_reviewer_notify_url_whose_variable_is_missing_never_fails_the_workflow(
    ws: Workspace, caplog: pytest.LogCaptureFixture
) -> None:
    text = ws.config.read_text(encoding="utf-8").replace(
        "[alerts]\n", "[alerts]\nnotify_reviewers = true\n", 1
    )
    text = text.replace(
        '[users.li]\nroles = ["reviewer"]',
        '[users.li]\nroles = ["reviewer"]\nnotify = ["${KEPUBOT_TEST_LI_URL}"]',
        1,
    )
    ws.config.write_text(text, encoding="utf-8")
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(post_id), user="zhang")
    assert '"state": "in_review"' in ws.ok("post", "show", str(post_id), "--json")
    assert any("KEPUBOT_TEST_LI_URL is not set" in record.getMessage() for record in caplog.records)
