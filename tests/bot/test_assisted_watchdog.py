"""Assisted tasks and the watchdog (issue 14, docs/delivery.md §17.2): the assignee is told
once, with the task's console link; the generic overdue check leaves a waiting task alone;
a task not confirmed within confirm_within_hours alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from test_watchdog_alerts import Receiver, receiver  # noqa: F401 (fixture)

from kepubot.app import App
from kepubot.bot import watchdog
from kepubot.bot.dispatch import Engine
from kepubot.config import load_config
from kepubot.models import Delivery
from kepubot.queue import deliveries
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow


def _app(tmp_path: Path, port: int) -> App:
    (tmp_path / "kepubot.toml").write_text(
        f"""
[daemon]
overdue_minutes = 10
stuck_minutes = 30
[alerts]
urls = ["json://127.0.0.1:{port}/alerts"]
[web]
base_url = "https://kepubot.example.org/"
[users.ed]
roles = ["editor"]
[users.rev]
roles = ["reviewer"]
[users.pub]
roles = ["editor"]
notify = ["json://127.0.0.1:{port}/pub"]
[review]
levels = ["终审"]
[channels.tt]
type = "assisted"
platform = "toutiao"
output_dir = "packs"
assignees = ["pub"]
confirm_within_hours = 2
""",
        encoding="utf-8",
    )
    return App(load_config(tmp_path / "kepubot.toml"))


def _task(app: App, title: str, now: datetime) -> tuple[Engine, Delivery]:
    """A post to the assisted channel, reviewed and dispatched: its delivery, now a task."""
    ids = create_posts(
        app, "ed", [(PostInput(title=title, body="正文", channels=["tt"]), "t")], now=now
    )
    submit(app, "ed", ids, now=now)
    approve(app, "rev", ids, now=now)
    engine = Engine(app, worker="w", clock=lambda: now)
    engine.dispatch()
    assert engine.wait_idle(timeout=30)
    (task,) = deliveries.for_post(app.store.conn(), ids[0])
    return engine, task


def test_task_told_once_then_alerted_when_not_confirmed(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    app = _app(tmp_path, receiver.port)
    now = utcnow()
    engine, task = _task(app, "开窗通风", now)
    assert task.state == "awaiting_person" and task.progress["awaiting_person"] is True
    readme = (Path(task.progress["pack"]) / "README.txt").read_text(encoding="utf-8")
    assert f"kepubot delivery confirm {task.id} --url" in readme

    # an hour later: told once (the assignee's own address), never "overdue"
    hour = Engine(app, worker="w", clock=lambda: now + timedelta(hours=1))
    lines = watchdog.check(hour)
    assert len(lines) == 1 and f"https://kepubot.example.org/tasks/{task.id}" in lines[0]
    assert [m["title"] for m in receiver.messages] == ["kepubot: 待人工发布 — 今日头条（头条号）"]
    assert watchdog.check(hour) == []
    # a task is a person's: a day later the poller does not touch it
    from kepubot.bot import reconcile

    day = Engine(app, worker="w", clock=lambda: now + timedelta(days=1))
    query = "SELECT state, updated_at, not_before FROM deliveries WHERE id = ?"
    before = tuple(app.store.conn().execute(query, (task.id,)).fetchone())
    assert reconcile.poll_processing(day) == 0
    assert tuple(app.store.conn().execute(query, (task.id,)).fetchone()) == before
    assert before[0] == "awaiting_person"
    day.close()
    # past confirm_within_hours: an alert to [alerts] urls and the assignee
    late = Engine(app, worker="w", clock=lambda: now + timedelta(hours=2, minutes=1))
    lines = watchdog.check(late)
    assert len(lines) == 1 and "not confirmed within 2 h" in lines[0]
    late_titles = [m["title"] for m in receiver.messages[1:]]
    assert late_titles == ["kepubot: 待人工发布任务超时未确认"] * 2  # [alerts] urls + the assignee
    assert watchdog.check(late) == []  # once per repeat window
    for e in (engine, hour, late):
        e.close()
    app.close()


def test_a_cancelled_post_cancels_its_task_and_tells_the_assignee(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    from kepubot.services.posts import cancel

    app = _app(tmp_path, receiver.port)
    now = utcnow()
    engine, task = _task(app, "秋季防流感", now)
    assert task.state == "awaiting_person"
    watchdog.check(engine)  # the assignee is told of the task
    cancel(app, "ed", task.post_id, now=now)  # before anyone confirmed it
    assert deliveries.get(app.store.conn(), task.id).state == "cancelled"
    later = Engine(app, worker="w", clock=lambda: now + timedelta(minutes=5))
    lines = watchdog.check(later)
    assert len(lines) == 1 and f"投递 {task.id}" in lines[0] and "请不要再发布" in lines[0]
    assert receiver.messages[-1]["title"] == "kepubot: 已取消，请勿发布 — 今日头条（头条号）"
    assert watchdog.check(later) == []  # once
    for e in (engine, later):
        e.close()
    app.close()


def test_the_newspapers_contact_is_told_once_per_issue(
    tmp_path: Path,
    receiver: Receiver,  # noqa: F811
) -> None:
    from datetime import UTC, datetime

    from kepubot.channels.base import Published
    from kepubot.channels.printpage import PrintChannel
    from kepubot.models import Delivery, Post

    class Context:
        config = None

        def now(self) -> datetime:
            return datetime(2024, 5, 2, 0, 0, tzinfo=UTC)  # a Thursday, 08:00 in Shanghai

        def media_file(self, relative: str) -> str:
            return str(tmp_path / relative)

    settings = PrintChannel.Settings.model_validate(
        {
            "type": "print",
            "output_dir": str(tmp_path / "paper"),
            "contact": [f"json://127.0.0.1:{receiver.port}/editor"],
        }
    )
    channel = PrintChannel("paper", settings, Context())  # type: ignore[arg-type]
    post = Post(id=5, title="开窗通风", body="每天两次。", author="ed", state="approved")
    waiting = channel.publish(post, {"idempotency_key": "k5"})
    issue = waiting.progress["issue"]
    assert issue == "2024-05-02"
    delivery = Delivery.model_validate(
        {
            "id": 1,
            "post_id": 5,
            "channel": "paper",
            "state": "processing",
            "due_at": Context().now(),
            "not_before": Context().now(),
            "progress": {"issue": issue},
        }
    )
    assert isinstance(channel.poll(delivery), Published)
    assert isinstance(channel.poll(delivery), Published)  # built once, told once
    assert [m["title"] for m in receiver.messages] == ["科普版 2024-05-02 稿件已备好"]
    assert "开窗通风" in receiver.messages[0]["message"]
