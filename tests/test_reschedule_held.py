"""Rescheduling keeps the min gap on every delivery that moves (docs/architecture.md §4.5).

An approved post edited back to review holds its queued deliveries (``pending``,
``hold_for_review``), also the one on a channel the edit dropped: that held delivery waits for
the next approval (which cancels it, or queues it again if the channel comes back) and moves
with ``post schedule`` like the others. An explicit time is refused for it as for the post's
own channels, with the same reason."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from conftest import Workspace
from kepubot.timeutil import utcnow


def _approve(ws: Workspace, post_id: int) -> None:
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)


def _deliveries(ws: Workspace, post_id: int) -> dict[str, tuple[str, str]]:
    rows = json.loads(ws.ok("delivery", "list", "--json"))
    return {d["channel"]: (d["state"], d["due_at"]) for d in rows if d["post_id"] == post_id}


def _local(ws: Workspace, when: datetime) -> str:
    from zoneinfo import ZoneInfo

    return when.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m-%d %H:%M")


def _other_post(ws: Workspace, when: datetime) -> int:
    """Another post, approved, due on weibo-main at ``when``."""
    other = ws.add_post(
        "--channel", "weibo-main", "--at", _local(ws, when), title="流感季节如何保护自己"
    )
    _approve(ws, other)
    return other


def _refused_near(ws: Workspace, post_id: int, other_due: datetime) -> None:
    """``post schedule --at`` 20 minutes before ``other_due`` (min_gap_minutes 60) is
    refused with the reason a post's own channel gets."""
    close = _local(ws, other_due - timedelta(minutes=20))
    err = ws.refused("post", "schedule", str(post_id), "--at", close, user="zhang")
    assert (
        f"error: post {post_id} on weibo-main: another post is due at {_local(ws, other_due)},"
        " within min_gap_minutes (60), pick another time"
    ) in err, err


def test_a_held_delivery_on_a_dropped_channel_keeps_the_min_gap(workspace: Workspace) -> None:
    ws = workspace
    base = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    # post 1 goes to weibo-main and the feed, is approved, then loses weibo-main in an edit:
    # its weibo-main delivery is held (pending) on a channel the post no longer targets
    held = ws.add_post(
        "--channel", "weibo-main", "--channel", "news-feed", "--at", _local(ws, base)
    )
    _approve(ws, held)
    ws.ok("post", "edit", str(held), "--channel", "news-feed", user="zhang")
    before = _deliveries(ws, held)
    assert before["weibo-main"][0] == "pending" and before["news-feed"][0] == "pending"
    # post 2 is due on weibo-main three hours later
    _other_post(ws, base + timedelta(hours=3))
    # 20 minutes before post 2 on weibo-main: the held delivery would move there, so the
    # time is refused as `post schedule` refuses it for a target channel
    _refused_near(ws, held, base + timedelta(hours=3))
    assert _deliveries(ws, held) == before
    # a time clear of post 2 moves both held deliveries
    free = base + timedelta(hours=1)
    ws.ok("post", "schedule", str(held), "--at", _local(ws, free), user="zhang")
    after = _deliveries(ws, held)
    assert {name: state for name, (state, _) in after.items()} == {
        "weibo-main": "pending",
        "news-feed": "pending",
    }
    assert after["weibo-main"][1] == after["news-feed"][1] != before["weibo-main"][1]


def test_the_same_time_is_refused_for_a_target_channel(workspace: Workspace) -> None:
    """The reference: the refusal a post's own channel gets, which the held one must match."""
    ws = workspace
    base = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    mine = ws.add_post("--channel", "weibo-main", "--at", _local(ws, base))
    _other_post(ws, base + timedelta(hours=3))
    _refused_near(ws, mine, base + timedelta(hours=3))
