"""Retraction, corrections and the emergency stop through the command line (issue 13 §6, §7):
a real database file, the feed channel writing real files, `run --once` as the daemon."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from backends import connect_db

from conftest import Workspace


def _approved(ws: Workspace, *channels: str) -> int:
    extra: list[str] = []
    for channel in channels:
        extra += ["--channel", channel]
    post_id = ws.add_post(*extra)
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


def _deliveries(ws: Workspace, post_id: int) -> dict[str, dict]:
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    return {d["channel"]: d for d in shown["deliveries"]}


def _feed_ids(ws: Workspace) -> list[int]:
    state = json.loads((ws.root / "public/feeds/.kepubot-feed.json").read_text(encoding="utf-8"))
    return [i["post_id"] for i in state["items"]]


def test_cancel_of_a_published_post_is_refused_and_retract_takes_it_out_of_the_feeds(
    workspace: Workspace,
) -> None:
    ws = workspace
    post_id = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "published"
    feeds = ws.root / "public/feeds"
    assert post_id in _feed_ids(ws)
    assert f"/kepubot/posts/{post_id}" in (feeds / "feed.xml").read_text(encoding="utf-8")

    ws.refused("post", "cancel", str(post_id), user="zhang", contains="post retract")
    # only the final level's reviewers (or an admin) retract; a reason is required
    ws.refused("post", "retract", str(post_id), "--reason", "数据有误", user="zhang")
    assert ws.run("post", "retract", str(post_id), user="zhao").exit_code == 2

    out = ws.ok("post", "retract", str(post_id), "--reason", "数据有误", user="zhao")
    assert "news-feed" in out
    shown = _deliveries(ws, post_id)["news-feed"]
    assert shown["kind"] == "retract" and shown["state"] == "queued"
    # asking twice is refused and changes nothing
    ws.refused("post", "retract", str(post_id), "--reason", "again", user="zhao")

    listed = json.loads(ws.ok("delivery", "list", "--json"))
    assert [(d["kind"], d["shown_state"]) for d in listed] == [("retract", "retracting")]
    assert "撤回中" in ws.ok("delivery", "list", lang=None)  # the config's zh
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "retracted"
    assert "已撤回" in ws.ok("delivery", "list", "--state", "retracted", lang=None)
    assert post_id not in _feed_ids(ws)
    item = f"/kepubot/posts/{post_id}"
    for name in ("feed.xml", "atom.xml", "feed.json"):
        assert item not in (feeds / name).read_text(encoding="utf-8"), name
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    assert shown["retraction"] == "retracted"
    actions = [r["action"] for r in json.loads(ws.ok("audit", "--post", str(post_id), "--json"))]
    assert "post.retract" in actions and "delivery.retracted" in actions
    conn = connect_db(ws.db)
    attempts = conn.execute(
        "SELECT outcome FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE d.post_id = ? ORDER BY a.number",
        (post_id,),
    ).fetchall()
    assert [a[0] for a in attempts] == ["published", "retracted"]


def test_pause_stops_claims_status_shows_it_and_resume_lets_them_go(workspace: Workspace) -> None:
    ws = workspace
    ws.refused("pause", "--reason", "全国哀悼日", user="zhang")  # operator or admin only
    ws.refused("pause", "--channel", "nope", "--reason", "x", user="ops", contains="nope")
    # lang=None: the config's zh, in which the pause's alert is worded too
    assert "全部渠道" in ws.ok("pause", "--reason", "全国哀悼日", user="ops", lang=None)
    post_id = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "queued"
    status = ws.ok("status")
    assert "全国哀悼日" in status and "ops" in status
    data = json.loads(ws.ok("status", "--json"))
    assert data["paused"][0]["scope"] == "*"

    ws.ok("resume", user="ops", lang=None)
    ws.ok("pause", "--channel", "news-feed", "--reason", "核查中", user="ops", lang=None)
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "queued"
    ws.refused("resume", "--channel", "weibo-main", user="ops", contains="not paused")
    ws.ok("resume", "--channel", "news-feed", user="ops", lang=None)
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "published"
    actions = [r["action"] for r in json.loads(ws.ok("audit", "--json", "--limit", "200"))]
    assert actions.count("channels.paused") == 2 and actions.count("channels.resumed") == 2
    # each pause and each resume was alerted (kept in the alerts table with its message)
    from kepubot.app import App
    from kepubot.config import load_config

    app = App(load_config(ws.config))
    try:
        alerts = [r[0] for r in app.store.conn().execute("SELECT message FROM alerts ORDER BY id")]
    finally:
        app.close()
    assert len(alerts) == 4, alerts
    assert "已暂停发布" in alerts[0] and "全国哀悼日" in alerts[0] and "已恢复发布" in alerts[1]


def test_blackout_date_holds_publishing_until_the_day_ends(workspace: Workspace) -> None:
    ws = workspace
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    original = ws.config.read_text(encoding="utf-8")
    ws.config.write_text(
        original.replace("[review]", f'[schedule]\nblackout_dates = ["{today}"]\n\n[review]'),
        encoding="utf-8",
    )
    post_id = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "queued"  # waits, nothing lost
    ws.config.write_text(original, encoding="utf-8")  # the day is over
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "published"


def test_a_bad_blackout_date_is_one_error_line(workspace: Workspace) -> None:
    ws = workspace
    text = ws.config.read_text(encoding="utf-8")
    ws.config.write_text(
        text.replace("[review]", '[schedule]\nblackout_dates = ["2026-13-01"]\n\n[review]'),
        encoding="utf-8",
    )
    err = ws.refused("status", contains="2026-13-01")
    assert "blackout" in err


def test_next_slot_skips_blackout_dates(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from kepubot.channels.base import ChannelSettings
    from kepubot.queue.store import Store
    from kepubot.services.schedule import next_slot, slot_refusals

    tz = ZoneInfo("Asia/Shanghai")
    store = Store(tmp_path / "k.db")
    now = datetime(2026, 4, 3, 10, 0, tzinfo=tz).astimezone(UTC)
    settings = ChannelSettings(
        type="feed", posting_times=["08:30", "20:00"], blackout_dates=["2026-04-04"]
    )
    # 20:00 on the 3rd is free; from there the 4th is skipped whole
    first = next_slot(store, channel="c", settings=settings, tz=tz, now=now)
    assert first.astimezone(tz) == datetime(2026, 4, 3, 20, 0, tzinfo=tz)
    later = next_slot(store, channel="c", settings=settings, tz=tz, now=first)
    assert later.astimezone(tz) == datetime(2026, 4, 5, 8, 30, tzinfo=tz)
    # [schedule] blackout_dates come in as `dates`; without fixed times: the next day's midnight
    free = ChannelSettings(type="feed", min_gap_minutes=0)
    asap = next_slot(store, channel="c", settings=free, tz=tz, now=now, dates=[date(2026, 4, 3)])
    assert asap.astimezone(tz) == datetime(2026, 4, 4, 0, 0, tzinfo=tz)
    when = datetime(2026, 4, 4, 9, 0, tzinfo=tz)
    refusals = slot_refusals(store, channel="c", settings=settings, tz=tz, when=when, post_id=None)
    assert any("blackout date" in r for r in refusals)
    store.close()


def test_reports_count_retracted_posts_apart_and_leave_them_out_of_top_lists(
    workspace: Workspace,
) -> None:
    ws = workspace
    kept = _approved(ws, "news-feed")
    ws.add_post("--channel", "news-feed", title="第二篇：口罩的正确戴法")
    gone = kept + 1
    ws.ok("post", "submit", str(gone), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(gone), user=reviewer)
    ws.ok("run", "--once", user="ops")
    before = json.loads(ws.ok("report", "--format", "json", user="boss"))
    assert before["totals"]["posts"] == 2 and before["totals"]["retracted"] == 0
    ws.ok("post", "retract", str(gone), "--reason", "数据有误", user="zhao")
    ws.ok("run", "--once", user="ops")
    after = json.loads(ws.ok("report", "--format", "json", user="boss"))
    assert after["totals"]["posts"] == 1 and after["totals"]["retracted"] == 1
    for key in ("top_posts", "top_engagement"):
        assert gone not in [p["post_id"] for p in after[key]], key
    assert kept in [p["post_id"] for p in after["top_posts"]]
    assert "已撤回稿件" in ws.ok("report", user="boss", lang=None)  # the config's zh


def test_correction_is_a_linked_draft_reviewed_like_any_post(workspace: Workspace) -> None:
    ws = workspace
    original = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    # the correction's title and note are written in the config's language (zh)
    correction = int(ws.ok("post", "correct", str(original), user="zhang", lang=None).strip())
    shown = json.loads(ws.ok("post", "show", str(correction), "--json"))
    assert shown["state"] == "draft" and shown["correction_of"] == original
    assert shown["title"].startswith("更正") and "更正" in shown["body"]
    assert shown["channels"] == ["news-feed"]
    assert json.loads(ws.ok("post", "show", str(original), "--json"))["corrections"] == [correction]
    assert f"#{original}" in ws.ok("post", "show", str(correction))
    ws.refused("post", "correct", "999", user="zhang")
    ws.refused("post", "correct", str(original), user="li")  # writing a post needs an editor
    ws.ok("post", "submit", str(correction), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(correction), user=reviewer)
    ws.ok("run", "--once", user="ops")
    state = json.loads(ws.ok("post", "show", str(correction), "--json"))
    assert state["deliveries"][0]["state"] == "published"
    # the feed item of the correction links the original's item
    items = json.loads((ws.root / "public/feeds/feed.json").read_text(encoding="utf-8"))["items"]
    linked = next(i for i in items if i["id"].endswith(f"/kepubot/posts/{correction}"))
    assert "更正" in linked["content_html"]
    assert 'href="https://kepu.example.org/articles/0001"' in linked["content_html"]


def test_a_retraction_days_after_publishing_is_due_when_requested(workspace: Workspace) -> None:
    """Regression: a retraction kept the publication's due time, so the watchdog called every
    retraction of an older post overdue at once."""
    from datetime import timedelta

    from kepubot.app import App
    from kepubot.config import load_config
    from kepubot.queue import deliveries
    from kepubot.services.retraction import retract_post

    ws = workspace
    post_id = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    app = App(load_config(ws.config))
    try:
        later = datetime.now(UTC) + timedelta(days=3)
        retract_post(app, "zhao", post_id, reason="数据有误", now=later)
        # what the watchdog asks a minute later (overdue_minutes 15, stuck_minutes 60)
        look = later + timedelta(minutes=1)
        assert (
            deliveries.needing_a_look(
                app.store.conn(),
                overdue_before=look - timedelta(minutes=15),
                stuck_before=look - timedelta(minutes=60),
            )
            == []
        )
        (row,) = deliveries.for_post(app.store.conn(), post_id)
        assert row.due_at == later.replace(microsecond=row.due_at.microsecond)
    finally:
        app.close()


def test_retract_refusals_are_one_error_line_and_change_nothing(workspace: Workspace) -> None:
    ws = workspace
    draft = ws.add_post("--channel", "news-feed")
    ws.refused("post", "retract", str(draft), "--reason", "x", user="zhao", contains="no published")
    ws.refused("post", "retract", "999", "--reason", "x", user="zhao", contains="999")
    post_id = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    ws.refused(
        "post",
        "retract",
        str(post_id),
        "--reason",
        "x",
        "--channel",
        "nope",
        user="zhao",
        contains="nope",
    )
    ws.refused(
        "post",
        "retract",
        str(post_id),
        "--reason",
        "x",
        "--channel",
        "weibo-main",
        user="zhao",
        contains="no delivery on weibo-main",
    )
    ws.refused("post", "retract", str(post_id), "--reason", "  ", user="zhao", contains="reason")
    ws.refused("resume", user="ops", contains="nothing is paused")
    ws.refused("delivery", "resolve", "1", "--retracted", "--not-retracted", user="ops")
    ws.refused("delivery", "resolve", "1", "--retracted", user="ops", contains="publication")


def test_a_failed_retraction_is_retried_even_after_the_post_was_edited(
    workspace: Workspace,
) -> None:
    """Regression: operator retry asked for the post's current content to be approved, which
    a retraction (taking back what is live) does not need."""
    from kepubot.app import App
    from kepubot.config import load_config
    from kepubot.queue import deliveries

    ws = workspace
    post_id = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    ws.ok("post", "retract", str(post_id), "--reason", "数据有误", user="zhao")
    app = App(load_config(ws.config))
    try:
        (row,) = deliveries.for_post(app.store.conn(), post_id)
        claimed = deliveries.claim_next(
            app.store.conn(), worker="t:1", now=row.due_at, lease_seconds=60
        )
        assert claimed is not None
        deliveries.begin_send(
            app.store.conn(), delivery=claimed, worker="t:1", now=row.due_at, lease_seconds=60
        )
        deliveries.record_failed(
            app.store.conn(),
            delivery=claimed,
            worker="t:1",
            now=row.due_at,
            error_kind="permanent",
            error="refused",
        )
    finally:
        app.close()
    ws.ok("post", "edit", str(post_id), "--summary", "更正后的摘要。", user="zhang")
    assert json.loads(ws.ok("post", "show", str(post_id), "--json"))["state"] != "approved"
    ws.ok("delivery", "retry", str(row.id), user="ops")
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "retracted"


def test_editing_a_post_does_not_hold_its_queued_retraction(workspace: Workspace) -> None:
    """Regression: an edit sent the post back to review and held every queued delivery,
    the queued retraction included, which then waited for an approval it does not need."""
    ws = workspace
    post_id = _approved(ws, "news-feed")
    ws.ok("run", "--once", user="ops")
    ws.ok("post", "retract", str(post_id), "--reason", "数据有误", user="zhao")
    ws.ok("post", "edit", str(post_id), "--summary", "更正后的摘要。", user="zhang")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "queued"
    ws.ok("run", "--once", user="ops")
    assert _deliveries(ws, post_id)["news-feed"]["state"] == "retracted"
