"""The editorial workflow driven through the command line against a real database file."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from backends import connect_db

from conftest import SAMPLES, Workspace


def post_state(ws: Workspace, post_id: int) -> dict:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))


def test_three_levels_to_approved_with_deliveries_queued(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post(
        "--channel", "weibo-main", "--channel", "wechat-main", "--channel", "news-feed"
    )
    assert post_state(ws, post_id)["state"] == "draft"

    ws.ok("post", "submit", str(post_id), user="zhang")
    shown = post_state(ws, post_id)
    assert (shown["state"], shown["review_level"]) == ("in_review", 1)

    ws.ok("post", "approve", str(post_id), "--comment", "事实无误", user="li")
    assert post_state(ws, post_id)["review_level"] == 2
    ws.ok("post", "approve", str(post_id), user="wang")
    assert post_state(ws, post_id)["review_level"] == 3
    out = ws.ok("post", "approve", str(post_id), user="zhao")
    assert "approved" in out

    shown = post_state(ws, post_id)
    assert shown["state"] == "approved"
    assert shown["approved_hash"] == shown["content_hash"]
    assert [r["level_name"] for r in shown["reviews"]] == ["初审", "复审", "终审"]
    assert [r["reviewer"] for r in shown["reviews"]] == ["li", "wang", "zhao"]
    assert sorted((d["channel"], d["state"]) for d in shown["deliveries"]) == [
        ("news-feed", "queued"),
        ("wechat-main", "queued"),
        ("weibo-main", "queued"),
    ]
    listed = json.loads(ws.ok("delivery", "list", "--state", "queued", "--json"))
    assert {d["post_id"] for d in listed} == {post_id} and len(listed) == 3

    history = json.loads(ws.ok("audit", "--post", str(post_id), "--json"))
    actions = [row["action"] for row in history]
    assert actions[:5] == [
        "post.created",
        "post.submitted",
        "post.approved_level",
        "post.approved_level",
        "post.approved",
    ]
    assert actions.count("delivery.queued") == 3
    assert "audit chain intact" in ws.ok("audit", "verify")


def test_single_level_default_and_rejection_round_trip(workspace: Workspace) -> None:
    ws = workspace
    config = ws.config.read_text(encoding="utf-8").replace(
        'levels = ["初审", "复审", "终审"]\n', ""
    )
    ws.config.write_text(config, encoding="utf-8")
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(post_id), user="zhang")
    ws.ok("post", "reject", str(post_id), "--reason", "数据来源不清", user="li")
    shown = post_state(ws, post_id)
    assert shown["state"] == "rejected"
    assert shown["reviews"][-1]["comment"] == "数据来源不清"
    ws.ok("post", "edit", str(post_id), "--summary", "补充了数据来源。", user="zhang")
    ws.ok("post", "submit", str(post_id), user="zhang")
    # One level only: the first approval is final. The reviewer who rejected may approve now.
    ws.ok("post", "approve", str(post_id), user="li")
    assert post_state(ws, post_id)["state"] == "approved"


def test_edit_after_approval_goes_back_to_review_and_holds_deliveries(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    approved = post_state(ws, post_id)
    ws.ok("post", "edit", str(post_id), "--title", "勤洗手：七步洗手法", user="zhang")
    edited = post_state(ws, post_id)
    assert edited["state"] == "in_review" and edited["review_level"] == 1
    assert edited["approved_hash"] is None
    assert edited["content_hash"] != approved["content_hash"]
    assert {d["state"] for d in edited["deliveries"]} == {"pending"}
    # The same reviewers approve the same levels again; the new content hash is pinned.
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    again = post_state(ws, post_id)
    assert again["state"] == "approved" and again["approved_hash"] == edited["content_hash"]
    assert {d["state"] for d in again["deliveries"]} == {"queued"}
    assert len(again["deliveries"]) == 2  # still one per channel


def test_batch_approve_is_all_or_nothing_and_lists_each_refusal(workspace: Workspace) -> None:
    ws = workspace
    a = ws.add_post("--channel", "news-feed")
    b = ws.add_post("--channel", "news-feed")
    c = ws.add_post("--channel", "news-feed", user="chen")
    ws.ok("post", "submit", str(a), str(b), user="zhang")
    ws.ok("post", "submit", str(c), user="chen")
    # d is still a draft: approving it is refused, so a, b and c must stay untouched.
    d = ws.add_post("--channel", "news-feed")
    err = ws.refused("post", "approve", str(a), str(b), str(d), "999", user="li")
    assert f"post {d} is draft" in err
    assert "post 999 does not exist" in err
    assert len(err.strip().splitlines()) == 2
    ws.ok("post", "approve", str(a), str(b), str(c), user="li")
    assert {post_state(ws, i)["review_level"] for i in (a, b, c)} == {2}


def test_schedule_at_local_time_and_next_slot(workspace: Workspace) -> None:
    ws = workspace
    tz = ZoneInfo("Asia/Shanghai")
    when = (datetime.now(tz) + timedelta(days=2)).replace(
        hour=9, minute=15, second=0, microsecond=0
    )
    post_id = ws.add_post("--channel", "news-feed", "--at", when.strftime("%Y-%m-%d %H:%M"))
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    conn = connect_db(ws.db)
    due = conn.execute("SELECT due_at FROM deliveries WHERE post_id = ?", (post_id,)).fetchone()[0]
    assert due == when.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    # Two posts on weibo-main's next slots: different slots from posting_times, at least the gap apart.
    first = ws.add_post("--channel", "weibo-main", "--next-slot")
    second = ws.add_post("--channel", "weibo-main", "--next-slot", title="口罩怎么选、怎么戴？")
    ws.ok("post", "submit", str(first), str(second), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(first), str(second), user=reviewer)
    rows = conn.execute(
        "SELECT due_at FROM deliveries WHERE post_id IN (?, ?) ORDER BY due_at", (first, second)
    ).fetchall()
    slots = [
        datetime.strptime(r[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=ZoneInfo("UTC"))
        for r in rows
    ]
    local = [s.astimezone(tz).strftime("%H:%M") for s in slots]
    assert all(t in ("08:30", "12:00", "20:00") for t in local)
    assert slots[1] - slots[0] >= timedelta(minutes=60)
    assert slots[0] > datetime.now(ZoneInfo("UTC"))

    # Rescheduling an approved post moves its queued delivery.
    later = when + timedelta(days=1)
    ws.ok("post", "schedule", str(post_id), "--at", later.isoformat(), user="zhang")
    due = conn.execute("SELECT due_at FROM deliveries WHERE post_id = ?", (post_id,)).fetchone()[0]
    assert due == later.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    conn.close()


def test_cancel_cancels_waiting_deliveries(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    ws.ok("post", "cancel", str(post_id), user="zhang")
    shown = post_state(ws, post_id)
    assert shown["state"] == "cancelled"
    assert {d["state"] for d in shown["deliveries"]} == {"cancelled"}
    ws.refused("post", "cancel", str(post_id), user="zhang", contains="already cancelled")


def test_import_samples_markdown_and_csv(workspace: Workspace) -> None:
    ws = workspace
    out = ws.ok("post", "import", str(SAMPLES / "posts"), "--json", user="zhang")
    ids = json.loads(out)["ids"]
    assert len(ids) == 13
    # the CSV holds the same 13 posts: refused as duplicates unless asked for
    err = ws.refused("post", "import", str(SAMPLES / "posts.csv"), user="zhang")
    assert len(err.strip().splitlines()) == 13 and "the same title and body as post" in err
    out = ws.ok(
        "post", "import", str(SAMPLES / "posts.csv"), "--allow-duplicates", "--json", user="zhang"
    )
    assert len(json.loads(out)["ids"]) == 13
    listed = json.loads(ws.ok("post", "list", "--limit", "100", "--json"))
    assert len(listed) == 26
    video_posts = json.loads(ws.ok("post", "list", "--channel", "douyin-main", "--json"))
    assert len(video_posts) == 2  # the short-video sample, once from each source
    first = post_state(ws, ids[0])
    assert first["title"] == "勤洗手：七步洗手法的科学依据"
    assert {m["kind"] for m in first["media"]} == {"image", "cover"}
    # Every sample passes the checks of its channels and the sensitive-word list.
    ws.ok("post", "submit", *map(str, ids), user="zhang")


def test_media_is_copied_so_the_source_can_change(workspace: Workspace, tmp_path: Path) -> None:
    ws = workspace
    source = tmp_path / "picture.png"
    source.write_bytes((SAMPLES / "media" / "mask.png").read_bytes())
    out = ws.ok(
        "post",
        "add",
        "--title",
        "口罩",
        "--body",
        "正文",
        "--image",
        str(source),
        "--channel",
        "news-feed",
        "--json",
        user="zhang",
    )
    post_id = json.loads(out)["id"]
    stored = post_state(ws, post_id)["media"][0]
    source.write_bytes(b"\x89PNG\r\n\x1a\n changed later")
    copy = ws.root / "media" / stored["path"]
    assert copy.read_bytes() == (SAMPLES / "media" / "mask.png").read_bytes()
    assert stored["sha256"] in stored["path"]


def test_preview_shows_what_each_channel_sends(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "weibo-main", "--channel", "wechat-main")
    text = ws.ok("post", "preview", str(post_id), lang=None)  # the config's zh
    assert "== weibo-main (weibo) ==" in text and "== wechat-main (wechat) ==" in text
    assert "https://kepu.example.org/articles/0001" in text
    assert "问题: 无" in text
    data = json.loads(ws.ok("post", "preview", str(post_id), "--channel", "weibo-main", "--json"))
    assert data[0]["rendered"]["text"].startswith("【勤洗手")
    english = ws.ok("--lang", "en", "post", "preview", str(post_id))
    assert "problems: none" in english


@pytest.mark.sqlite_only  # init writes a SQLite config and file, which is what it checks
def test_init_then_add_in_a_fresh_folder(tmp_path: Path) -> None:
    """The real console script, as a subprocess: init, add, list."""
    exe = [sys.executable, "-m", "kepubot", "--lang", "en"]
    done = subprocess.run([*exe, "init"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "kepubot.toml").exists() and (tmp_path / "kepubot.db").exists()
    assert oct((tmp_path / "kepubot.db").stat().st_mode & 0o777) == "0o600"
    added = subprocess.run(
        [
            *exe,
            "--as",
            "zhang",
            "post",
            "add",
            "--title",
            "通风",
            "--body",
            "每天开窗。",
            "--channel",
            "news-feed",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert added.returncode == 0 and added.stdout.strip() == "1", added.stderr
    again = subprocess.run(
        [*exe, "init"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_list_filters_combine(workspace: Workspace) -> None:
    ws = workspace
    a = ws.add_post("--channel", "news-feed")
    b = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    c = ws.add_post("--channel", "weibo-main", user="chen")
    ws.ok("post", "submit", str(b), user="zhang")
    ws.ok("post", "submit", str(c), user="chen")

    def ids(*args: str) -> list[int]:
        return [p["id"] for p in json.loads(ws.ok("post", "list", *args, "--json"))]

    assert ids("--state", "in_review", "--channel", "weibo-main") == [c, b]
    assert ids("--state", "in_review", "--channel", "news-feed") == [b]
    assert ids("--state", "draft", "--channel", "news-feed") == [a]
    assert ids("--state", "in_review", "--author", "zhang") == [b]
    assert ids("--channel", "weibo-main", "--author", "chen") == [c]
    # the channel index follows state changes
    ws.ok("post", "reject", str(b), "--reason", "再核实", user="li")
    assert ids("--state", "rejected", "--channel", "weibo-main") == [b]
    assert ids("--state", "in_review", "--channel", "news-feed") == []


def test_scheduling_after_an_edit_dropped_a_channel(workspace: Workspace) -> None:
    """Found by the stateful model: the held delivery of a channel an edit dropped made
    `post schedule` fail with a KeyError. It moves with the others, and the next approval
    cancels it."""
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    ws.ok("post", "edit", str(post_id), "--channel", "news-feed", user="zhang")
    ws.ok("post", "schedule", str(post_id), "--at", "2099-01-01 08:00", user="zhang")
    held = {d["channel"]: d for d in json.loads(ws.ok("delivery", "list", "--json"))}
    assert held["weibo-main"]["state"] == "pending" and held["news-feed"]["state"] == "pending"
    assert held["weibo-main"]["due_at"].startswith("2099-01-01 08:00")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    after = {d["channel"]: d["state"] for d in json.loads(ws.ok("delivery", "list", "--json"))}
    assert after == {"news-feed": "queued", "weibo-main": "cancelled"}
