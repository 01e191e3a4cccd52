"""The command line reads Chinese state names and logs in the configured zone (issue 16
"Chinese everywhere a person reads")."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from conftest import Workspace
from kepubot.cli import cli


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
    chinese = ws.ok("status", lang=None)  # the config's [kepubot] language: zh by default
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
    # scripts that parse the messages ask for English
    assert "not attached" in ws.refused(
        "--lang", "en", "post", "submit", str(post_id), user="zhang"
    )
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


def set_language(ws: Workspace, language: str) -> None:
    text = ws.config.read_text(encoding="utf-8")
    assert "[kepubot]\n" in text and "language =" not in text
    ws.config.write_text(
        text.replace("[kepubot]\n", f'[kepubot]\nlanguage = "{language}"\n', 1), encoding="utf-8"
    )


def test_messages_follow_the_configured_language_without_lang(workspace: Workspace) -> None:
    """No --lang: a config without [kepubot] language (zh by default) speaks Chinese, one with
    language = "en" English; confirmations, error: lines and warnings alike."""
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "edit", str(post_id), "--body", "![图](缺图.png)", user="zhang")
    err = ws.refused("post", "submit", str(post_id), user="zhang", lang=None)
    assert f"error: 稿件 {post_id} 不能提交：正文引用的图片「缺图.png」没有附上" in err
    ws.ok("post", "edit", str(post_id), "--body", "正文", user="zhang")
    out = ws.ok("post", "submit", str(post_id), user="zhang", lang=None)
    assert out.strip() == f"已提交审核：{post_id}"
    out = ws.ok("post", "reject", str(post_id), "--reason", "再核对", user="li", lang=None)
    assert out.strip() == f"已退回：{post_id}"
    twin = ws.run(
        "post",
        "add",
        "--title",
        "同题",
        "--body",
        "同文",
        "--channel",
        "news-feed",
        user="zhang",
        lang=None,
    )
    again = ws.run(
        "post",
        "add",
        "--title",
        "同题",
        "--body",
        "同文",
        "--channel",
        "news-feed",
        user="zhang",
        lang=None,
    )
    assert twin.exit_code == 0 and again.exit_code == 0, again.stderr
    first = int(twin.stdout)
    assert f"warning: 稿件 {int(again.stdout)} 与稿件 {first} 的标题和正文相同" in again.stderr

    out = ws.ok("post", "edit", str(post_id), "--body", "再改", user="zhang", lang=None)
    assert out.strip() == f"稿件 {post_id}：已退回"  # the state a rejected post keeps
    assert ws.ok("audit", "verify", lang=None).startswith("审计链完整：共 ")
    assert (
        ws.ok("pause", "--reason", "核查", user="ops", lang=None).strip()
        == "已暂停：全部渠道 (all)"
    )
    assert ws.ok("resume", user="ops", lang=None).strip() == "已恢复：全部渠道 (all)"

    set_language(ws, "en")
    assert ws.ok("audit", "verify", lang=None).startswith("audit chain intact: ")
    err = ws.refused("metrics", "collect", "--post", str(post_id), user="zhang", lang=None)
    assert (
        err.strip()
        == "error: collecting figures needs the manager or operator role; zhang has neither"
    )
    ws.ok("post", "edit", str(post_id), "--body", "正文", user="zhang")
    out = ws.ok("post", "submit", str(post_id), user="zhang", lang=None)
    assert out.strip() == f"submitted: {post_id}"
    assert "oldest overdue:" in ws.ok("status", lang=None)


def test_lang_overrides_the_configured_language(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed")
    # zh config (the default), --lang en: English
    err = ws.refused(
        "--lang", "en", "metrics", "collect", "--post", str(post_id), user="zhang", lang=None
    )
    assert (
        err.strip()
        == "error: collecting figures needs the manager or operator role; zhang has neither"
    )
    assert "oldest overdue:" in ws.ok("--lang", "en", "status", lang=None)
    # en config, --lang zh: Chinese
    set_language(ws, "en")
    err = ws.refused(
        "--lang", "zh", "metrics", "collect", "--post", str(post_id), user="zhang", lang=None
    )
    assert err.strip() == "error: 立即采集需要主管或运维角色；zhang 没有"
    out = ws.ok("--lang", "zh", "post", "submit", str(post_id), user="zhang", lang=None)
    assert out.strip() == f"已提交审核：{post_id}"
    assert "最久逾期：" in ws.ok("--lang", "zh", "status", lang=None)


def test_a_config_error_speaks_the_language_the_file_names(workspace: Workspace) -> None:
    """The config that fails to load still decides the language of its own error (read
    from the file with tomllib); a file that cannot be read at all gets Chinese."""
    ws = workspace
    missing = ws.root / "nowhere.toml"
    result = ws.runner.invoke(cli, ["--config", str(missing), "status"])
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        f"error: 找不到配置文件 {missing}：请在此目录运行 `kepubot init`，或用 --config FILE 指定"
    )
    result = ws.runner.invoke(cli, ["--config", str(missing), "--lang", "en", "status"])
    assert result.stderr.strip().endswith(
        "not found; run `kepubot init` here or pass --config FILE"
    )

    broken = ws.root / "broken.toml"
    broken.write_text('[kepubot]\nlanguage = "en"\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    english = ws.runner.invoke(cli, ["--config", str(broken), "status"])
    assert english.exit_code == 2
    assert english.stderr.strip() == (
        f"error: {broken}: kepubot.timezone: unknown time zone 'Mars/Olympus';"
        " use an IANA name such as Asia/Shanghai"
    )
    broken.write_text('[kepubot]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    chinese = ws.runner.invoke(cli, ["--config", str(broken), "status"])
    assert chinese.exit_code == 2
    assert chinese.stderr.strip() == (
        f"error: {broken}：kepubot.timezone：未知时区「Mars/Olympus」，请使用 IANA 时区名，"
        "例如 Asia/Shanghai"
    )
    broken.write_text("[kepubot\nlanguage = 'en'\n", encoding="utf-8")  # not TOML: Chinese
    result = ws.runner.invoke(cli, ["--config", str(broken), "status"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {broken}：TOML 格式错误："), result.stderr
    result = ws.runner.invoke(cli, ["--config", str(broken), "--lang", "en", "status"])
    assert result.stderr.startswith(f"error: {broken}: invalid TOML: "), result.stderr


# --- Click's usage errors and the remaining confirmations (issue 16) ----------------------------


def _usage(result: Any) -> tuple[list[str], str]:
    """A usage error: exit 2, no traceback, the Usage line first and exactly one error: line
    (the last); returns (all lines, the error line)."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and "Error:" not in result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    return lines, errors[0]


def test_click_usage_errors_speak_chinese_under_zh(workspace: Workspace) -> None:
    ws = workspace
    lines, error = _usage(ws.run("post", "pause", lang="zh"))
    assert lines[0].startswith("Usage: ") and lines[0].endswith("post pause [OPTIONS] POST_IDS...")
    assert lines[1] == "运行 'cli post pause --help' 查看帮助。", lines
    assert error == "error: 缺少参数 'POST_IDS...'"
    assert _usage(ws.run("post", "list", "--limitt", "3", lang="zh"))[1] == (
        "error: 没有选项 '--limitt'（是否想用 --limit？）"
    )
    assert _usage(ws.run("post", "show", "abc", lang="zh"))[1] == (
        "error: 'POST_ID' 的值无效：'abc' 不是有效的整数"
    )
    assert _usage(ws.run("post", "show", "0", lang="zh"))[1].startswith(
        "error: 'POST_ID' 的值无效：0 不在允许的范围 1<=x<="
    )
    assert _usage(ws.run("report", "--format", "pdf", lang="zh"))[1] == (
        "error: '--format' 的值无效：'pdf' 不是可选值之一"
        "（可选：'table', 'csv', 'json', 'html', 'xlsx'）"
    )
    assert _usage(ws.run("nosuch", lang="zh"))[1] == "error: 没有命令 'nosuch'"
    assert _usage(ws.run("post", "show", "1", "2", lang="zh"))[1] == "error: 多余的参数：2"
    assert _usage(ws.run("post", "add", "--title", lang="zh"))[1] == (
        "error: 选项 '--title' 需要一个值"
    )
    # without --lang the config's language decides: Chinese by default, also when the
    # top-level options themselves are wrong (no state yet: read from the arguments)
    assert _usage(ws.run("post", "pause", lang=None))[1] == "error: 缺少参数 'POST_IDS...'"
    assert _usage(ws.run("--lang", "xx", "status", lang=None))[1] == (
        "error: '--lang' 的值无效：'xx' 不是可选值之一（可选：'zh', 'en'）"
    )


def test_click_usage_errors_stay_english_under_en(workspace: Workspace) -> None:
    ws = workspace
    lines, error = _usage(ws.run("post", "pause"))  # the helper passes --lang en
    assert lines[1] == "Try 'cli post pause --help' for help."
    assert error == "error: Missing argument 'POST_IDS...'."
    assert _usage(ws.run("post", "list", "--bogus"))[1] == "error: No such option '--bogus'."
    set_language(ws, "en")
    assert _usage(ws.run("post", "show", "abc", lang=None))[1] == (
        "error: Invalid value for 'POST_ID': 'abc' is not a valid integer range."
    )
    # a group without its command still shows its help (Click's own behaviour), exit 2
    result = ws.run("post", lang=None)
    assert result.exit_code == 2 and "Commands:" in result.stdout + result.stderr


def test_remaining_confirmations_in_chinese_and_english(workspace: Workspace) -> None:
    ws = workspace
    # init: a new folder, Chinese by default and English on request
    for lang, expected in (
        ("zh", ("已写入 ", "下一步：kepubot --as zhang post add", "网页控制台：")),
        ("en", ("wrote ", "next: kepubot --as zhang post add", "console: kepubot user passwd")),
    ):
        target = ws.root / f"site-{lang}" / "kepubot.toml"
        result = ws.runner.invoke(
            cli, ["--config", str(target), "--lang", lang, "init"], catch_exceptions=False
        )
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 3 and all(
            line.startswith(start) for line, start in zip(lines, expected, strict=True)
        ), lines
        if lang == "en":
            assert lines[0].endswith("database kepubot.db is ready")
        else:
            assert lines[0].endswith("数据库 kepubot.db 已就绪")

    post_id = ws.add_post("--channel", "news-feed")
    out = ws.ok("post", "schedule", str(post_id), "--next-slot", user="zhang", lang="zh")
    assert (
        out.strip() == f"稿件 {post_id}：已设定发布时间为各渠道的下一个空闲时段（审核通过后生效）"
    )
    out = ws.ok("post", "schedule", str(post_id), "--next-slot", user="zhang")
    assert (
        out.strip() == f"post {post_id}: scheduled for the next free slot (applies when approved)"
    )

    checked = ws.run("channels", "check", "news-feed", lang="zh")
    assert checked.exit_code == 0, checked.stderr
    assert checked.stdout.startswith("news-feed (feed)：正常：writes feed.xml"), checked.stdout
    checked = ws.run("channels", "check", "news-feed")
    assert checked.stdout.startswith("news-feed (feed): ok: writes feed.xml"), checked.stdout

    gc = ws.ok("media", "gc", user="ops", lang="zh")
    assert gc.strip().startswith("已删除 ") and "中无引用的文件 0 个，共 0 字节" in gc
    assert ws.ok("media", "gc", user="ops").strip().startswith("removed 0 unreferenced files")

    # publish a post (the feed, one pass), then take it back: the retract lines
    live = ws.add_post("--channel", "news-feed", title="今晚看流星雨")
    ws.ok("post", "submit", str(live), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(live), user=reviewer)
    once = ws.ok("run", "--once", user="ops", lang="zh")
    assert once.strip().startswith("完成一轮：发送或尝试了 1 个发布任务"), once
    shown = json.loads(ws.ok("post", "show", str(live), "--json"))
    assert [d["state"] for d in shown["deliveries"]] == ["published"]
    out = ws.ok("post", "retract", str(live), "--reason", "数据有误", user="zhao", lang="zh")
    assert out.strip() == f"稿件 {live}：撤回中：news-feed"
