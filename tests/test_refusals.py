"""Every refusal: exit code 2, one clear line per problem, no traceback, database unchanged."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from conftest import SAMPLES, SECRETS, Workspace
from kepubot.app import App
from kepubot.config import load_config
from kepubot.queue import deliveries
from kepubot.timeutil import utcnow


def in_review(ws: Workspace, *extra: str) -> int:
    post_id = ws.add_post("--channel", "news-feed", *extra)
    ws.ok("post", "submit", str(post_id), user="zhang")
    return post_id


def approved(ws: Workspace, *extra: str) -> int:
    post_id = in_review(ws, *extra)
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


def test_self_approval(workspace: Workspace) -> None:
    config = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(
        config.replace(
            '[users.chen]\nroles = ["editor"]', '[users.chen]\nroles = ["editor", "reviewer"]'
        ),
        encoding="utf-8",
    )
    post_id = workspace.add_post("--channel", "news-feed", user="chen")
    workspace.ok("post", "submit", str(post_id), user="chen")
    workspace.refused(
        "post", "approve", str(post_id), user="chen", contains="never reviews their own post"
    )
    workspace.refused(
        "post", "reject", str(post_id), "--reason", "x", user="chen", contains="never reviews"
    )


def test_double_approval_by_one_person(workspace: Workspace) -> None:
    post_id = in_review(workspace)
    workspace.ok("post", "approve", str(post_id), user="li")
    workspace.refused("post", "approve", str(post_id), user="li", contains="at most one level")


@pytest.mark.parametrize(
    ("user", "args", "needle"),
    [
        (
            "li",
            ("post", "add", "--title", "t", "--body", "b", "--channel", "news-feed"),
            "editor role",
        ),
        ("zhang", ("post", "approve", "{id}"), "reviewer role"),
        ("boss", ("post", "reject", "{id}", "--reason", "no"), "reviewer role"),
        ("nobody", ("post", "approve", "{id}"), "not configured in [users]"),
        ("chen", ("post", "edit", "{id}", "--title", "x"), "only its author"),
        ("zhang", ("delivery", "retry", "1"), "operator role"),
    ],
)
def test_wrong_role(workspace: Workspace, user: str, args: tuple[str, ...], needle: str) -> None:
    post_id = in_review(workspace)
    workspace.refused(*(a.format(id=post_id) for a in args), user=user, contains=needle)


def test_sensitive_word_at_submit_lists_each_word_with_position(workspace: Workspace) -> None:
    post_id = workspace.ok(
        "post",
        "add",
        "--title",
        "最佳的洗手方法",
        "--body",
        "第一段。\n\n这是祖传秘方，包治百病。",
        "--channel",
        "news-feed",
        user="zhang",
    ).strip()
    err = workspace.refused("post", "submit", post_id, user="zhang")
    assert "'最佳' in title at line 1, column 1" in err
    assert "'祖传秘方' in body at line 3, column 3" in err
    assert "'包治百病' in body at line 3, column 8" in err
    assert "'第一' in body at line 1, column 1" in err
    # four problems, four lines, each naming the post (issue 11 item 17)
    lines = err.strip().splitlines()
    assert len(lines) == 4
    assert all(line.startswith(f"error: post {post_id} cannot be submitted: ") for line in lines)


def test_sensitive_word_added_to_the_list_is_caught_at_approval(workspace: Workspace) -> None:
    post_id = in_review(workspace)
    workspace.ok("post", "approve", str(post_id), user="li")
    with (workspace.root / "sensitive_words.txt").open("a", encoding="utf-8") as handle:
        handle.write("七步洗手法\n")
    workspace.refused(
        "post", "approve", str(post_id), user="wang", contains="'七步洗手法' in title"
    )


def test_past_schedule_time(workspace: Workspace) -> None:
    past = (datetime.now(ZoneInfo("Asia/Shanghai")) - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")
    workspace.refused(
        "post",
        "add",
        "--title",
        "t",
        "--body",
        "b",
        "--channel",
        "news-feed",
        "--at",
        past,
        user="zhang",
        contains="is in the past",
    )
    post_id = workspace.add_post("--channel", "news-feed")
    workspace.refused(
        "post",
        "schedule",
        str(post_id),
        "--at",
        "2020-01-01T08:00:00+08:00",
        user="zhang",
        contains="in the past",
    )
    workspace.refused(
        "post",
        "schedule",
        str(post_id),
        "--at",
        "next tuesday",
        user="zhang",
        contains="expected 'YYYY-MM-DD HH:MM[:SS]'",
    )


def test_unknown_channel(workspace: Workspace) -> None:
    workspace.refused(
        "post",
        "add",
        "--title",
        "t",
        "--body",
        "b",
        "--channel",
        "weibo-mian",
        user="zhang",
        contains="'weibo-mian': no such channel",
    )


def test_missing_media_file(workspace: Workspace) -> None:
    workspace.refused(
        "post",
        "add",
        "--title",
        "t",
        "--body",
        "b",
        "--channel",
        "news-feed",
        "--image",
        "nowhere/missing.png",
        user="zhang",
        contains="missing.png: file not found",
    )


def test_not_an_image(workspace: Workspace) -> None:
    (workspace.root / "notes.png").write_text("not really a picture", encoding="utf-8")
    workspace.refused(
        "post",
        "add",
        "--title",
        "t",
        "--body",
        "b",
        "--channel",
        "news-feed",
        "--image",
        "notes.png",
        user="zhang",
        contains="not a PNG, JPEG",
    )


def test_edit_after_sending_started_is_refused(workspace: Workspace) -> None:
    """After approval an edit sends the post back to review (tested in the workflow tests);
    once a delivery has left the queue the content can no longer change at all."""
    post_id = approved(workspace)
    app = App(load_config(workspace.config))
    claimed = deliveries.claim_next(app.store.conn(), worker="w1", now=utcnow(), lease_seconds=60)
    assert claimed is not None and claimed.post_id == post_id
    deliveries.begin_send(
        app.store.conn(), delivery=claimed, worker="w1", now=utcnow(), lease_seconds=60
    )
    app.close()
    workspace.refused(
        "post",
        "edit",
        str(post_id),
        "--title",
        "改过的标题",
        user="zhang",
        contains="already gone out on news-feed (sending)",
    )
    workspace.refused("post", "cancel", str(post_id), user="zhang", contains="being sent")


def test_channel_rule_at_submit(workspace: Workspace) -> None:
    post_id = workspace.ok(
        "post",
        "add",
        "--title",
        "没有视频的抖音稿件",
        "--body",
        "正文",
        "--channel",
        "douyin-main",
        user="zhang",
    ).strip()
    workspace.refused("post", "submit", post_id, user="zhang", contains="douyin-main")


def test_reject_needs_a_reason(workspace: Workspace) -> None:
    post_id = in_review(workspace)
    workspace.refused(
        "post", "reject", str(post_id), "--reason", "  ", user="li", contains="--reason"
    )


def test_approve_a_draft_and_unknown_post(workspace: Workspace) -> None:
    post_id = workspace.add_post("--channel", "news-feed")
    workspace.refused("post", "approve", str(post_id), user="li", contains="is draft")
    workspace.refused("post", "show", "999", contains="post 999 does not exist")


def test_malformed_toml(workspace: Workspace) -> None:
    workspace.config.write_text(
        '[kepubot]\ndatabase = "kepubot.db"\ntimezone = \n', encoding="utf-8"
    )
    err = workspace.refused("post", "list", contains="line 3")
    assert "invalid TOML" in err
    assert not workspace.db.exists()


def test_unknown_config_key(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8").replace(
        "poll_seconds = 1", "pol_seconds = 1"
    )
    workspace.config.write_text(text, encoding="utf-8")
    workspace.refused("post", "list", contains="unknown key 'pol_seconds' in [daemon]")


def test_unknown_channel_key(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8").replace(
        'link_domain = "kepu', 'link_domian = "kepu'
    )
    workspace.config.write_text(text, encoding="utf-8")
    workspace.refused("post", "list", contains="unknown key 'link_domian' in [channels.weibo-main]")


def test_unknown_channel_type(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8").replace('type = "weibo"', 'type = "weiboo"')
    workspace.config.write_text(text, encoding="utf-8")
    workspace.refused("post", "list", contains="unknown channel type 'weiboo'")


def test_missing_secret_variable_names_variable_and_key(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Secrets are needed only by what uses them (issue 11 item 18): checking or running
    the channel names the variable and the key; listing posts does not need it."""
    monkeypatch.delenv("KEPUBOT_WECHAT_SECRET")
    workspace.ok("post", "list")
    err = workspace.refused("channels", "check", "wechat-main")
    assert "KEPUBOT_WECHAT_SECRET" in err and "channels.wechat-main.app_secret" in err


def test_literal_secret_is_refused_without_printing_it(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8").replace(
        '"${KEPUBOT_WEIBO_TOKEN}"', '"literal-token-VALUE-9"'
    )
    workspace.config.write_text(text, encoding="utf-8")
    err = workspace.refused("post", "list", contains="channels.weibo-main.access_token")
    assert "literal-token-VALUE-9" not in err


def test_errors_never_print_secret_values(workspace: Workspace) -> None:
    # A wrong type next to resolved secrets: pydantic must not echo the section's values.
    text = workspace.config.read_text(encoding="utf-8").replace(
        'mode = "freepublish"', 'mode = "everywhere"'
    )
    workspace.config.write_text(text, encoding="utf-8")
    err = workspace.refused("post", "list", contains="channels.wechat-main.mode")
    for value in SECRETS.values():
        assert value not in err


def test_bad_csv_row_names_file_row_and_field(workspace: Workspace) -> None:
    good = (SAMPLES / "posts.csv").read_text(encoding="utf-8")
    lines = good.splitlines(keepends=True)
    bad = good.replace("weibo-main;wechat-main;news-feed", "weibo-main;wechat-mian;news-feed", 1)
    path = workspace.root / "import.csv"
    path.write_text(bad, encoding="utf-8")
    (workspace.root / "media").mkdir(exist_ok=True)
    err = workspace.refused("post", "import", str(path), user="zhang")
    assert f"{path} row 1 (line 2), column channels 'wechat-mian': no such channel" in err
    assert lines  # the sample itself is untouched
    # media paths resolve relative to the CSV file: the copy next to the workspace has none
    moved = workspace.root / "elsewhere.csv"
    moved.write_text(good, encoding="utf-8")
    err = workspace.refused("post", "import", str(moved), user="zhang")
    assert "row 1 (line 2), column images" in err and "file not found" in err


def test_bad_markdown_front_matter_names_file_and_line(workspace: Workspace) -> None:
    folder = workspace.root / "posts"
    folder.mkdir()
    (folder / "a.md").write_text(
        '+++\ntitle = "好"\nchannels = ["news-feed"]\n+++\n正文\n', encoding="utf-8"
    )
    (folder / "b.md").write_text(
        '+++\ntitle = "坏"\nchanels = ["news-feed"]\n+++\n正文\n', encoding="utf-8"
    )
    (folder / "c.md").write_text(
        '+++\ntitle = "坏\nchannels = ["news-feed"]\n+++\n正文\n', encoding="utf-8"
    )
    err = workspace.refused("post", "import", str(folder), user="zhang")
    assert f"{folder / 'b.md'} line 3: unknown front matter key 'chanels'" in err
    assert f"{folder / 'c.md'} line 2: invalid TOML front matter" in err
    assert json.loads(workspace.ok("post", "list", "--json")) == []


@pytest.mark.parametrize(
    "args",
    [
        ("post", "show", "9" * 30),
        ("delivery", "retry", "9" * 30),
        ("audit", "--post", "9" * 30),
        ("post", "list", "--offset", "9" * 30),
    ],
)
def test_numbers_too_large_for_the_database_are_refused(
    workspace: Workspace, args: tuple[str, ...]
) -> None:
    workspace.ok("post", "list")
    result = workspace.run(*args, user="ops")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "is not in the range" in result.stderr
