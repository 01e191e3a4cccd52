"""Reconciliation of unknown outcomes (issue 10): only a proven absence sends again; an
undecided lookup looks again with backoff until the channel's settle_minutes, then a person
is asked with an alert that says what is known; a job the platform still runs is polled; every
way into ``unknown`` waits reconcile_after_seconds first.

The database is a real SQLite file; the channel is a scripted one whose ``find`` answers what a
test needs (the platform channels' own lookups are tested against ``responses`` and the
sandbox)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kepubot.app import App
from kepubot.bot import reconcile
from kepubot.bot.dispatch import Engine
from kepubot.channels.base import (
    SETTLE_MINUTES_DEFAULTS,
    Capabilities,
    Channel,
    ChannelSettings,
    Processing,
    Published,
    Undecided,
)
from kepubot.config import load_config
from kepubot.errors import Transient
from kepubot.models import Delivery
from kepubot.queue import deliveries
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow

RECONCILE_AFTER = 30.0
SETTLE = 5.0  # minutes


class Scripted(Channel):
    """A channel that can look; each find() takes the next scripted answer (an exception is
    raised)."""

    capabilities = Capabilities(find=True, poll=True)

    def __init__(self, name: str, settings: ChannelSettings) -> None:
        super().__init__(name, settings)
        self.answers: list[Any] = []
        self.asked: list[dict[str, Any]] = []

    def find(self, post: Any, since: datetime, progress: dict[str, Any]) -> Any:
        self.asked.append(dict(progress))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def poll(self, delivery: Delivery) -> Published | Processing:
        return Processing(poll_after_seconds=1)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def workspace(tmp_path: Path) -> App:
    (tmp_path / "kepubot.toml").write_text(
        f"""
[daemon]
reconcile_after_seconds = {RECONCILE_AFTER}
reconcile_max_tries = 50
[users.ed]
roles = ["editor"]
[users.rev]
roles = ["reviewer"]
[review]
levels = ["终审"]
[channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/never"
settle_minutes = {SETTLE}
""",
        encoding="utf-8",
    )
    return App(load_config(tmp_path / "kepubot.toml"))


@pytest.fixture
def world(tmp_path: Path):
    app = workspace(tmp_path)
    start = utcnow().replace(microsecond=0)  # the database keeps milliseconds
    ids = create_posts(
        app, "ed", [(PostInput(title="通风", body="正文", channels=["hook"]), "t")], now=start
    )
    submit(app, "ed", ids, now=start)
    approve(app, "rev", ids, now=start)
    channel = Scripted("hook", app.channels["hook"].settings)
    app.channels["hook"] = channel
    clock = Clock(start)
    engine = Engine(app, worker="w", clock=clock)
    yield app, engine, channel, clock
    engine.close()
    app.close()


def send_and_lose_the_answer(app: App, clock: Clock, progress: dict[str, Any]) -> Delivery:
    conn = app.store.conn()
    delivery = deliveries.claim_next(conn, worker="w", now=clock.now, lease_seconds=60)
    assert delivery is not None
    deliveries.begin_send(conn, delivery=delivery, worker="w", now=clock.now, lease_seconds=60)
    deliveries.save_progress(conn, delivery=delivery, worker="w", progress=progress, now=clock.now)
    deliveries.record_unknown(
        conn,
        delivery=delivery,
        worker="w",
        now=clock.now,
        error="freepublish/submit: no answer within 30 s",
        look_at=clock.now + timedelta(seconds=RECONCILE_AFTER),
    )
    return delivery


def undecided() -> Undecided:
    return Undecided(
        reason="草稿 media_id DRAFT-1 仍在草稿箱，发布任务可能仍在进行",
        checked=("freepublish/batchget：没有这篇文章", "draft/get：草稿 DRAFT-1 仍在草稿箱"),
        look_at="公众号后台的「发表记录」与「草稿箱」",
    )


def alerts(app: App) -> list[str]:
    return [r[0] for r in app.store.conn().execute("SELECT message FROM alerts ORDER BY at")]


def test_the_settle_window_defaults_per_channel_type() -> None:
    assert SETTLE_MINUTES_DEFAULTS["wechat"] == 30
    assert SETTLE_MINUTES_DEFAULTS["douyin"] == 60
    assert SETTLE_MINUTES_DEFAULTS["weibo"] == 10
    assert ChannelSettings(type="wechat").settle_window() == 30
    assert ChannelSettings(type="wechat", settle_minutes=2).settle_window() == 2
    assert ChannelSettings(type="someplugin").settle_window() == 30


def test_undecided_looks_again_with_backoff_then_asks_a_person(world) -> None:
    app, engine, channel, clock = world
    start = clock.now
    delivery = send_and_lose_the_answer(app, clock, {"draft_media_id": "DRAFT-1"})
    # nothing is looked up before reconcile_after_seconds
    assert reconcile.reconcile_unknown(engine) == {}
    looks: list[datetime] = []
    clock.now = start + timedelta(seconds=RECONCILE_AFTER)
    while deliveries.get(app.store.conn(), delivery.id).state == "unknown":
        due = deliveries.get(app.store.conn(), delivery.id).not_before
        assert due is not None and due >= clock.now
        clock.now = max(clock.now, due)
        channel.answers.append(undecided())
        assert reconcile.reconcile_unknown(engine) in ({"retry": 1}, {"needs_attention": 1})
        looks.append(clock.now)
        assert len(looks) < 20
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(looks)]
    # 30 s doubling (30, 60, 120) until the window's end, where it looks one last time
    assert gaps[:3] == [30, 60, 120]
    assert looks[-1] == start + timedelta(minutes=SETTLE)
    row = deliveries.get(app.store.conn(), delivery.id)
    assert row.state == "needs_attention"
    assert "still undecided after settle_minutes" in (row.last_error or "")
    (message,) = alerts(app)
    for known in ("DRAFT-1", "仍在草稿箱", "freepublish/batchget", "发表记录", "delivery resolve"):
        assert known in message


def test_only_a_proven_absence_sends_again(world) -> None:
    app, engine, channel, clock = world
    delivery = send_and_lose_the_answer(app, clock, {"draft_media_id": "DRAFT-1"})
    clock.now += timedelta(seconds=RECONCILE_AFTER)
    channel.answers.append(None)
    assert reconcile.reconcile_unknown(engine) == {"queued": 1}
    assert deliveries.get(app.store.conn(), delivery.id).state == "queued"
    assert alerts(app) == []


def test_a_job_still_running_is_polled_not_sent_again(world) -> None:
    app, engine, channel, clock = world
    delivery = send_and_lose_the_answer(app, clock, {"draft_media_id": "D-1"})
    clock.now += timedelta(seconds=RECONCILE_AFTER)
    channel.answers.append(Processing(progress={"publish_id": "P-1"}, poll_after_seconds=45))
    assert reconcile.reconcile_unknown(engine) == {"processing": 1}
    row = deliveries.get(app.store.conn(), delivery.id)
    assert row.state == "processing"
    assert row.not_before == clock.now + timedelta(seconds=45)
    # what the lookup learned about the job joins the checkpoints, for poll()
    assert row.progress == {"draft_media_id": "D-1", "publish_id": "P-1"}


def test_found_is_published(world) -> None:
    app, engine, channel, clock = world
    delivery = send_and_lose_the_answer(app, clock, {})
    clock.now += timedelta(seconds=RECONCILE_AFTER)
    channel.answers.append(Published("ARTICLE-1", "https://mp.weixin.qq.com/s/x"))
    assert reconcile.reconcile_unknown(engine) == {"published": 1}
    assert deliveries.get(app.store.conn(), delivery.id).remote_id == "ARTICLE-1"


def test_failed_lookups_are_undecided_never_absent(world) -> None:
    app, engine, channel, clock = world
    start = clock.now
    delivery = send_and_lose_the_answer(app, clock, {})
    clock.now = start + timedelta(seconds=RECONCILE_AFTER)
    channel.answers.append(Transient("freepublish/batchget: HTTP 502"))
    assert reconcile.reconcile_unknown(engine) == {"retry": 1}
    row = deliveries.get(app.store.conn(), delivery.id)
    assert row.state == "unknown" and row.reconcile_tries == 1
    assert row.not_before == clock.now + timedelta(seconds=RECONCILE_AFTER)
    clock.now = start + timedelta(minutes=SETTLE, seconds=1)
    channel.answers.append(Transient("freepublish/batchget: HTTP 502"))
    assert reconcile.reconcile_unknown(engine) == {"needs_attention": 1}
    (message,) = alerts(app)
    assert "HTTP 502" in message


def test_a_dead_owner_on_this_host_waits_reconcile_after_seconds(world) -> None:
    """Regression: a send whose daemon died on this host became unknown with the due time as
    its next look, so it was looked up (and could be found 'absent') at once."""
    app, engine, channel, clock = world
    import socket

    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead = f"{socket.gethostname()}:{int(finished.stdout)}"
    conn = app.store.conn()
    delivery = deliveries.claim_next(conn, worker=dead, now=clock.now, lease_seconds=600)
    assert delivery is not None
    deliveries.begin_send(conn, delivery=delivery, worker=dead, now=clock.now, lease_seconds=600)
    clock.now += timedelta(seconds=5)  # its lease has 595 s left, but its owner is gone
    assert reconcile.expire(engine) == (0, 1)
    row = deliveries.get(conn, delivery.id)
    assert row.state == "unknown"
    assert row.not_before == clock.now + timedelta(seconds=RECONCILE_AFTER)
    assert reconcile.reconcile_unknown(engine) == {}  # not yet
    assert channel.asked == []
    clock.now += timedelta(seconds=RECONCILE_AFTER)
    channel.answers.append(undecided())
    assert reconcile.reconcile_unknown(engine) == {"retry": 1}


def test_a_lease_from_another_host_is_trusted_until_it_expires(world, monkeypatch) -> None:
    """Daemons on several hosts (docs/architecture.md §11.3): a pid is only tested on its own
    host; the same dead pid under another host's name keeps its lease until lease_until."""
    app, engine, _channel, clock = world
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    monkeypatch.setenv("KEPUBOT_HOSTNAME", "host-a")
    elsewhere = f"host-b:{int(finished.stdout)}"  # no such process here; host-b may run it
    conn = app.store.conn()
    delivery = deliveries.claim_next(conn, worker=elsewhere, now=clock.now, lease_seconds=600)
    assert delivery is not None
    deliveries.begin_send(
        conn, delivery=delivery, worker=elsewhere, now=clock.now, lease_seconds=600
    )
    clock.now += timedelta(seconds=5)
    assert reconcile.dead_owners(engine) == []
    assert reconcile.expire(engine) == (0, 0)
    assert deliveries.get(conn, delivery.id).state == "sending"
    # under its own host's name the same owner is judged dead at once
    monkeypatch.setenv("KEPUBOT_HOSTNAME", "host-b")
    assert reconcile.dead_owners(engine) == [elsewhere]
    monkeypatch.setenv("KEPUBOT_HOSTNAME", "host-a")
    clock.now += timedelta(seconds=600)  # the lease ran out: recovered like any other
    assert reconcile.expire(engine) == (0, 1)
    assert deliveries.get(conn, delivery.id).state == "unknown"


def test_an_expired_lease_waits_reconcile_after_seconds_too(world) -> None:
    app, engine, _channel, clock = world
    conn = app.store.conn()
    delivery = deliveries.claim_next(conn, worker="other:1", now=clock.now, lease_seconds=10)
    assert delivery is not None
    deliveries.begin_send(
        conn, delivery=delivery, worker="other:1", now=clock.now, lease_seconds=10
    )
    clock.now += timedelta(seconds=11)
    assert reconcile.expire(engine) == (0, 1)
    row = deliveries.get(conn, delivery.id)
    assert row.not_before == clock.now + timedelta(seconds=RECONCILE_AFTER)


def test_the_alert_is_in_english_when_asked(world) -> None:
    app, engine, channel, clock = world
    app.language = "en"
    delivery = send_and_lose_the_answer(app, clock, {})
    clock.now += timedelta(minutes=SETTLE + 1)
    channel.answers.append(undecided())
    assert reconcile.reconcile_unknown(engine) == {"needs_attention": 1}
    (message,) = alerts(app)
    assert f"delivery {delivery.id} needs attention" in message
    assert "Nothing was sent again" in message


def test_a_channel_that_cannot_look_asks_a_person_at_once(world) -> None:
    app, engine, channel, clock = world
    blind = Channel("hook", channel.settings)  # can_find is False
    app.channels["hook"] = blind
    delivery = send_and_lose_the_answer(app, clock, {})
    clock.now += timedelta(seconds=RECONCILE_AFTER)
    assert reconcile.reconcile_unknown(engine) == {"needs_attention": 1}
    (message,) = alerts(app)
    assert "该渠道无法查询" in message and f"delivery resolve {delivery.id}" in message
