"""One collection point gives at most one snapshot per delivery, whoever collects it.

Two collectors on one database, each with its own connection (two ``run --once`` of cron, two
daemons, two hosts): the claim pushes a due point out by ``collect.HOLD_SECONDS``, but a pass
that outlasts the hold (a slow platform, a long batch) or a host whose clock runs ahead by more
than the hold claims the same point again. The snapshot is keyed by its delivery and
collection point (migration 26): the second one to store it stores nothing and counts nothing.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kepubot.app import App
from kepubot.bot import collect
from kepubot.channels.webhook import WebhookChannel
from kepubot.config import load_config
from kepubot.models import Delivery, MetricSnapshot
from kepubot.queue import deliveries
from kepubot.services.posts import PostInput, approve, create_posts, submit

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CONFIG = """
[users.ed]
roles = ["editor"]
[users.rev]
roles = ["reviewer"]
[channels.cms]
type = "webhook"
url = "http://127.0.0.1:9/x"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "kepubot.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def publish(app: App) -> int:
    """One post on cms, published at T0 (the first cadence point is T0 + 1 h)."""
    ids = create_posts(
        app, "ed", [(PostInput(title="t", body="b", channels=["cms"]), "t")], now=T0 - HOUR
    )
    submit(app, "ed", ids, now=T0 - HOUR)
    approve(app, "rev", ids, now=T0 - HOUR)
    delivery = deliveries.claim_next(app.store.conn(), worker="w", now=T0, lease_seconds=60)
    assert delivery is not None
    deliveries.begin_send(app.store.conn(), delivery=delivery, worker="w", now=T0, lease_seconds=60)
    deliveries.record_published(
        app.store.conn(), delivery=delivery, worker="w", now=T0, remote_id="r1", remote_url=None
    )
    return delivery.id


def declare_metrics(app: App, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The webhook declares no metrics: declare them on this app's configured channel."""
    channel = app.channels["cms"]
    monkeypatch.setattr(channel, "capabilities", replace(channel.capabilities, metrics=True))
    return channel


def rows(app: App, delivery_id: int) -> list[tuple[Any, ...]]:
    return [
        tuple(r)
        for r in app.store.conn().execute(
            "SELECT collected_at, views FROM metrics WHERE delivery_id = ? ORDER BY id",
            (delivery_id,),
        )
    ]


@pytest.mark.parametrize("late", [timedelta(minutes=11), timedelta(hours=3)])
def test_a_point_claimed_twice_is_stored_once(
    config: Path, monkeypatch: pytest.MonkeyPatch, late: timedelta
) -> None:
    """A collects the 1 h point and waits on the platform; B, ``late`` after A (past the
    hold, before the 6 h point), collects the same point meanwhile. Only one snapshot."""
    assert late > timedelta(seconds=collect.HOLD_SECONDS) and HOUR * 2 + late < 6 * HOUR
    first, second = App(load_config(config)), App(load_config(config))
    try:
        delivery_id = publish(first)
        slow = declare_metrics(first, monkeypatch)
        declare_metrics(second, monkeypatch)
        fetching, release = threading.Event(), threading.Event()

        def metrics(self: WebhookChannel, items: list[Delivery]) -> dict[str, MetricSnapshot]:
            if self is slow:
                fetching.set()
                assert release.wait(30), "the second collector never finished"
                return {d.remote_id or "": MetricSnapshot(views=100) for d in items}
            return {d.remote_id or "": MetricSnapshot(views=200) for d in items}

        monkeypatch.setattr(WebhookChannel, "metrics", metrics)
        a_at = T0 + 2 * HOUR
        results: dict[str, dict[str, int]] = {}

        def run_first() -> None:
            results["a"] = collect.collect_pass(collect.Once(first, a_at))

        thread = threading.Thread(target=run_first)
        thread.start()
        try:
            assert fetching.wait(30), "the first collector never reached the platform"
            results["b"] = collect.collect_pass(collect.Once(second, a_at + late))
        finally:
            release.set()
            thread.join(30)
        assert not thread.is_alive()
        # both asked the platform (the hold had passed), one snapshot was kept: the 1 h point's
        shots = rows(second, delivery_id)
        assert len(shots) == 1, shots
        assert results["a"]["collected"] + results["b"]["collected"] == 1, results
        assert shots[0][1] == 200  # B stored first; A's later answer for the same point is not
        latest = (
            second.store.conn()
            .execute("SELECT views FROM metrics_latest WHERE delivery_id = ?", (delivery_id,))
            .fetchone()
        )
        assert latest[0] == 200
        row = (
            second.store.conn()
            .execute(
                "SELECT next_metrics_at, metrics_step FROM deliveries WHERE id = ?", (delivery_id,)
            )
            .fetchone()
        )
        assert row[1] == 1 and row[0].startswith("2026-12-01T08:00")  # the 6 h point is next
        # the 6 h point is a new point: it is collected and stored
        assert collect.collect_pass(collect.Once(second, T0 + 6 * HOUR))["collected"] == 1
        assert len(rows(second, delivery_id)) == 2
    finally:
        first.close()
        second.close()
