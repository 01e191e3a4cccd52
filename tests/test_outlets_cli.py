"""The outlets' rules at submit and in `post preview` (issue 14), and `metrics import` of an
XLSX export matched by title and day, through the real CLI and database."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import Workspace

OUTLETS = """
[channels.tt]
type = "assisted"
platform = "toutiao"
output_dir = "packs"
min_gap_minutes = 0

[channels.xhs]
type = "assisted"
platform = "xiaohongshu"
output_dir = "packs"

[channels.paper]
type = "print"
output_dir = "paper"
max_characters = 100
"""


def _with_outlets(ws: Workspace) -> None:
    ws.config.write_text(ws.config.read_text(encoding="utf-8") + OUTLETS, encoding="utf-8")


def test_outlet_rules_refuse_at_submit_and_show_in_preview(workspace: Workspace) -> None:
    _with_outlets(workspace)
    long_title = "勤洗手：七步洗手法的科学依据，以及为什么揉搓时间要不少于二十秒"  # 31 characters
    post_id = workspace.add_post("--channel", "tt", title=long_title)
    stderr = workspace.refused(
        "post", "submit", str(post_id), user="zhang", contains="tt", lang=None
    )
    assert "标题" in stderr and "30" in stderr
    preview = json.loads(workspace.ok("post", "preview", str(post_id), "--json"))
    (item,) = [i for i in preview if i["channel"] == "tt"]
    assert item["problems"] and item["rendered"]["kind"] == "copy-pack"

    # the newspaper: a body over max_characters is refused
    paper = workspace.add_post("--channel", "paper")  # its body is 21 characters
    workspace.ok("post", "edit", str(paper), "--body", "科" * 101, user="zhang")
    workspace.refused("post", "submit", str(paper), user="zhang", contains="100")
    # 小红书 takes notes with at least one picture: a post with one passes
    fine = workspace.add_post("--channel", "xhs", title="七步洗手法")
    workspace.ok("post", "submit", str(fine), user="zhang")


def test_xlsx_export_matched_by_title_and_day(workspace: Workspace) -> None:
    import openpyxl

    _with_outlets(workspace)
    post_id = workspace.add_post("--channel", "tt")
    workspace.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        workspace.ok("post", "approve", str(post_id), user=reviewer)
    workspace.ok("run", "--once", user="ops")
    (delivery,) = json.loads(workspace.ok("post", "show", str(post_id), "--json"))["deliveries"]
    workspace.ok(
        "delivery", "confirm", str(delivery["id"]), "--url", "https://www.toutiao.com/a/1/",
        user="ops",
    )  # fmt: skip
    from zoneinfo import ZoneInfo

    from kepubot.app import App
    from kepubot.config import load_config
    from kepubot.queue import deliveries

    app = App(load_config(workspace.config))
    try:
        published_at = deliveries.get(app.store.conn(), delivery["id"]).published_at
    finally:
        app.close()
    assert published_at is not None
    day = published_at.astimezone(ZoneInfo("Asia/Shanghai"))
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["标题", "发布时间", "阅读量", "点赞量", "评论量", "分享量", "收藏量"])
    sheet.append(["勤洗手：七步洗手法的科学依据", day.replace(tzinfo=None), 1.2e4, 30, 4, 5, 6])
    sheet.append(["勤洗手：七步洗手法的科学依据", "2020-01-01 08:00", 99, 1, 1, 1, 1])
    path = workspace.root / "export.xlsx"
    book.save(path)
    out = workspace.ok("metrics", "import", str(path), "--channel", "tt", user="ops")
    assert "imported 1 rows" in out and "unmatched: row 3" in out  # another day: no match
    # a generic export with its own column names, mapped
    generic = workspace.root / "generic.csv"
    generic.write_text(
        f"headline,date,reads\n勤洗手：七步洗手法的科学依据,{day.date().isoformat()},2.5万\n",
        encoding="utf-8",
    )
    workspace.refused(
        "metrics", "import", str(generic), "--channel", "tt", "--format", "generic",
        user="ops", contains="no title or link column",
    )  # fmt: skip
    out = workspace.ok(
        "metrics", "import", str(generic), "--channel", "tt", "--format", "generic",
        "--mapping", "title=headline", "--mapping", "published=date", "--mapping", "views=reads",
        user="ops",
    )  # fmt: skip
    assert "imported 1 rows" in out
    history = json.loads(workspace.ok("audit", "--json", "--limit", "80"))
    assert [r["action"] for r in history].count("metrics.imported") == 2
    # an editor is neither operator nor assignee
    workspace.refused(
        "metrics", "import", str(generic), "--channel", "tt", user="zhang", contains="operator"
    )
    assert Path(path).is_file()  # the user's file is never touched
