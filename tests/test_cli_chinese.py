"""The command line reads Chinese state names and logs in the configured zone (issue 16
"Chinese everywhere a person reads")."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from conftest import Workspace


def test_post_list_takes_the_chinese_state_names(workspace: Workspace) -> None:
    ws = workspace
    draft = ws.add_post("--channel", "news-feed")
    submitted = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(submitted), user="zhang")
    for name in ("审核中", "in_review"):
        rows = json.loads(ws.ok("post", "list", "--state", name, "--json"))
        assert [r["id"] for r in rows] == [submitted], name
    rows = json.loads(ws.ok("post", "list", "--state", "草稿", "--json"))
    assert [r["id"] for r in rows] == [draft]
    out = ws.refused("post", "list", "--state", "发了")
    assert "'发了'" in out and "审核中" in out and "in_review" in out


def test_log_lines_carry_the_configured_zone(workspace: Workspace) -> None:
    """A real process: its log lines are in [kepubot] timezone and name it."""
    result = subprocess.run(
        [
            sys.executable,
            *("-m", "kepubot", "--config", str(workspace.config), "--as", "ops"),
            *("--log-level", "debug", "run", "--once"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=workspace.root,
    )
    assert result.returncode == 0, result.stderr
    stamped = [
        line
        for line in result.stderr.splitlines()
        if re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", line)
    ]
    assert stamped, result.stderr
    assert all(" Asia/Shanghai " in line for line in stamped), stamped[:3]


def test_status_reads_in_chinese_by_default_and_english_on_request(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    chinese = ws.ok("status")
    assert "发布任务：" in chinese and "排队中（queued）：1" in chinese
    assert "最久逾期：" in chinese and "熔断中的渠道：无" in chinese and "尚未运行过" in chinese
    english = ws.ok("--lang", "en", "status")
    assert "oldest overdue:" in english and "open breakers: none" in english


def test_lang_zh_says_what_happened_and_why_in_chinese(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "edit", str(post_id), "--body", "![图](缺图.png)", user="zhang")
    refused = ws.refused("--lang", "zh", "post", "submit", str(post_id), user="zhang")
    assert f"error: 稿件 {post_id} 不能提交：正文引用的图片「缺图.png」没有附上" in refused
    # without --lang the messages stay in English (scripts parse them)
    assert "not attached" in ws.refused("post", "submit", str(post_id), user="zhang")
    ws.ok("post", "edit", str(post_id), "--body", "正文", user="zhang")
    assert ws.ok("--lang", "zh", "post", "submit", str(post_id), user="zhang").strip() == (
        f"已提交审核：{post_id}"
    )
    out = ws.ok("--lang", "zh", "post", "approve", str(post_id), user="li")
    assert out.strip() == f"稿件 {post_id}：本级已通过，进入复审"
    out = ws.ok("--lang", "zh", "post", "reject", str(post_id), "--reason", "再核对", user="wang")
    assert out.strip() == f"已退回：{post_id}"
    out = ws.ok("--lang", "zh", "post", "cancel", str(post_id), user="zhang")
    assert out.strip() == f"稿件 {post_id}：已撤销（取消了 0 个发布任务）"


def test_lang_zh_refusals_of_collect_and_schedule(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed")
    err = ws.refused("--lang", "zh", "metrics", "collect", "--post", str(post_id), user="zhang")
    assert err.strip() == "error: 立即采集需要主管或运维角色；zhang 没有"
    err = ws.refused("--lang", "zh", "post", "schedule", str(post_id), user="zhang")
    assert "请选择一个发布时间" in err
