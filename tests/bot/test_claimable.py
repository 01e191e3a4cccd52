"""The daemon's read before a claim (kepubot/queue/wakeup.py ``anything_claimable``) never
says "nothing" when ``claim_next`` would find something, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon_env import DaemonEnv, make_env
from kepubot.queue import deliveries
from kepubot.queue.wakeup import anything_claimable
from kepubot.timeutil import utcnow


@pytest.fixture
def env(tmp_path: Path):
    environment = make_env(tmp_path)
    yield environment
    environment.sandbox.stop()


def test_claimable_follows_what_a_claim_finds(env: DaemonEnv) -> None:
    app = env.app()
    conn = app.store.conn()
    try:
        assert not anything_claimable(conn, utcnow())  # nothing queued
        env.queue(2, ["cms"])
        assert anything_claimable(conn, utcnow())
        first = deliveries.claim_next(conn, worker="t:1", now=utcnow(), lease_seconds=60)
        assert first is not None and first.channel == "cms"
        # the other cms delivery waits for the account's send in flight: nothing to claim
        assert not anything_claimable(conn, utcnow())
        assert deliveries.claim_next(conn, worker="t:1", now=utcnow(), lease_seconds=60) is None
        env.queue(1, ["plain"])
        assert anything_claimable(conn, utcnow())
        second = deliveries.claim_next(conn, worker="t:1", now=utcnow(), lease_seconds=60)
        assert second is not None and second.channel == "plain"
    finally:
        app.close()
