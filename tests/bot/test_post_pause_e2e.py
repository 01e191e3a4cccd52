"""Pausing a post with a running daemon (issue 16, docs/delivery.md §18): the paused post's
delivery is not claimed while it is paused, the send already in flight (of another paused
post) finishes, a post that is not paused goes as usual, and after the resume the held
delivery is published, each once on the receiver's ledger. Runs on either backend."""

from __future__ import annotations

import time
from pathlib import Path

from daemon_env import DaemonEnv, make_env
from kepubot.services import postpause
from kepubot.timeutil import utcnow


def _rows(env: DaemonEnv) -> dict[int, str]:
    """post id -> its cms delivery's state, through kepubot's own repositories."""
    app = env.app()
    try:
        found: dict[int, str] = {}
        for post_id in range(1, 4):
            for d in app.store.deliveries.for_post(post_id):
                found[post_id] = d.state
        return found
    finally:
        app.close()


def _claims_of(env: DaemonEnv, post_id: int) -> list[str]:
    app = env.app()
    try:
        return [
            r.at for r in app.store.audit.rows_for_post(post_id) if r.action == "delivery.claimed"
        ]
    finally:
        app.close()


def test_a_paused_post_waits_and_goes_after_resume(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    try:
        # the first webhook call takes 3 s: it is in flight when the pause comes
        env.faults([{"route": "webhook", "mode": "delay", "seconds": 3, "count": 1}])
        ids = env.queue(3, ["cms"])
        assert ids == [1, 2, 3]
        process = env.start()
        try:
            env.wait_for(lambda: "sending" in _rows(env).values(), timeout=60)
            in_flight = next(p for p, s in _rows(env).items() if s == "sending")
            held, free = [p for p in ids if p != in_flight]
            app = env.app()
            # the author pauses the post being sent and one still queued
            assert postpause.pause(
                app, "ed", [in_flight, held], reason="等待专家复核", now=utcnow()
            ) == [in_flight, held]
            app.close()
            # the send in flight finishes and is recorded; the post not paused goes too
            env.wait_for(
                lambda: _rows(env)[in_flight] == "published" and _rows(env)[free] == "published",
                timeout=60,
            )
            time.sleep(1.5)  # several polls (poll_seconds 0.2) of a running daemon
            assert _rows(env)[held] == "queued"
            assert _claims_of(env, held) == []
            assert len(env.ledger("webhook")["accepted"]) == 2
            app = env.app()
            assert postpause.resume(app, "ed", [held], now=utcnow()) == [held]
            app.close()
            env.wait_for(lambda: _rows(env)[held] == "published", timeout=60)
        finally:
            assert env.stop(process) == 0
        ledger = env.ledger("webhook")
        keys = [e["idempotency_key"] for e in ledger["accepted"]]
        assert len(keys) == 3 == len(set(keys)) and ledger["duplicates"] == []
        assert len(_claims_of(env, held)) == 1
    finally:
        env.sandbox.stop()
