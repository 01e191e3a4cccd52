"""Bulk work in the console (issue 16): ticked posts on the posts list and the review queue are
submitted, approved, rejected, scheduled or cancelled all or none, with every refusal listed;
each approval stays bound to the content hash and level the list showed. Flash messages say
what happened."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from test_console import Console, _console, submitted_post

from conftest import Workspace, snapshot
from kepubot.timeutil import utcnow


def _state(ws: Workspace, post_id: int) -> tuple[str, int]:
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    return shown["state"], shown["review_level"]


def _flashes(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m) for m in re.findall(r'class="flash[^"]*"[^>]*>(.*?)</', page)]


def _row_seen(page: str, post_id: int) -> dict[str, str]:
    """The hidden hash and level inputs the page carries for one row's checkbox."""
    found = dict(re.findall(rf'name="((?:hash|level)_{post_id})" value="([^"]*)"', page))
    assert set(found) == {f"hash_{post_id}", f"level_{post_id}"}, found
    return found


def test_bulk_approve_from_the_review_queue_carries_each_hash_and_level(
    workspace: Workspace,
) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    first, second = submitted_post(ws), submitted_post(ws, "news-feed")
    li = console.client("li")
    queue = li.get("/review").text
    assert 'id="bulk-form"' in queue
    assert 'name="at"' not in queue  # the queue's bulk actions are approve and reject only
    assert f'name="ids" value="{first}" form="bulk-form"' in queue
    data = {"bulk_action": "approve", "ids": [first, second], "back": "/review"}
    data.update(_row_seen(queue, first))
    data.update(_row_seen(queue, second))
    response = console.post(li, "/posts/bulk", data)
    assert response.status_code == 303 and response.headers["Location"] == "/review"
    assert _state(ws, first) == ("in_review", 2) and _state(ws, second) == ("in_review", 2)
    shown = li.get("/review").text
    assert any(f"#{first}" in f and "已通过" in f for f in _flashes(shown)), _flashes(shown)


def test_bulk_approve_is_all_or_nothing_and_lists_every_refusal(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    first, second = submitted_post(ws), submitted_post(ws, "news-feed")
    li = console.client("li")
    queue = li.get("/review").text
    seen = {**_row_seen(queue, first), **_row_seen(queue, second)}
    # the author edits the second post after li opened the queue: its hash no longer holds
    ws.ok("post", "edit", str(second), "--title", "改过的标题", user="zhang")
    if _state(ws, second)[0] != "in_review":  # an edit in review may send it back to draft
        ws.ok("post", "submit", str(second), user="zhang")
    own = ws.add_post("--channel", "news-feed", user="liu")  # a draft: nothing to approve
    before = snapshot(ws.db)
    response = console.post(
        li,
        "/posts/bulk",
        {"bulk_action": "approve", "ids": [first, second, own], "back": "/review", **seen},
    )
    assert response.status_code == 303
    assert snapshot(ws.db) == before  # nothing changed, not even the first post
    flashes = _flashes(li.get("/review").text)
    assert any("3 篇稿件均未改动" in f for f in flashes), flashes
    assert any(str(second) in f for f in flashes[1:]), flashes
    assert any(str(own) in f for f in flashes[1:]), flashes
    assert _state(ws, first) == ("in_review", 1)


def test_bulk_reject_takes_one_reason_for_all_and_needs_it(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    first, second = submitted_post(ws), submitted_post(ws, "news-feed")
    li = console.client("li")
    before = snapshot(ws.db)
    data = {"bulk_action": "reject", "ids": [first, second], "back": "/review"}
    assert console.post(li, "/posts/bulk", {**data, "reason": " "}).status_code == 303
    assert snapshot(ws.db) == before
    assert console.post(li, "/posts/bulk", {**data, "reason": "来源缺失"}).status_code == 303
    for post_id in (first, second):
        shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
        assert shown["state"] == "rejected"
        assert "来源缺失" in json.dumps(shown, ensure_ascii=False)


def test_bulk_submit_schedule_and_cancel_from_the_posts_list(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    drafts = [ws.add_post("--channel", "news-feed") for _ in range(2)]
    zhang = console.client("zhang")
    page = zhang.get("/posts").text
    assert all(f'name="ids" value="{d}" form="bulk-form"' in page for d in drafts)
    tomorrow = (utcnow().astimezone(console.app().tz) + timedelta(days=1)).strftime(
        "%Y-%m-%dT09:30"
    )
    response = console.post(
        zhang,
        "/posts/bulk",
        {"bulk_action": "schedule", "ids": drafts, "when": "at", "at": tomorrow},
    )
    assert response.status_code == 303
    for post_id in drafts:
        assert tomorrow.replace("T", " ") in ws.ok("post", "show", str(post_id))
    assert (
        console.post(zhang, "/posts/bulk", {"bulk_action": "submit", "ids": drafts}).status_code
        == 303
    )
    assert [_state(ws, d)[0] for d in drafts] == ["in_review", "in_review"]
    # someone else's post among the ticked ones: nothing is cancelled
    other = ws.add_post("--channel", "news-feed", user="liu")
    before = snapshot(ws.db)
    console.post(zhang, "/posts/bulk", {"bulk_action": "cancel", "ids": [*drafts, other]})
    assert snapshot(ws.db) == before
    flashes = _flashes(zhang.get("/posts").text)
    assert any(f"post {other}" in f or f"稿件 {other}" in f or f"#{other}" in f for f in flashes), (
        flashes
    )
    console.post(zhang, "/posts/bulk", {"bulk_action": "cancel", "ids": drafts})
    assert [_state(ws, d)[0] for d in drafts] == ["cancelled", "cancelled"]


def test_bulk_refuses_an_unknown_action_and_no_ticks(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    zhang = console.client("zhang")
    assert (
        console.post(zhang, "/posts/bulk", {"bulk_action": "explode", "ids": [1]}).status_code
        == 400
    )
    no_ticks = console.post(zhang, "/posts/bulk", {"bulk_action": "submit"})
    assert no_ticks.status_code == 400 and "请至少勾选一篇稿件" in no_ticks.text
    # without the CSRF token nothing happens
    assert zhang.post("/posts/bulk", data={"bulk_action": "submit", "ids": [1]}).status_code == 400


def test_single_actions_say_what_happened(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed")
    zhang = console.client("zhang")
    console.post(zhang, f"/posts/{post_id}/submit", {})
    assert "已提交初审。" in _flashes(zhang.get(f"/posts/{post_id}").text)
    li = console.client("li")
    console.post(li, f"/posts/{post_id}/approve", {})
    assert "已通过初审，进入复审。" in _flashes(li.get(f"/posts/{post_id}").text)
    for reviewer, level in (("wang", "复审"), ("zhao", "终审")):
        client = console.client(reviewer)
        console.post(client, f"/posts/{post_id}/approve", {})
        flashes = _flashes(client.get(f"/posts/{post_id}").text)
        assert any(f.startswith(f"已通过{level}") for f in flashes), flashes
    assert "完成。" not in zhang.get(f"/posts/{post_id}").text
