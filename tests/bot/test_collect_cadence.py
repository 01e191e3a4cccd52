"""Metric collection cadence with a fake clock stepping through 30 days."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kepubot.app import App
from kepubot.bot import collect
from kepubot.bot.dispatch import Engine
from kepubot.channels.webhook import WebhookChannel
from kepubot.config import load_config
from kepubot.models import Delivery, MetricSnapshot
from kepubot.queue import deliveries, limits
from kepubot.queue import metrics as store
from kepubot.queue.db import transaction
from kepubot.services.posts import PostInput, approve, create_posts, submit

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "kepubot.toml").write_text(
        """
[users.ed]
roles = ["editor"]
[users.rev]
roles = ["reviewer"]
[channels.cms]
type = "webhook"
url = "http://127.0.0.1:9/x"
""",
        encoding="utf-8",
    )
    application = App(load_config(tmp_path / "kepubot.toml"))
    yield application
    application.close()


def publish(app: App, count: int, at: datetime) -> list[int]:
    items = [(PostInput(title=f"t{i}", body="b", channels=["cms"]), "t") for i in range(count)]
    ids = create_posts(app, "ed", items, now=at - HOUR)
    submit(app, "ed", ids, now=at - HOUR)
    approve(app, "rev", ids, now=at - HOUR)
    out = []
    while (
        d := deliveries.claim_next(app.store.conn(), worker="w", now=at, lease_seconds=60)
    ) is not None:
        deliveries.begin_send(app.store.conn(), delivery=d, worker="w", now=at, lease_seconds=60)
        deliveries.record_published(
            app.store.conn(), delivery=d, worker="w", now=at, remote_id=f"r{d.id}", remote_url=None
        )
        out.append(d.id)
    return out


class Calls:
    def __init__(self, clock: list[datetime]) -> None:
        self.clock = clock
        self.calls: list[tuple[datetime, list[str]]] = []

    def __call__(self, channel: WebhookChannel, items: list[Delivery]) -> dict[str, MetricSnapshot]:
        self.calls.append((self.clock[0], [d.remote_id or "" for d in items]))
        hours = (self.clock[0] - T0) / HOUR
        return {
            d.remote_id or "": MetricSnapshot(views=int(hours * 10), likes=int(hours))
            for d in items
        }


def declare_metrics(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine reads the declared capability, not whether a method exists (the webhook
    declares no metrics): declare it on the configured channel for the stand-in metrics."""
    for channel in app.channels.values():
        if isinstance(channel, WebhookChannel):
            monkeypatch.setattr(
                channel, "capabilities", replace(channel.capabilities, metrics=True)
            )


def run(app: App, monkeypatch: pytest.MonkeyPatch, steps: list[datetime]) -> Calls:
    clock = [steps[0]]
    calls = Calls(clock)
    monkeypatch.setattr(WebhookChannel, "metrics", lambda self, items: calls(self, items))
    declare_metrics(app, monkeypatch)
    engine = Engine(app, worker="w", clock=lambda: clock[0])
    for moment in steps:
        clock[0] = moment
        collect.collect_pass(engine)
    engine.close()
    return calls


def test_thirty_days_hour_by_hour_gives_exactly_the_cadence(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = publish(app, 3, T0)
    steps = [T0 + HOUR * h for h in range(0, 24 * 31 + 1)]
    calls = run(app, monkeypatch, steps)
    expected = [T0 + timedelta(hours=h) for h in (1, 6, 24, 72, 168, 720)]
    assert [when for when, _ in calls.calls] == expected
    assert all(len(remote) == 3 for _, remote in calls.calls)  # one batch per point
    for delivery_id in ids:
        shots = store.snapshots(app.store.conn(), delivery_id)
        assert len(shots) == 6
        latest = (
            app.store.conn()
            .execute("SELECT views FROM metrics_latest WHERE delivery_id = ?", (delivery_id,))
            .fetchone()
        )
        assert latest[0] == 7200  # the 30-day figures
    assert (
        app.store.conn()
        .execute("SELECT COUNT(*) FROM deliveries WHERE next_metrics_at IS NOT NULL")
        .fetchone()[0]
        == 0
    )


def test_downtime_is_caught_up_once_without_a_burst(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(app, 1, T0)
    # the daemon is down from 2 h to 5 days after publishing
    steps = [T0, T0 + 2 * HOUR, T0 + timedelta(days=5)] + [
        T0 + timedelta(days=5) + HOUR * h for h in range(1, 24 * 26)
    ]
    calls = run(app, monkeypatch, steps)
    assert [when for when, _ in calls.calls] == [
        T0 + 2 * HOUR,  # the 1 h point, late
        T0 + timedelta(days=5),  # 6 h, 24 h and 3 d points: one collection, not three
        T0 + timedelta(days=7),
        T0 + timedelta(days=30),
    ]


def test_no_collection_while_the_breaker_is_open(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    publish(app, 1, T0)
    conn = app.store.conn()
    # refused credentials open the breaker at publishing time for 92 hours
    with transaction(conn):
        limits.record_failure(conn, "cms", T0, kind="auth", reason="x", wait_seconds=92 * 3600)
    steps = [T0 + HOUR * h for h in range(0, 24 * 8)]
    calls = run(app, monkeypatch, steps)
    times = [when for when, _ in calls.calls]
    closes = T0 + timedelta(hours=92)
    # nothing while open; then one catch-up for the 1 h, 6 h, 24 h and 3 d points; then 7 d
    assert times == [closes, T0 + timedelta(days=7)]


def test_a_failed_collection_is_retried_at_the_next_point(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(app, 1, T0)
    clock = [T0]
    seen: list[datetime] = []

    def flaky(self: WebhookChannel, items: list[Delivery]) -> dict[str, MetricSnapshot]:
        seen.append(clock[0])
        from kepubot.errors import Transient

        if len(seen) == 1:
            raise Transient("platform down")
        return {d.remote_id or "": MetricSnapshot(views=1) for d in items}

    monkeypatch.setattr(WebhookChannel, "metrics", flaky)
    declare_metrics(app, monkeypatch)
    engine = Engine(app, worker="w", clock=lambda: clock[0])
    for h in range(0, 30):
        clock[0] = T0 + HOUR * h
        collect.collect_pass(engine)
    engine.close()
    assert seen == [T0 + HOUR, T0 + 6 * HOUR, T0 + 24 * HOUR]
