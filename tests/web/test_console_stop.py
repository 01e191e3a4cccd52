"""The console's emergency stop (banner on every page, stop and resume buttons) and the retract
action behind its confirmation (issue 13 §6, §7), through the real Flask app and database."""

from __future__ import annotations

import json

from test_console import Console, _console

from conftest import Workspace


def _published_feed_post(ws: Workspace) -> int:
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    ws.ok("run", "--once", user="ops")
    return post_id


def _states(ws: Workspace, post_id: int) -> dict[str, tuple[str, str]]:
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    return {d["channel"]: (d["kind"], d["state"]) for d in shown["deliveries"]}


def test_stop_button_banner_on_every_page_and_resume(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    ops = console.client("ops")
    editor = console.client("zhang")
    page = ops.get("/posts").text
    assert 'id="stop-button"' in page and 'id="pause-banner"' not in page
    assert 'id="stop-button"' not in editor.get("/posts").text  # operators and admins only
    refused = console.post(editor, "/pause", {"reason": "x"})
    assert refused.status_code == 403
    assert console.post(ops, "/pause", {"reason": ""}).status_code == 400  # a reason is needed

    done = console.post(ops, "/pause", {"reason": "全国哀悼日", "back": "/calendar"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/calendar")
    for path in ("/posts", "/calendar", "/deliveries", "/review"):
        text = editor.get(path).text
        assert 'id="pause-banner"' in text and "全国哀悼日" in text, path
    assert 'id="resume-button"' not in editor.get("/posts").text
    assert "全国哀悼日" in workspace.ok("status")

    console.post(ops, "/resume", {})
    assert 'id="pause-banner"' not in editor.get("/posts").text
    actions = [r["action"] for r in json.loads(workspace.ok("audit", "--json", "--limit", "50"))]
    assert "channels.paused" in actions and "channels.resumed" in actions


def test_retract_action_needs_confirmation_and_the_final_level(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    post_id = _published_feed_post(workspace)
    final = console.client("zhao")  # a reviewer of the final level (终审)
    editor = console.client("zhang")
    page = final.get(f"/posts/{post_id}").text
    assert 'id="retract-post"' in page
    author_page = editor.get(f"/posts/{post_id}").text
    assert 'id="retract-post"' not in author_page
    # live posts are retracted, not cancelled: the author gets no cancel button any more
    assert f'action="/posts/{post_id}/cancel"' not in author_page

    path = f"/posts/{post_id}/retract"
    assert console.post(final, path, {"reason": "数据有误"}).status_code == 400  # no confirm
    assert console.post(editor, path, {"reason": "x", "confirm": "yes"}).status_code == 403
    assert _states(workspace, post_id)["news-feed"] == ("publish", "published")

    done = console.post(final, path, {"reason": "数据有误", "confirm": "yes"})
    assert done.status_code == 303
    assert _states(workspace, post_id)["news-feed"] == ("retract", "queued")
    assert "撤回中" in final.get(f"/posts/{post_id}").text
    workspace.ok("run", "--once", user="ops")
    assert _states(workspace, post_id)["news-feed"] == ("retract", "retracted")
    assert "已撤回" in final.get(f"/posts/{post_id}").text


def test_calendar_shows_blackout_dates(workspace: Workspace) -> None:
    text = workspace.config.read_text(encoding="utf-8")
    text = text.replace("[review]", '[schedule]\nblackout_dates = ["2026-04-04"]\n\n[review]')
    # the last section of the test configuration is [channels.news-feed]: its own date
    text = text.rstrip("\n") + '\nblackout_dates = ["2026-04-06"]\n'
    workspace.config.write_text(text, encoding="utf-8")
    console: Console = _console(workspace)
    page = console.client("zhang").get("/calendar?view=month&date=2026-04-01").text
    assert 'data-blackout="2026-04-04"' in page and "全部渠道" in page
    assert 'data-blackout="2026-04-05"' not in page
    assert 'data-blackout="2026-04-06"' in page and "news-feed" in page
    agenda = console.client("zhang").get("/calendar?view=agenda&date=2026-04-03").text
    assert 'data-blackout="2026-04-04"' in agenda


def test_a_retraction_for_a_person_is_settled_on_the_deliveries_page(
    workspace: Workspace,
) -> None:
    from kepubot.app import App
    from kepubot.config import load_config

    console: Console = _console(workspace)
    post_id = _published_feed_post(workspace)
    workspace.ok("post", "retract", str(post_id), "--reason", "数据有误", user="zhao")
    # a person's task: as for a channel without a deletion interface (the feed has one; the
    # row is handed over through the same transition the daemon uses)
    app = App(load_config(workspace.config))
    try:
        from kepubot.queue import deliveries, retraction

        (row,) = deliveries.for_post(app.store.conn(), post_id)
        claimed = deliveries.claim_next(
            app.store.conn(), worker="t:1", now=row.due_at, lease_seconds=60
        )
        assert claimed is not None and claimed.id == row.id
        retraction.hand_to_person(
            app.store.conn(), delivery=claimed, worker="t:1", now=row.due_at, task="by hand"
        )
    finally:
        app.close()
    ops = console.client("ops")
    page = ops.get("/deliveries?state=needs_attention").text
    assert f'id="resolve-retracted-{row.id}"' in page and "撤回需人工处理" in page
    done = console.post(ops, f"/deliveries/{row.id}/resolve", {"outcome": "retracted"})
    assert done.status_code == 303
    assert _states(workspace, post_id)["news-feed"] == ("retract", "retracted")
    # settled once: a second answer is refused and changes nothing
    assert console.post(
        ops, f"/deliveries/{row.id}/resolve", {"outcome": "retracted"}
    ).status_code in (400, 403)
