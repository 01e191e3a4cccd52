"""Sensitive words classed block or warn; a reviewer accepts a warn word with a reason
(issue 13 §4, docs/architecture.md §4.3)."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

import pytest
from backends import connect_db

from conftest import Workspace
from kepubot.errors import ConfigError
from kepubot.sensitive import SensitiveWords

SHIPPED = Path(str(files("kepubot") / "data" / "sensitive_words.txt"))
BODY = "洗手第一步：用流动水打湿双手，再抹肥皂揉搓不少于20秒。"


def shipped_list(ws: Workspace) -> None:
    shutil.copy(SHIPPED, ws.root / "sensitive_words.txt")


def shown(ws: Workspace, post_id: int) -> dict:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))


def audit_rows(ws: Workspace, action: str) -> list[dict]:
    conn = connect_db(ws.db)
    rows = [
        {"actor": r[0], **json.loads(r[1])}
        for r in conn.execute(
            "SELECT actor, detail FROM audit WHERE action = ? ORDER BY id", (action,)
        )
    ]
    conn.close()
    return rows


def warned_post(ws: Workspace) -> int:
    """A post with the warn word 第一, submitted (with a warning)."""
    post_id = ws.add_post("--channel", "news-feed", "--body", BODY)
    result = ws.run("post", "submit", str(post_id), user="zhang")
    assert result.exit_code == 0, result.stderr
    assert (
        f"warning: post {post_id}: warning word '第一' in body at line 1, column 3; a reviewer"
        " must accept it with a reason"
    ) in result.stderr
    return post_id


def test_file_syntax_classes_and_old_plain_lists(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# comment\n神药\nwarn: 第一\nWARN：最佳\nblock: 比值:1\n\n", "utf-8")
    words = SensitiveWords.load(path)
    assert words.classes == {"神药": "block", "第一": "warn", "最佳": "warn", "比值:1": "block"}
    hits = words.scan({"body": "第一神药"})
    assert [(h.word, h.level) for h in hits] == [("第一", "warn"), ("神药", "block")]
    # an old list: every entry blocks
    path.write_text("最佳\n第一\n", "utf-8")
    assert set(SensitiveWords.load(path).classes.values()) == {"block"}
    # a typo in the class is an error naming the file and line, not a silent new word
    path.write_text("神药\nwran: 第一\nwarn:\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        SensitiveWords.load(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == (
        f"{path} line 2: unknown class 'wran'; write 'warn: WORD' or 'block: WORD' (or the word"
        " alone, which blocks)"
    )
    assert lines[1] == f"{path} line 3: warn: names no word; add the word"


def test_shipped_list_warns_on_advertising_terms_and_blocks_cure_claims() -> None:
    words = SensitiveWords.load(SHIPPED)
    for word in ("第一", "最佳", "国家级"):
        assert words.level_of(word) == "warn"
    for word in ("包治百病", "神药", "祖传秘方", "百分之百有效"):
        assert words.level_of(word) == "block"


def test_warn_word_submits_and_needs_an_accepted_reason_at_approval(workspace: Workspace) -> None:
    ws = workspace
    shipped_list(ws)
    post_id = warned_post(ws)
    assert shown(ws, post_id)["state"] == "in_review"
    err = ws.refused("post", "approve", str(post_id), user="li")
    assert (
        f"post {post_id} cannot be approved: warning word '第一' in body at line 1, column 3 is"
        " not accepted; accept it with --accept-word 第一 --reason TEXT" in err
    )
    # a reason is required, and only with a word
    ws.refused("post", "approve", str(post_id), "--accept-word", "第一", user="li")
    ws.refused("post", "approve", str(post_id), "--reason", "序数词", user="li")
    ws.refused(
        "post", "approve", str(post_id), "--accept-warnings", " ", user="li", contains="--reason"
    )
    # a word the post does not have, and a blocked word, cannot be accepted
    ws.refused(
        "post",
        "approve",
        str(post_id),
        *("--accept-word", "第一", "--accept-word", "神药", "--reason", "r"),
        user="li",
        contains=f"post {post_id}: '神药' is a blocked sensitive word; it cannot be accepted",
    )
    ws.refused(
        "post",
        "approve",
        str(post_id),
        *("--accept-word", "最佳", "--reason", "r"),
        user="li",
        contains="'最佳' is not a warning word of this post (its warning words: 第一)",
    )
    out = ws.ok(
        "post",
        "approve",
        str(post_id),
        *("--accept-word", "第一", "--reason", "“第一步”是序数，不是广告用语"),
        user="li",
    )
    assert "next level 复审" in out
    (row,) = audit_rows(ws, "post.word_accepted")
    assert row["actor"] == "li" and row["word"] == "第一" and row["level_name"] == "初审"
    assert row["reason"] == "“第一步”是序数，不是广告用语" and row["places"] == ["body 1:3"]
    approval = audit_rows(ws, "post.approved_level")[0]
    assert approval["accepted_words"] == ["第一"]
    # accepted for this round: the next levels see it and need not accept it again
    ws.ok("post", "approve", str(post_id), user="wang")
    ws.ok("post", "approve", str(post_id), user="zhao")
    state = shown(ws, post_id)
    assert state["state"] == "approved"
    assert [(a["word"], a["reviewer"], a["reason"]) for a in state["accepted_words"]] == [
        ("第一", "li", "“第一步”是序数，不是广告用语")
    ]
    text = ws.ok("post", "show", str(post_id), lang=None)  # the config's zh
    assert "已接受的提示词:" in text and "初审  li  第一  “第一步”是序数，不是广告用语" in text


def test_an_edit_starts_a_round_where_warnings_are_accepted_again(workspace: Workspace) -> None:
    ws = workspace
    shipped_list(ws)
    post_id = warned_post(ws)
    ws.ok("post", "approve", str(post_id), "--accept-warnings", "序数用法", user="li")
    ws.ok("post", "edit", str(post_id), "--body", BODY + "\n\n最佳时机是饭前便后。", user="zhang")
    err = ws.refused("post", "approve", str(post_id), user="li")
    assert "warning word '第一'" in err and "warning word '最佳'" in err
    ws.ok("post", "approve", str(post_id), "--accept-warnings", "都是普通用法", user="li")
    rows = audit_rows(ws, "post.word_accepted")
    assert [(r["word"], r["round"], r["reason"]) for r in rows] == [
        ("第一", 1, "序数用法"),
        ("第一", 2, "都是普通用法"),
        ("最佳", 2, "都是普通用法"),
    ]


def test_a_block_word_cannot_be_accepted(workspace: Workspace) -> None:
    """A blocked word added to the list while the post is in review stops every approval,
    whatever the reviewer accepts."""
    ws = workspace
    shipped_list(ws)
    post_id = ws.add_post("--channel", "news-feed", "--body", "这种药号称神奇，其实没有证据。")
    ws.ok("post", "submit", str(post_id), user="zhang")
    with (ws.root / "sensitive_words.txt").open("a", encoding="utf-8") as handle:
        handle.write("号称神奇\n")
    for extra in (
        (),
        ("--accept-warnings", "科普辟谣"),
        ("--accept-word", "号称神奇", "--reason", "x"),
    ):
        err = ws.refused("post", "approve", str(post_id), *extra, user="li")
        assert "sensitive word '号称神奇' in body at line 1, column 4" in err
    # and it still stops a submit: a draft with it is refused
    draft = ws.add_post("--channel", "news-feed", "--body", "号称神奇的偏方。")
    ws.refused("post", "submit", str(draft), user="zhang", contains="'号称神奇'")
