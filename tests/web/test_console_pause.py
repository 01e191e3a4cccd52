"""Pausing posts in the console (issue 16, docs/delivery.md §18): bulk 暂停/恢复 on the posts
list and the review queue, all or none with every refusal listed; single buttons on the post
page; 已暂停 on the post page, the posts list and the calendar."""

from __future__ import annotations

import json
import re

from test_console import Console, _console, approved_post, submitted_post
from test_console_bulk import _flashes

from conftest import Workspace, snapshot


def _paused(ws: Workspace, post_id: int) -> dict | None:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))["paused"]


def _row(page: str, post_id: int) -> str:
    match = re.search(rf'<tr data-post="{post_id}">(.*?)</tr>', page, re.S)
    assert match, post_id
    return match.group(1)


def test_bulk_pause_and_resume_from_the_posts_list(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    first, second = approved_post(ws), approved_post(ws)
    cancelled = ws.add_post("--channel", "news-feed")
    ws.ok("post", "cancel", str(cancelled))
    ops = console.client("ops")
    page = ops.get("/posts").text
    assert '<option value="pause">暂停</option>' in page
    assert '<option value="resume">恢复</option>' in page

    # a cancelled post among the ticked ones: nothing is paused, its refusal is listed
    before = snapshot(ws.db)
    response = console.post(
        ops,
        "/posts/bulk",
        {"bulk_action": "pause", "ids": [first, second, cancelled], "reason": "待核实数据"},
    )
    assert response.status_code == 303
    assert snapshot(ws.db) == before
    flashes = _flashes(ops.get("/posts").text)
    assert "3 篇稿件均未改动：以下每一条都须先解决。" in flashes, flashes
    assert f"稿件 {cancelled} 已撤销：没有可暂停的发布" in flashes, flashes

    console.post(
        ops, "/posts/bulk", {"bulk_action": "pause", "ids": [first, second], "reason": "待核实数据"}
    )
    page = ops.get("/posts").text
    assert any(f.startswith("已暂停 2 篇稿件") for f in _flashes(page)), _flashes(page)
    for post_id in (first, second):
        assert "已暂停" in _row(page, post_id)
        assert _paused(ws, post_id)["reason"] == "待核实数据"
    # the post page: the state, who and why, and the resume button
    shown = ops.get(f"/posts/{first}").text
    assert 'id="post-paused"' in shown and 'id="paused-note"' in shown and "待核实数据" in shown
    assert 'id="resume-post"' in shown and 'id="pause-post"' not in shown
    # the calendar (today: both are due now)
    calendar = ops.get("/calendar").text
    assert f'data-paused="{first}"' in calendar and f'data-paused="{second}"' in calendar

    # resuming one that is not paused refuses the lot
    other = approved_post(ws)
    before = snapshot(ws.db)
    console.post(ops, "/posts/bulk", {"bulk_action": "resume", "ids": [first, other]})
    assert snapshot(ws.db) == before
    assert f"稿件 {other} 没有暂停" in _flashes(ops.get("/posts").text)
    console.post(ops, "/posts/bulk", {"bulk_action": "resume", "ids": [first, second]})
    page = ops.get("/posts").text
    assert any(f.startswith("已恢复 2 篇稿件") for f in _flashes(page)), _flashes(page)
    assert _paused(ws, first) is None and _paused(ws, second) is None
    assert "已暂停" not in _row(page, first)


def test_bulk_pause_from_the_review_queue(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    first, second = submitted_post(ws), submitted_post(ws, "news-feed")
    li = console.client("li")
    queue = li.get("/review").text
    assert '<option value="pause">暂停</option>' in queue
    console.post(
        li, "/posts/bulk", {"bulk_action": "pause", "ids": [first, second], "back": "/review"}
    )
    assert _paused(ws, first)["paused_by"] == "li" and _paused(ws, second) is not None
    # still in review: pausing holds the sending, not the review
    assert json.loads(ws.ok("post", "show", str(first), "--json"))["state"] == "in_review"
    console.post(li, "/posts/bulk", {"bulk_action": "resume", "ids": [first], "back": "/review"})
    assert _paused(ws, first) is None and _paused(ws, second) is not None


def test_single_pause_and_resume_on_the_post_page(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    post_id = approved_post(ws)  # written by zhang
    zhang = console.client("zhang")
    page = zhang.get(f"/posts/{post_id}").text
    assert 'id="pause-post"' in page and 'id="post-paused"' not in page
    console.post(zhang, f"/posts/{post_id}/pause", {"reason": ""})
    page = zhang.get(f"/posts/{post_id}").text
    assert "已暂停发布：在恢复之前不再发送，正在发送的会完成。" in _flashes(page)
    assert 'id="post-paused"' in page and 'id="resume-post"' in page
    # chen, another editor, may neither pause nor resume zhang's post: no button, and refused
    chen = console.client("chen")
    assert 'id="resume-post"' not in chen.get(f"/posts/{post_id}").text
    before = snapshot(ws.db)
    response = console.post(chen, f"/posts/{post_id}/resume", {})
    assert response.status_code in (303, 403), response.status_code
    assert snapshot(ws.db) == before
    console.post(zhang, f"/posts/{post_id}/resume", {})
    page = zhang.get(f"/posts/{post_id}").text
    assert "已恢复发布。" in _flashes(page) and 'id="post-paused"' not in page
    # the audit page words both as sentences
    audit = zhang.get(f"/posts/{post_id}/audit").text
    assert "暂停了稿件的发布" in audit and "恢复了稿件的发布" in audit
