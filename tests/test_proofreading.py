"""三校: the proofreading checks (kepubot/proofread.py), through the module and the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import Workspace
from kepubot.proofread import Finding, MisusedWords, check, mask

DATA = Path(__file__).resolve().parents[1] / "kepubot" / "data"


def shipped() -> MisusedWords:
    return MisusedWords.load(DATA / "misused_words.txt")


def found(findings: list[Finding]) -> list[tuple[str, str, int, int, str, str]]:
    return [(f.kind, f.field, f.line, f.column, f.text, f.suggestion) for f in findings]


def test_traditional_characters_in_a_simplified_post_with_the_suggestion() -> None:
    body = "流感病毒主要通过飞沫传播。\n這種病毒在冬季更活跃。"
    assert found(check({"body": body})) == [
        ("script", "body", 2, 1, "這", "这"),
        ("script", "body", 2, 2, "種", "种"),
    ]


def test_simplified_characters_in_a_traditional_post() -> None:
    body = "流感病毒主要透過飛沫傳播。這種病毒在冬季更活跃。"
    findings = check({"body": body})
    assert found(findings) == [("script", "body", 1, 23, "跃", "躍")]
    assert "繁体文本中的简体字" in findings[0].describe()


def test_words_that_are_simplified_too_are_not_flagged() -> None:
    # 乾隆 and 著名 keep their characters in simplified Chinese (OpenCC's phrase table)
    assert check({"body": "乾隆年间著名的医书记载了种痘法。"}) == []


def test_half_width_punctuation_next_to_chinese() -> None:
    body = "维生素C(抗坏血酸)是水溶性的,每天需要摄入;你知道吗?\n时间是10:30, ok"
    assert found(check({"body": body})) == [
        ("halfwidth", "body", 1, 5, "(", "（"),
        ("halfwidth", "body", 1, 10, ")", "）"),
        ("halfwidth", "body", 1, 16, ",", "，"),
        ("halfwidth", "body", 1, 23, ";", "；"),
        ("halfwidth", "body", 1, 28, "?", "？"),
    ]


def test_unpaired_and_mismatched_quotes_and_brackets() -> None:
    body = "他说：“多喝水。\n参见《中国居民膳食指南（2022）】。\n【提示】正常。"
    assert found(check({"body": body})) == [
        ("pair", "body", 1, 4, "“", ""),
        ("pair", "body", 2, 18, "】", "》"),  # 】 where 《 waits for its 》
    ]
    assert len(check({"body": "《指南"})) == 1
    assert found(check({"body": "睡眠）很重要"})) == [("pair", "body", 1, 3, "）", "")]


def test_repeated_punctuation_one_finding_per_run() -> None:
    assert found(check({"body": "太重要了！！！请记住。。真的!!"})) == [
        ("repeat", "body", 1, 5, "！！！", "！"),
        ("repeat", "body", 1, 11, "。。", "。"),
        ("repeat", "body", 1, 15, "!!", "！"),
    ]


def test_misused_words_from_the_shipped_list() -> None:
    words = shipped()
    body = "我们要再接再励。\n按装软件后迫不急待地打开，一股作气读完。"
    assert found(check({"title": "谈笑风声", "body": body}, words)) == [
        ("misused", "title", 1, 1, "谈笑风声", "谈笑风生"),
        ("misused", "body", 1, 4, "再接再励", "再接再厉"),
        ("misused", "body", 2, 1, "按装", "安装"),
        ("misused", "body", 2, 6, "迫不急待", "迫不及待"),
        ("misused", "body", 2, 14, "一股作气", "一鼓作气"),
    ]
    for wrong, right in [
        ("甘败下风", "甘拜下风"),
        ("默守成规", "墨守成规"),
        ("记忆尤新", "记忆犹新"),
    ]:
        assert words.pairs[wrong] == right


def test_misused_words_file_with_a_bad_line_is_a_config_error(tmp_path: Path) -> None:
    from kepubot.errors import ConfigError

    path = tmp_path / "words.txt"
    path.write_text("# 注释\n再接再励 → 再接再厉\n按装\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 3"):
        MisusedWords.load(path)


def test_units_written_two_ways_in_one_post() -> None:
    body = "快走5公里消耗约300千卡。\n慢跑5 km 更多；体重60千克的人，每公斤……\n体重70 kg。"
    assert found(check({"body": body})) == [
        ("unit", "body", 2, 3, "5 km", "5公里"),
        ("unit", "body", 3, 3, "70 kg", "70千克"),
    ]
    # with and without a space is two ways too
    assert found(check({"body": "跑了5km，又走了3 km，再走2km。"})) == [
        ("unit", "body", 1, 10, "3 km", "3km"),
    ]
    # one way throughout is fine; so are ℃ and °C (the same symbol)
    assert check({"body": "体温37.3℃算低热，38.5°C以上要就医。步行3公里。"}) == []


def test_code_urls_and_link_targets_are_not_checked() -> None:
    body = (
        "运行 `print(1,2)!!` 即可。\n"
        "```\n這裡,是代码!!\n```\n"
        "详见 https://example.org/a,b?x=1!! 和[说明](https://example.org/這,裡)。"
    )
    assert check({"body": body}) == []
    assert mask("见 `a,b` 处") == "见       处"


def test_findings_describe_place_in_both_languages() -> None:
    (finding,) = check({"body": "第一行\n这是,问题"})
    assert finding.describe() == "正文 2:3：半角标点「,」（中文里的半角标点），建议改为「，」"
    assert finding.describe("en").startswith("body 2:3: halfwidth ','")
    assert finding.key == check({"body": "第一行\n这是,问题"})[0].key


# --- through the command line ----------------------------------------------------------------


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    shutil.copy(DATA / "misused_words.txt", workspace.root / "misused_words.txt")
    config = workspace.config.read_text(encoding="utf-8")
    config = config.replace("[review]\n", '[review]\nmisused_words = "misused_words.txt"\n', 1)
    assert "misused_words" in config
    workspace.config.write_text(config, encoding="utf-8")
    return workspace


SLOPPY = "勤洗手能预防疾病,我们要再接再励。\n洗手時间不少于20秒。"


def add(ws: Workspace, body: str = SLOPPY) -> tuple[int, str]:
    result = ws.run(
        "post",
        "add",
        "--title",
        "洗手的学问",
        "--body",
        body,
        "--channel",
        "news-feed",
        user="zhang",
        lang=None,  # the config's language (zh): findings are worded in Chinese
    )
    assert result.exit_code == 0, result.stderr
    return int(result.stdout.strip()), result.stderr


def test_add_edit_and_submit_warn_with_line_and_column(ws: Workspace) -> None:
    post_id, warnings = add(ws)
    lines = warnings.strip().splitlines()
    assert lines == [
        f"warning: post {post_id} 正文 1:9：半角标点「,」（中文里的半角标点），建议改为「，」",
        f"warning: post {post_id} 正文 1:13：易错词「再接再励」，建议改为「再接再厉」",
        f"warning: post {post_id} 正文 2:3：繁简混用「時」（简体文本中的繁体字），建议改为「时」",
    ]
    result = ws.run(
        "post", "edit", str(post_id), "--title", "洗手的学问!!", user="zhang", lang=None
    )
    assert result.exit_code == 0
    assert f"warning: post {post_id} 标题 1:6：标点重复「!!」" in result.stderr
    result = ws.run("post", "submit", str(post_id), user="zhang")
    assert result.exit_code == 0  # warnings never block submitting
    assert result.stderr.count("warning:") == 4


def test_preview_lists_findings(ws: Workspace) -> None:
    post_id, _ = add(ws)
    text = ws.ok("post", "preview", str(post_id), lang=None)
    assert "校对提示:" in text and "正文 2:3：繁简混用「時」" in text
    assert text.count("繁简混用「時」") == 1  # once for the post, not once per channel
    items = json.loads(ws.ok("post", "preview", str(post_id), "--json"))
    kinds = [(f["kind"], f["line"], f["column"]) for f in items[0]["proofreading"]]
    assert kinds == [("halfwidth", 1, 9), ("misused", 1, 13), ("script", 2, 3)]


def test_final_level_must_acknowledge_each_finding_and_the_audit_says_so(ws: Workspace) -> None:
    post_id, _ = add(ws)
    ws.ok("post", "submit", str(post_id), user="zhang")
    # earlier levels see the warnings but are not stopped
    result = ws.run("post", "approve", str(post_id), user="li")
    assert result.exit_code == 0 and "warning:" in result.stderr
    ws.ok("post", "approve", str(post_id), user="wang")
    refusal = ws.refused("post", "approve", str(post_id), user="zhao")
    lines = refusal.strip().splitlines()
    assert len(lines) == 3
    assert all("proofreading finding not acknowledged" in line for line in lines)
    assert "body 1:13: misused '再接再励'" in refusal
    ws.ok("post", "approve", str(post_id), "--ack-proofreading", user="zhao")
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    assert shown["state"] == "approved"
    history = json.loads(ws.ok("audit", "--post", str(post_id), "--json"))
    final = next(row for row in history if row["action"] == "post.approved")
    acknowledged = final["detail"]["proofreading_acknowledged"]
    assert len(acknowledged) == 3 and "script '時'" in acknowledged[2]


def test_a_clean_post_needs_no_acknowledgement(ws: Workspace) -> None:
    post_id, warnings = add(ws, "勤洗手能预防疾病，洗手时间不少于20秒。")
    assert warnings == ""
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    history = json.loads(ws.ok("audit", "--post", str(post_id), "--json"))
    final = next(row for row in history if row["action"] == "post.approved")
    assert "proofreading_acknowledged" not in final["detail"]


def test_init_writes_the_misused_words_list(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kepubot.cli import cli

    target = tmp_path / "site" / "kepubot.toml"
    result = CliRunner().invoke(cli, ["--config", str(target), "init"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    written = target.parent / "misused_words.txt"
    assert "再接再励 → 再接再厉" in written.read_text(encoding="utf-8")
    assert 'misused_words = "misused_words.txt"' in target.read_text(encoding="utf-8")


def test_a_missing_misused_words_file_is_an_error_before_anything_is_written(
    ws: Workspace,
) -> None:
    (ws.root / "misused_words.txt").unlink()
    err = ws.refused(
        "post", "add", "--title", "t", "--body", SLOPPY, "--channel", "news-feed", user="zhang"
    )
    assert "review.misused_words: file" in err and "not found" in err
