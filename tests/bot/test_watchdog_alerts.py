"""Watchdog and alerts: every overdue, stuck or needs-attention delivery raises an alert (an
ERROR log line and a message through apprise); a broken destination never blocks."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from kepubot.app import App
from kepubot.bot import watchdog
from kepubot.bot.dispatch import Engine
from kepubot.config import load_config
from kepubot.queue import deliveries
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow


class Receiver:
    """A local HTTP endpoint for apprise's json:// notifications."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                outer.messages.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def workspace(
    tmp_path: Path,
    urls: list[str],
    notify: list[str] | None = None,
    levels: tuple[str, ...] = ("初审", "终审"),
) -> App:
    (tmp_path / "kepubot.toml").write_text(
        f"""
[daemon]
overdue_minutes = 10
stuck_minutes = 30
[alerts]
urls = {json.dumps(urls)}
notify_reviewers = true
[users.ed]
roles = ["editor"]
[users.rev]
roles = ["reviewer"]
notify = {json.dumps(notify or [])}
[review]
levels = {json.dumps(list(levels), ensure_ascii=False)}
[channels.plain]
type = "webhook"
url = "http://127.0.0.1:9/never"
""",
        encoding="utf-8",
    )
    return App(load_config(tmp_path / "kepubot.toml"))


def test_overdue_and_needs_attention_alert_once_per_window(
    tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    app = workspace(tmp_path, [f"json://127.0.0.1:{receiver.port}/alerts"], levels=("终审",))
    now = utcnow()
    ids = create_posts(
        app, "ed", [(PostInput(title="通风", body="正文", channels=["plain"]), "t")], now=now
    )
    submit(app, "ed", ids, now=now)
    approve(app, "rev", ids, now=now)
    later = now + timedelta(minutes=11)
    engine = Engine(app, worker="w", clock=lambda: later)
    with caplog.at_level(logging.ERROR, logger="kepubot"):
        lines = watchdog.check(engine)
    assert len(lines) == 1 and "overdue" in lines[0]
    assert any("ALERT" in r.getMessage() for r in caplog.records)
    assert len(receiver.messages) == 1
    assert "1 deliveries need a look" in receiver.messages[0]["title"]
    # The same alert does not repeat within the window.
    assert watchdog.check(engine) == []
    # A delivery that needs attention alerts too.
    d = deliveries.claim_next(app.store.conn(), worker="w", now=later, lease_seconds=60)
    assert d is not None
    deliveries.begin_send(app.store.conn(), delivery=d, worker="w", now=later, lease_seconds=60)
    deliveries.record_unknown(app.store.conn(), delivery=d, worker="w", now=later, error="timeout")
    deliveries.record_reconciled(
        app.store.conn(), delivery_id=d.id, actor="w", now=later, found=None, decided=False
    )
    lines = watchdog.check(engine)
    assert len(lines) == 1 and "needs attention" in lines[0]
    engine.close()
    app.close()


def test_a_broken_destination_never_blocks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = workspace(tmp_path, ["json://127.0.0.1:9/closed-port", "not a url at all"])
    now = utcnow()
    ids = create_posts(
        app, "ed", [(PostInput(title="通风", body="正文", channels=["plain"]), "t")], now=now
    )
    submit(app, "ed", ids, now=now)
    engine = Engine(app, worker="w", clock=lambda: now + timedelta(hours=2))
    # in_review posts have no deliveries; nothing is overdue and nothing breaks
    assert watchdog.check(engine) == []
    from kepubot.alerts import notify

    with caplog.at_level(logging.WARNING, logger="kepubot.alerts"):
        notify(["json://127.0.0.1:9/closed-port", "not a url at all"], "t", "b", wait=10)
    assert any(
        "not a valid apprise URL" in r.getMessage() or "did not accept" in r.getMessage()
        for r in caplog.records
    )
    engine.close()
    app.close()


def test_reviewers_are_told_when_a_post_reaches_them(tmp_path: Path, receiver: Receiver) -> None:
    app = workspace(tmp_path, [], notify=[f"json://127.0.0.1:{receiver.port}/rev"])
    now = utcnow()
    ids = create_posts(
        app, "ed", [(PostInput(title="洗手", body="正文", channels=["plain"]), "t")], now=now
    )
    submit(app, "ed", ids, now=now)
    assert len(receiver.messages) == 1
    assert "洗手" in receiver.messages[0]["title"] and "初审" in receiver.messages[0]["message"]
    app.close()
