"""The console's assisted-task page (issue 14, docs/delivery.md §17): every part with a copy
button, the pack's files, confirm once with the URL, decline with a reason, and figures
entered by hand; through the real Flask app and database."""

from __future__ import annotations

import json
import re
import zipfile
from io import BytesIO

from test_console import Console, _console

from conftest import Workspace

ASSISTED = """
[channels.tt]
type = "assisted"
platform = "toutiao"
output_dir = "packs"
assignees = ["chen"]
min_gap_minutes = 0
"""


def _task(ws: Workspace) -> tuple[Console, int]:
    ws.config.write_text(ws.config.read_text(encoding="utf-8") + ASSISTED, encoding="utf-8")
    console = _console(ws)
    post_id = ws.add_post("--channel", "tt")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    ws.ok("run", "--once", user="ops")
    shown = json.loads(ws.ok("post", "show", str(post_id), "--json"))
    (delivery,) = shown["deliveries"]
    assert delivery["state"] == "awaiting_person"
    return console, int(delivery["id"])


def test_task_page_parts_files_and_confirm_once(workspace: Workspace) -> None:
    console, delivery_id = _task(workspace)
    assignee = console.client("chen")
    listing = assignee.get("/tasks").text
    assert f'data-task="{delivery_id}"' in listing and "待人工发布" in listing
    page = assignee.get(f"/tasks/{delivery_id}").text
    assert "今日头条" in page and "待人工发布" in page
    for part in ("title", "summary", "body", "link"):
        assert f'data-copy="part-{part}"' in page and f'id="part-{part}"' in page
    assert "tasks.js" in page and "<script>" not in page  # no inline script
    assert "勤洗手：七步洗手法的科学依据" in page
    files = re.findall(rf"/tasks/{delivery_id}/files/([^\"]+)", page)
    assert "pack.zip" in files and "README.txt" in files and "image-01.png" in files
    archive = assignee.get(f"/tasks/{delivery_id}/files/pack.zip")
    assert archive.status_code == 200
    with zipfile.ZipFile(BytesIO(archive.data)) as zf:
        assert any(n.endswith("/README.txt") for n in zf.namelist())
    # only names the pack lists: no path out of it
    assert assignee.get(f"/tasks/{delivery_id}/files/..%2Fkepubot.toml").status_code == 404
    # someone neither operator nor assignee sees no task
    assert console.client("li").get(f"/tasks/{delivery_id}").status_code == 403

    url = "https://www.toutiao.com/article/7350000000000000001/"
    bad = console.post(assignee, f"/tasks/{delivery_id}/confirm", {"url": "not a url"})
    assert bad.status_code == 400
    done = console.post(assignee, f"/tasks/{delivery_id}/confirm", {"url": url})
    assert done.status_code == 303
    again = console.post(assignee, f"/tasks/{delivery_id}/confirm", {"url": url})
    assert again.status_code == 403  # recorded once; the second is refused (InvalidTransition)
    page = assignee.get(f"/tasks/{delivery_id}").text
    assert 'id="task-published-url"' in page and url in page
    assert 'id="task-confirm"' not in page and 'id="task-metrics"' in page
    actions = [r["action"] for r in json.loads(workspace.ok("audit", "--json", "--limit", "80"))]
    assert actions.count("delivery.confirmed_by_person") == 1

    # figures by hand, marked manual
    assert (
        console.post(assignee, f"/tasks/{delivery_id}/metrics", {"views": "x"}).status_code == 400
    )
    saved = console.post(
        assignee, f"/tasks/{delivery_id}/metrics", {"views": "1200", "likes": "30"}
    )
    assert saved.status_code == 303
    from kepubot.app import App
    from kepubot.config import load_config

    app = App(load_config(workspace.config))
    try:
        row = (
            app.store.conn()
            .execute(
                "SELECT views, likes, comments, source FROM metrics_latest WHERE delivery_id = ?",
                (delivery_id,),
            )
            .fetchone()
        )
    finally:
        app.close()
    assert tuple(row) == (1200, 30, None, "manual")


def test_task_declined_with_a_reason(workspace: Workspace) -> None:
    console, delivery_id = _task(workspace)
    ops = console.client("ops")  # operators may act on any task
    # shown as 待人工发布 wherever deliveries are listed
    listing = ops.get("/deliveries").text
    assert "待人工发布" in listing and f'id="task-link-{delivery_id}"' in listing
    listed = json.loads(workspace.ok("delivery", "list", "--json"))
    assert [d["shown_state"] for d in listed if d["id"] == delivery_id] == ["awaiting_person"]
    # a state of its own: selected by state, counted by status and on the deliveries page
    only = json.loads(workspace.ok("delivery", "list", "--state", "awaiting_person", "--json"))
    assert [d["id"] for d in only] == [delivery_id]
    assert json.loads(workspace.ok("status", "--json"))["deliveries"]["awaiting_person"] == 1
    assert "待人工发布 1" in listing
    assert console.post(ops, f"/tasks/{delivery_id}/decline", {"reason": " "}).status_code == 400
    done = console.post(ops, f"/tasks/{delivery_id}/decline", {"reason": "账号被限流"})
    assert done.status_code == 303
    shown = json.loads(workspace.ok("delivery", "list", "--json"))
    (row,) = [d for d in shown if d["id"] == delivery_id]
    assert row["state"] == "failed" and "账号被限流" in (row.get("last_error") or "")
