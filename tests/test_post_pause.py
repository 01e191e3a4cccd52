"""Pausing and resuming posts from the command line (issue 16, docs/delivery.md §18): all or
nothing with every refusal listed, audited, shown by `post show` and `post list`, and a paused
post's deliveries are not claimed until it is resumed (the claim itself, on either backend)."""

from __future__ import annotations

import json
from datetime import timedelta

from conftest import Workspace
from kepubot.app import App
from kepubot.config import load_config
from kepubot.timeutil import utcnow


def approved_post(ws: Workspace, *channels: str, user: str = "zhang") -> int:
    args = [a for c in channels or ("news-feed",) for a in ("--channel", c)]
    post_id = ws.add_post(*args, user=user)
    ws.ok("post", "submit", str(post_id), user=user)
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


def shown(ws: Workspace, post_id: int) -> dict:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))


def audit_actions(ws: Workspace, post_id: int) -> list[str]:
    app = App(load_config(ws.config))
    try:
        return [r.action for r in app.store.audit.rows_for_post(post_id)]
    finally:
        app.close()


def test_pause_and_resume_several_posts_audited_and_shown(workspace: Workspace) -> None:
    ws = workspace
    first, second = approved_post(ws), approved_post(ws, user="chen")
    out = ws.ok("post", "pause", str(first), str(second), "--reason", "等待专家复核", user="ops")
    assert out.strip().startswith(f"paused: {first}, {second}")
    held = shown(ws, first)["paused"]
    assert held["reason"] == "等待专家复核" and held["paused_by"] == "ops"
    assert held["paused_at"]  # in the configured zone, as every shown time
    text = ws.ok("post", "show", str(first), lang="zh")
    assert "已暂停（" not in text and "/ 已暂停 (ops" in text and "等待专家复核" in text
    listed = json.loads(ws.ok("post", "list", "--json"))
    assert {r["id"]: r["paused"] for r in listed} == {first: True, second: True}
    assert "/ 已暂停" in ws.ok("post", "list", lang="zh")
    assert audit_actions(ws, first)[-1] == "post.paused"

    # the author may resume their own post
    assert ws.ok("post", "resume", str(first), user="zhang").strip() == f"resumed: {first}"
    assert shown(ws, first)["paused"] is None and shown(ws, second)["paused"] is not None
    assert audit_actions(ws, first)[-1] == "post.resumed"
    assert ws.ok("post", "resume", str(second), user="li", lang="zh").strip() == (
        f"已恢复：{second}"
    )


def test_every_refusal_is_listed_and_nothing_changes(workspace: Workspace) -> None:
    ws = workspace
    mine = approved_post(ws)
    others = approved_post(ws, user="chen")
    cancelled = ws.add_post("--channel", "news-feed", user="zhang")
    ws.ok("post", "cancel", str(cancelled), user="zhang")
    ws.ok("post", "pause", str(mine), user="zhang")
    # zhang (an editor) may pause their own post, not chen's; a cancelled post and one already
    # paused are refused, and so is a post that does not exist: each on its own line
    err = ws.refused("post", "pause", str(mine), str(others), str(cancelled), "999", user="zhang")
    lines = err.strip().splitlines()
    assert lines == [
        f"error: post {mine} is already paused (by zhang)",
        f"error: post {others} was written by chen; only its author, a reviewer or an operator"
        " pauses it",
        f"error: post {cancelled} is cancelled; there is nothing to pause",
        "error: post 999 does not exist; see `kepubot post list`",
    ], err
    err = ws.refused("post", "resume", str(mine), str(others), user="li")
    assert err.strip() == f"error: post {others} is not paused"
    # in Chinese (the default), one error: line each
    err = ws.refused("post", "resume", str(others), user="zhang", lang="zh")
    assert err.strip() == (
        f"error: 稿件 {others} 由 chen 撰写：只有作者、审核员或运维人员可以恢复它的发布"
    )
    # a manager (neither schedules nor cancels) may not
    ws.refused("post", "pause", str(others), user="boss", contains="pauses it")
    # no id at all is a usage error
    assert ws.run("post", "pause", user="ops").exit_code == 2


def test_a_published_post_has_nothing_to_pause(workspace: Workspace) -> None:
    ws = workspace
    post_id = approved_post(ws)
    ws.ok("run", "--once", user="ops")  # the feed publishes it
    assert {d["state"] for d in shown(ws, post_id)["deliveries"]} == {"published"}
    ws.refused("post", "pause", str(post_id), user="ops", contains="has nothing left to send")


def test_the_claim_skips_a_paused_post_until_it_is_resumed(workspace: Workspace) -> None:
    """The claim query itself: the paused post's due delivery is passed over (another post's
    goes), and is claimed once resumed."""
    ws = workspace
    paused = approved_post(ws)
    other = approved_post(ws, user="chen")
    ws.ok("post", "pause", str(paused), user="ops")
    app = App(load_config(ws.config))
    try:
        later = utcnow() + timedelta(hours=1)  # both are due
        assert app.store.wakeup.anything_claimable(later)
        got = app.store.deliveries.claim_next(worker="t", now=later, lease_seconds=60)
        assert got is not None and got.post_id == other
        app.store.deliveries.release_claim(delivery=got, worker="t", now=later)
        again = app.store.deliveries.claim_next(
            worker="t", now=later, lease_seconds=60, exclude_channels=[]
        )
        assert again is not None and again.post_id == other
        app.store.deliveries.release_claim(delivery=again, worker="t", now=later)
    finally:
        app.close()
    ws.ok("post", "pause", str(other), user="ops")
    app = App(load_config(ws.config))
    try:
        later = utcnow() + timedelta(hours=1)
        assert not app.store.wakeup.anything_claimable(later)
        assert app.store.deliveries.claim_next(worker="t", now=later, lease_seconds=60) is None
    finally:
        app.close()
    ws.ok("post", "resume", str(paused), user="ops")
    app = App(load_config(ws.config))
    try:
        later = utcnow() + timedelta(hours=1)
        got = app.store.deliveries.claim_next(worker="t", now=later, lease_seconds=60)
        assert got is not None and got.post_id == paused
    finally:
        app.close()


def test_status_lists_paused_posts_and_the_watchdog_says_why_they_wait(
    workspace: Workspace,
) -> None:
    from kepubot.bot import watchdog
    from kepubot.bot.dispatch import Engine

    ws = workspace
    post_id = approved_post(ws)
    ws.ok("post", "pause", str(post_id), "--reason", "等待专家复核", user="ops")
    data = json.loads(ws.ok("status", "--json"))
    assert [(p["post_id"], p["paused_by"], p["reason"]) for p in data["paused_posts"]] == [
        (post_id, "ops", "等待专家复核")
    ]
    assert f"paused post {post_id} by ops at " in ws.ok("status")
    assert f"已暂停稿件 {post_id}：由 ops 于 " in ws.ok("status", lang="zh")
    # overdue while paused: still reported (nothing is lost silently), saying why it waits
    app = App(load_config(ws.config))
    later = utcnow() + timedelta(days=1)
    engine = Engine(app, worker="w", clock=lambda: later)
    try:
        lines = watchdog.check(engine)
    finally:
        engine.close()
        app.close()
    assert lines and all(f"(post {post_id} on " in line for line in lines), lines
    assert all("overdue since" in line and "(post paused by ops)" in line for line in lines)
