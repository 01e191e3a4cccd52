"""The console shows the service layer's refusals in Chinese: every translation rule is
pinned here to a message the real service layer produces (through the command line)."""

from __future__ import annotations

import re

import pytest

from conftest import Workspace
from kepubot.web.messages import translate

EXTRA_USERS = '\n[users.liu]\nroles = ["editor", "reviewer"]\n'


def error_of(ws: Workspace, *args: str, user: str) -> str:
    result = ws.run(*args, user=user)
    assert result.exit_code == 2, result.output
    lines = [line.removeprefix("error: ") for line in result.stderr.strip().splitlines()]
    return "\n".join(lines)


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8") + EXTRA_USERS, encoding="utf-8"
    )
    return workspace


def refusals(ws: Workspace) -> dict[str, str]:
    post = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    own = ws.add_post("--channel", "news-feed", user="liu")
    dirty = ws.add_post("--channel", "news-feed")
    ws.ok("post", "edit", str(dirty), "--body", "这是最佳方法。", user="zhang")
    ws.ok("post", "submit", str(post), user="zhang")
    ws.ok("post", "submit", str(own), user="liu")
    ws.ok("post", "approve", str(post), user="li")
    out = {
        "own post": error_of(ws, "post", "approve", str(own), user="liu"),
        "one level": error_of(ws, "post", "approve", str(post), user="li"),
        "reviewer role": error_of(ws, "post", "approve", str(post), user="zhang"),
        "only in review": error_of(ws, "post", "approve", str(dirty), user="wang"),
        "cannot be submitted": error_of(ws, "post", "submit", str(dirty), user="zhang"),
        "only author submits": error_of(ws, "post", "submit", str(dirty), user="chen"),
        "only draft or rejected": error_of(ws, "post", "submit", str(post), user="zhang"),
        "only author edits": error_of(ws, "post", "edit", str(dirty), "--title", "x", user="chen"),
        "only author cancels": error_of(ws, "post", "cancel", str(dirty), user="chen"),
        "only author schedules": error_of(
            ws, "post", "schedule", str(dirty), "--next-slot", user="chen"
        ),
        "no post": error_of(ws, "post", "approve", "999", user="li"),
        "no delivery": error_of(ws, "delivery", "retry", "999", user="ops"),
        "operator role": error_of(ws, "delivery", "retry", "1", user="zhang"),
        "reason": error_of(ws, "post", "reject", str(post), "--reason", " ", user="wang"),
    }
    for reviewer in ("wang", "zhao"):
        ws.ok("post", "approve", str(post), user=reviewer)
    out["only failed retried"] = error_of(ws, "delivery", "retry", "1", user="ops")
    out["only needs_attention resolved"] = error_of(
        ws, "delivery", "resolve", "1", "--not-published", user="ops"
    )
    ws.ok("post", "cancel", str(dirty), user="zhang")
    out["already cancelled"] = error_of(ws, "post", "cancel", str(dirty), user="zhang")
    out["no longer edited"] = error_of(ws, "post", "edit", str(dirty), "--title", "x", user="zhang")
    return out


def test_every_rule_matches_a_real_refusal(ws: Workspace) -> None:
    for case, message in refusals(ws).items():
        chinese = translate(message, "zh")
        assert chinese != message, (case, message)
        # no English sentence is left (channel names, user names and words stay as they are)
        leftover = re.findall(r"[a-z]+(?: [a-z]+){2,}", chinese)
        assert not leftover, (case, chinese, leftover)
        assert translate(message, "en") == message


def test_an_unknown_message_is_shown_as_it_is() -> None:
    assert translate("something new went wrong", "zh") == "something new went wrong"


def test_channel_problems_name_form_fields_not_options() -> None:
    wechat = "封面：公众号图文必须有封面，请添加 --cover 或 --image"
    assert translate(wechat, "zh") == "封面：公众号图文必须有封面，请添加封面或图片"
    assert translate("视频：抖音只发布视频，请添加 --video", "zh").endswith("请添加视频")
