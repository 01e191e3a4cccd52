"""Cancelling a paused post lifts its pause (docs/delivery.md §18): a cancelled post has
nothing left to hold back, so it no longer shows 已暂停 (``post show``, ``post list``,
``kepubot status``), and the lift is audited as the cancel's other changes are."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

from conftest import Workspace
from kepubot.app import App
from kepubot.config import load_config
from kepubot.events import sentence


def test_cancelling_a_paused_post_lifts_its_pause_audited(workspace: Workspace) -> None:
    ws = workspace
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    other = ws.add_post("--channel", "news-feed", title="另一篇")
    ws.ok("post", "pause", str(post_id), str(other), "--reason", "等待专家复核", user="ops")
    assert json.loads(ws.ok("post", "show", str(post_id), "--json"))["paused"] is not None

    ws.ok("post", "cancel", str(post_id), user="zhang")
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    assert shown["state"] == "cancelled" and shown["paused"] is None
    listed = {r["id"]: r["paused"] for r in json.loads(ws.ok("post", "list", "--json"))}
    assert listed == {post_id: False, other: True}  # the other pause is untouched
    assert "已暂停" not in ws.ok("post", "show", str(post_id), lang="zh")
    # nothing to resume now
    err = ws.refused("post", "resume", str(post_id), user="ops")
    assert err.strip() == f"error: post {post_id} is not paused"

    app = App(load_config(ws.config))
    try:
        rows = app.store.audit.rows_for_post(post_id)
    finally:
        app.close()
    actions = [r.action for r in rows]
    # after the deliveries' cancellations and the post's: the pause, by who cancelled it
    assert actions[-3:] == ["delivery.cancelled", "post.cancelled", "post.resumed"], actions
    lifted = rows[-1]
    assert lifted.actor == "zhang" and lifted.detail["cause"] == "cancelled"
    assert lifted.detail["paused_at"]
    # the console's audit page does not call it a resume
    tz = ZoneInfo("Asia/Shanghai")
    assert "lifted its pause by withdrawing it" in sentence(
        lifted, language="en", tz=tz, name_of=str
    )
    assert "撤销稿件时解除了暂停" in sentence(lifted, language="zh", tz=tz, name_of=str)
