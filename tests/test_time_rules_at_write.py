"""An explicit publishing time given when a post is written keeps the rule of
``post schedule --at`` (docs/architecture.md §4.5): ``post add --at``, ``post edit --at``, the
``at`` of an imported row and the console's form are refused, every reason on its own
``error:`` line naming the channel, when the time falls on a blackout date or in a blackout
window of a channel, or within ``min_gap_minutes`` of another post's delivery there. Nothing
is written (the database dump and the media store are unchanged)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from conftest import SAMPLES, Workspace
from kepubot.timeutil import utcnow

TZ = ZoneInfo("Asia/Shanghai")
GAP = "within min_gap_minutes (60), pick another time"


def _day() -> date:
    return utcnow().astimezone(TZ).date() + timedelta(days=3)


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    """news-feed has a blackout window (02:00-05:00); the day after ``_day()`` is a blackout
    date of every channel ([schedule] blackout_dates)."""
    text = workspace.config.read_text(encoding="utf-8")
    text = text.replace(
        'formats = ["rss", "atom", "json"]',
        'formats = ["rss", "atom", "json"]\nblackout = ["02:00-05:00"]',
        1,
    )
    dark = _day() + timedelta(days=1)
    text = text.replace("[review]", f'[schedule]\nblackout_dates = ["{dark}"]\n\n[review]', 1)
    workspace.config.write_text(text, encoding="utf-8")
    return workspace


def _approve(ws: Workspace, post_id: int) -> None:
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)


def _taken(ws: Workspace) -> int:
    """An approved post on weibo-main whose delivery is due at 10:00 of ``_day()``."""
    post_id = ws.add_post("--channel", "weibo-main", "--at", f"{_day()} 10:00", title="已排期")
    _approve(ws, post_id)
    due = [d for d in json.loads(ws.ok("delivery", "list", "--json")) if d["post_id"] == post_id]
    assert [d["state"] for d in due] == ["queued"]
    return post_id


def _media(ws: Workspace) -> list[Path]:
    root = ws.root / "media"
    return sorted(root.rglob("*")) if root.exists() else []


def _add(ws: Workspace, *args: str, lang: str = "en") -> str:
    """A refused ``post add`` by zhang (the database checked unchanged by ``refused``)."""
    both = ("--channel", "weibo-main", "--channel", "news-feed")
    return ws.refused(
        "post", "add", "--title", "t", "--body", "b", *both, *args, user="zhang", lang=lang
    )


def test_post_add_refuses_each_reason_and_writes_nothing(ws: Workspace) -> None:
    _taken(ws)
    day, dark = _day(), _day() + timedelta(days=1)
    media = _media(ws)
    assert media  # the approved post's image and cover

    err = _add(ws, "--at", f"{day} 10:20")
    assert err.splitlines() == [
        f"error: --at: on weibo-main: another post is due at {day} 10:00, {GAP}"
    ], err
    err = _add(ws, "--at", f"{day} 03:00")
    assert err.splitlines() == [
        f"error: --at: on news-feed: {day} 03:00 is in a blackout window ending at 05:00,"
        " pick another time"
    ], err
    # every reason, each on its own line naming its channel
    err = _add(ws, "--at", f"{dark} 10:00")
    assert err.splitlines() == [
        f"error: --at: on {name}: {dark} is a blackout date (blackout_dates), pick another day"
        for name in ("weibo-main", "news-feed")
    ], err
    # the media an add copies in are taken out again
    _add(ws, "--image", str(SAMPLES / "media" / "handwashing.png"), "--at", f"{day} 09:30")
    assert _media(ws) == media
    # in Chinese, as the console shows it
    err = _add(ws, "--at", f"{day} 10:20", lang="zh")
    assert "在 weibo-main，另一篇稿件定于" in err and "间隔不足 60 分钟" in err, err
    # a full gap away, outside the window and the date: accepted
    ws.ok(
        "post", "add", "--title", "t", "--body", "b", "--channel", "weibo-main",
        "--channel", "news-feed", "--at", f"{day} 11:00", user="zhang",
    )  # fmt: skip


def test_post_edit_refuses_with_the_words_of_post_schedule(ws: Workspace) -> None:
    _taken(ws)
    day = _day()
    mine = ws.add_post("--channel", "weibo-main", "--at", f"{day} 14:00", title="我的稿")
    edit = ws.refused("post", "edit", str(mine), "--at", f"{day} 10:30", user="zhang")
    assert edit.splitlines() == [
        f"error: post {mine} on weibo-main: another post is due at {day} 10:00, {GAP}"
    ], edit
    schedule = ws.refused("post", "schedule", str(mine), "--at", f"{day} 10:30", user="zhang")
    assert edit == schedule
    # with the channels the edit gives, not the ones it replaces
    err = ws.refused(
        "post", "edit", str(mine), "--channel", "news-feed", "--at", f"{day} 04:00", user="zhang"
    )
    assert err.splitlines() == [
        f"error: post {mine} on news-feed: {day} 04:00 is in a blackout window ending at 05:00,"
        " pick another time"
    ], err
    assert json.loads(ws.ok("post", "show", str(mine), "--json"))["scheduled_at"].startswith(
        f"{day} 14:00"
    )
    ws.ok("post", "edit", str(mine), "--at", f"{day} 11:00", user="zhang")
    assert json.loads(ws.ok("post", "show", str(mine), "--json"))["scheduled_at"].startswith(
        f"{day} 11:00"
    )


def test_post_import_names_the_file_and_row_of_each_refused_time(ws: Workspace) -> None:
    _taken(ws)
    day = _day()
    folder = ws.root / "batch"
    folder.mkdir()
    csv_file = folder / "a.csv"
    csv_file.write_text(
        "title,body,channels,at\n"
        f"第一篇,正文一,weibo-main,{day} 15:00\n"
        f"第二篇,正文二,weibo-main,{day} 09:40\n",
        encoding="utf-8",
    )
    md_file = folder / "b.md"
    md_file.write_text(
        f'+++\ntitle = "第三篇"\nchannels = ["news-feed"]\nat = "{day} 02:30"\n+++\n正文三\n',
        encoding="utf-8",
    )
    err = ws.refused("post", "import", str(folder), user="zhang")
    assert err.splitlines() == [
        f"error: {csv_file} row 2 (line 3), column at: on weibo-main: another post is due at"
        f" {day} 10:00, {GAP}",
        f"error: {md_file} line 4, at: on news-feed: {day} 02:30 is in a blackout window ending"
        " at 05:00, pick another time",
    ], err
    md_file.write_text(
        f'+++\ntitle = "第三篇"\nchannels = ["news-feed"]\nat = "{day} 12:00"\n+++\n正文三\n',
        encoding="utf-8",
    )
    csv_file.write_text(
        f"title,body,channels,at\n第一篇,正文一,weibo-main,{day} 15:00\n", encoding="utf-8"
    )
    assert "imported 2 posts" in ws.ok("post", "import", str(folder), user="zhang")


def test_post_edit_of_an_approved_post_moves_its_deliveries_with_the_time(ws: Workspace) -> None:
    """Only the time changes, so the post stays approved; its queued deliveries go at the new
    time, as after ``post schedule`` (they used to keep the old one)."""
    taken = _taken(ws)
    day = _day()
    mine = ws.add_post("--channel", "weibo-main", "--at", f"{day} 14:00", title="我的稿")
    _approve(ws, mine)

    def due() -> list[tuple[str, str]]:
        rows = json.loads(ws.ok("delivery", "list", "--json"))
        return [(d["state"], d["due_at"][:16]) for d in rows if d["post_id"] == mine]

    assert due() == [("queued", f"{day} 14:00")]
    ws.refused("post", "edit", str(mine), "--at", f"{day} 10:45", user="zhang")
    assert due() == [("queued", f"{day} 14:00")]
    ws.ok("post", "edit", str(mine), "--at", f"{day} 16:00", user="zhang")
    shown = json.loads(ws.ok("post", "show", str(mine), "--json"))
    assert shown["state"] == "approved" and shown["scheduled_at"].startswith(f"{day} 16:00")
    assert due() == [("queued", f"{day} 16:00")]
    # the other post's delivery is not touched
    rows = json.loads(ws.ok("delivery", "list", "--json"))
    assert [d["due_at"][:16] for d in rows if d["post_id"] == taken] == [f"{day} 10:00"]
