"""The console's compose and edit forms keep the rule of ``post schedule --at`` for a time
given with the post (docs/architecture.md §4.5): a time within ``min_gap_minutes`` of another
post's delivery on a channel, or in a blackout window, is refused with the reason on the page
(in Chinese), and nothing is written."""

from __future__ import annotations

from datetime import timedelta

from test_console import Console, console  # noqa: F401 — the fixture

from conftest import Workspace, snapshot
from kepubot.timeutil import utcnow


def _approved_at(ws: Workspace, when: str) -> int:
    post_id = ws.add_post("--channel", "weibo-main", "--at", when, title="已排期")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


def test_compose_and_edit_refuse_a_time_too_close_to_another_post(console: Console) -> None:  # noqa: F811
    ws = console.workspace
    day = utcnow().astimezone(console.app().tz).date() + timedelta(days=3)
    _approved_at(ws, f"{day} 10:00")
    zhang = console.client("zhang")
    before = snapshot(ws.db)
    fields = {"title": "新稿", "body": "正文", "channels": ["weibo-main", "news-feed"]}
    response = console.save(zhang, "/posts/new", {**fields, "when": "at", "at": f"{day}T10:20"})
    assert response.status_code == 400, response.text
    assert (
        f"时间：在 weibo-main，另一篇稿件定于 {day} 10:00 发布，间隔不足 60 分钟，请换一个时间"
        in response.text
    ), response.text
    assert "news-feed，" not in response.text  # news-feed is free then: only the real reason
    assert snapshot(ws.db) == before

    # the edit form: the words of `post schedule` for the post
    mine = ws.add_post("--channel", "weibo-main", "--at", f"{day} 15:00", title="我的稿")
    before = snapshot(ws.db)
    response = console.save(
        zhang,
        f"/posts/{mine}/edit",
        {**fields, "title": "我的稿", "when": "at", "at": f"{day}T09:30"},
    )
    assert response.status_code == 400, response.text
    assert (
        f"稿件 {mine} 在 weibo-main：另一篇稿件定于 {day} 10:00 发布，间隔不足 60 分钟"
        in response.text
    ), response.text
    assert snapshot(ws.db) == before
    # a time a full gap away is saved
    saved = console.save(zhang, "/posts/new", {**fields, "when": "at", "at": f"{day}T11:00"})
    assert saved.status_code in (302, 303), saved.text
