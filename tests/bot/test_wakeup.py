"""LISTEN/NOTIFY wakes an idle daemon on PostgreSQL (docs/architecture.md §11.5): a daemon
that polls only every ten minutes still publishes a delivery queued while it is idle."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from backends import on_postgresql

from daemon_env import DaemonEnv, make_env


@pytest.fixture
def env(tmp_path: Path):
    environment = make_env(tmp_path, poll_seconds=600)
    yield environment
    environment.sandbox.stop()


def _wait_log(env: DaemonEnv, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in env.log_text():
            return
        time.sleep(0.1)
    raise AssertionError(f"daemon never logged {text!r}:\n{env.log_text()}")


def test_a_delivery_queued_while_the_daemon_idles_is_published_without_a_poll(
    env: DaemonEnv,
) -> None:
    if not on_postgresql():
        pytest.skip("SQLite daemons poll; LISTEN/NOTIFY is PostgreSQL's")
    process = env.start()
    try:
        # the daemon has made its first dispatch and listens; its next poll is 10 min away
        _wait_log(env, "listening for due work on kepubot_due")
        env.queue(1, ["cms"])
        env.wait_for(lambda: env.states() == {"published": 1}, timeout=60)
        # a second one, after the daemon went idle again
        env.queue(1, ["plain"])
        env.wait_for(lambda: env.states() == {"published": 2}, timeout=60)
    finally:
        assert env.stop(process) == 0, env.log_text()
    assert len(env.ledger("webhook")["accepted"]) == 2


def test_a_delivery_scheduled_for_later_is_claimed_at_its_time_not_at_the_next_poll(
    env: DaemonEnv,
) -> None:
    if not on_postgresql():
        pytest.skip("SQLite daemons poll; the next-due timer is the wake-up thread's")
    from datetime import timedelta

    from kepubot.services.posts import PostInput, approve, create_posts, submit
    from kepubot.timeutil import utcnow

    process = env.start()
    try:
        _wait_log(env, "listening for due work on kepubot_due")
        app = env.app()
        now = utcnow()
        at = (now + timedelta(seconds=4)).isoformat()
        post = PostInput(
            title="定时",
            body="定时发布。",
            link="https://kepu.example.org/t",
            channels=["cms"],
            at=at,
        )
        ids = create_posts(app, "ed", [(post, "test")], now=now)
        submit(app, "ed", ids, now=now)
        approve(app, "rev", ids, now=now)  # the NOTIFY comes now; the delivery is due later
        app.close()
        assert env.states() == {"queued": 1}
        env.wait_for(lambda: env.states() == {"published": 1}, timeout=60)
    finally:
        assert env.stop(process) == 0, env.log_text()
