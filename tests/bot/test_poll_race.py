"""Two daemons (or two parallel ``run --once``) polling the same ``processing`` delivery:
the one that records second finds it settled and skips it, logged at debug (issue 11 item 4).

The race is provoked deterministically: two engines in this process share the database file,
and engine A's poll of the platform lets engine B poll and record first."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import connect_db

from daemon_env import DaemonEnv, make_env
from kepubot.bot.daemon import run_once
from kepubot.bot.dispatch import Engine
from kepubot.bot.reconcile import poll_processing
from kepubot.channels.base import Channel, Published
from kepubot.queue import deliveries, repos
from kepubot.timeutil import utcnow


@pytest.fixture
def env(tmp_path: Path):
    env = make_env(tmp_path)
    yield env
    env.sandbox.stop()


def _polls(real: Channel, before: Any = None) -> Any:
    """The channel as configured, with the platform's answer to a poll decided here (an
    asynchronous job that has finished); ``before`` runs first (the rival daemon)."""

    class Polls(type(real)):  # type: ignore[misc]
        # a channel that follows asynchronous jobs says so (docs/architecture.md §5.7); the
        # rest of what the configured type declares is kept
        capabilities = replace(type(real).capabilities, poll=True)
        polled = 0

        def poll(self, delivery: Any) -> Published:
            type(self).polled += 1
            if before is not None:
                before()
            return Published(f"remote-{delivery.id}", f"https://cms.example/{delivery.id}")

    return Polls(real.name, real.settings, real.context)


def _processing_delivery(env: DaemonEnv) -> int:
    """A delivery accepted by an asynchronous platform, due for a poll now."""
    (post_id,) = env.queue(1, ["cms"])
    app = env.app()
    try:
        now = utcnow()
        claimed = deliveries.claim_next(app.store.conn(), worker="w0", now=now, lease_seconds=30)
        assert claimed is not None and claimed.post_id == post_id
        deliveries.begin_send(
            app.store.conn(), delivery=claimed, worker="w0", now=now, lease_seconds=30
        )
        deliveries.record_processing(
            app.store.conn(),
            delivery=claimed,
            worker="w0",
            now=now,
            progress={"publish_id": "p-1"},
            poll_at=now - timedelta(seconds=1),
        )
        return claimed.id
    finally:
        app.close()


def _published_rows(env: DaemonEnv, delivery_id: int) -> int:
    conn = connect_db(env.db)
    try:
        return conn.execute(
            "SELECT COUNT(*) FROM audit WHERE delivery_id = ? AND action = 'delivery.published'",
            (delivery_id,),
        ).fetchone()[0]
    finally:
        conn.close()


def test_losing_a_poll_race_is_skipped_not_an_error(
    env: DaemonEnv, caplog: pytest.LogCaptureFixture
) -> None:
    delivery_id = _processing_delivery(env)
    app_a, app_b = env.app(), env.app()
    engine_a = Engine(app_a, worker="daemon-a")
    engine_b = Engine(app_b, worker="daemon-b")
    try:
        rival = _polls(app_b.channels["cms"])
        app_b.channels["cms"] = rival  # type: ignore[assignment]
        # A reads the delivery as processing, asks the platform; meanwhile B polls and records
        slow = _polls(app_a.channels["cms"], before=lambda: poll_processing(engine_b))
        app_a.channels["cms"] = slow  # type: ignore[assignment]
        caplog.set_level(logging.DEBUG, logger="kepubot.bot.reconcile")
        result = run_once(app_a, engine_a)  # raised InvalidTransition (exit 2) before the fix
        assert slow.polled == 1 and rival.polled == 1
        assert isinstance(result, dict)
        assert deliveries.get(app_a.store.conn(), delivery_id).state == "published"
        assert _published_rows(env, delivery_id) == 1
        skipped = [
            r
            for r in caplog.records
            if r.name == "kepubot.bot.reconcile" and "settled by another daemon" in r.getMessage()
        ]
        assert skipped and all(r.levelno == logging.DEBUG for r in skipped)
    finally:
        engine_a.close()
        engine_b.close()
        app_a.close()
        app_b.close()


def test_a_delivery_settled_before_it_is_read_is_skipped(
    env: DaemonEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other window: B records between A's list of due deliveries and A's read."""
    delivery_id = _processing_delivery(env)
    app_a, app_b = env.app(), env.app()
    engine_a = Engine(app_a, worker="daemon-a")
    engine_b = Engine(app_b, worker="daemon-b")
    try:
        app_b.channels["cms"] = _polls(app_b.channels["cms"])  # type: ignore[assignment]
        untouched = _polls(app_a.channels["cms"])
        app_a.channels["cms"] = untouched  # type: ignore[assignment]
        # the daemon reads through its store's repository (docs/architecture.md §17): the
        # seam is the repository's entry, the storage function it binds stays the real one
        real_due = deliveries.due_ids
        real_entry = repos.Deliveries.due_ids

        rival_started: list[bool] = []
        rival_done: list[int] = []

        def due_then_rival(conn: sqlite3.Connection, state: str, now: Any) -> list[int]:
            rows = real_due(conn, state, now)
            if state == "processing" and rows and not rival_started:
                rival_started.append(True)
                rival_done.append(poll_processing(engine_b))
            return rows

        # the real query, then the rival's whole poll: the window a second process can hit
        monkeypatch.setattr(repos.Deliveries, "due_ids", repos.bound(due_then_rival))
        assert poll_processing(engine_a) == 0
        # put back only the query: monkeypatch.undo() would also undo the backend fixture's
        # KEPUBOT_DATABASE and send the checks below to an empty SQLite file
        monkeypatch.setattr(repos.Deliveries, "due_ids", real_entry)
        assert rival_done == [1]
        assert untouched.polled == 0  # A did not even ask the platform again
        assert _published_rows(env, delivery_id) == 1
    finally:
        engine_a.close()
        engine_b.close()
        app_a.close()
        app_b.close()


def test_stopping_waits_for_a_dispatch_handing_over_a_claim(
    env: DaemonEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM while a dispatch tick has just claimed a delivery: the shutdown must see that
    send (and wait for it), not close the connections under it (a send that met a closed
    database was left in `sending` and became `unknown`)."""
    import threading

    env.queue(1, ["cms"])
    app = env.app()
    engine = Engine(app, worker="daemon-a")
    claimed, go_on = threading.Event(), threading.Event()
    real_claim = deliveries.claim_next

    def claim_then_pause(*args: Any, **kwargs: Any) -> Any:
        delivery = real_claim(*args, **kwargs)
        if delivery is not None:
            claimed.set()
            go_on.wait(30)  # the signal arrives here, between the claim and the hand-over
        return delivery

    monkeypatch.setattr(repos.Deliveries, "claim_next", repos.bound(claim_then_pause))
    ticker = threading.Thread(target=engine.dispatch)
    ticker.start()
    try:
        assert claimed.wait(30)
        stopped: list[bool] = []
        stopper = threading.Thread(target=lambda: stopped.append(engine.stop_claiming(30)))
        stopper.start()
        stopper.join(0.3)
        assert stopper.is_alive() and not stopped  # still waiting for the tick
        go_on.set()
        ticker.join(30)
        stopper.join(30)
        assert stopped == [True]
        assert engine.wait_idle(timeout=60)  # the send that was handed over is waited for
        assert engine.dispatch() == 0  # and nothing is claimed any more
        (delivery,) = deliveries.list_deliveries(app.store.conn())
        assert delivery.state == "published"
    finally:
        go_on.set()
        ticker.join(30)
        engine.close()
        app.close()


def test_an_absurd_retry_after_is_honoured_for_a_day_at_most(env: DaemonEnv) -> None:
    """A platform answering 429 with Retry-After of 30,000 years: the delivery waits a day and
    is asked again, instead of a date overflow in the send path leaving it in `sending`."""
    env.faults([{"route": "webhook", "mode": "rate_limit", "seconds": 1e12, "count": 1}])
    env.queue(1, ["cms"])
    app = env.app()
    try:
        before = utcnow()
        run_once(app)
        (delivery,) = deliveries.list_deliveries(app.store.conn())
        assert delivery.state == "queued", delivery.state
        assert before + timedelta(hours=23) < delivery.not_before
        assert delivery.not_before <= utcnow() + timedelta(days=1)
    finally:
        app.close()
    # every listing can show it
    conn = connect_db(env.db)
    try:
        (stored,) = conn.execute("SELECT not_before FROM deliveries").fetchone()
    finally:
        conn.close()
    assert stored < "2100"
