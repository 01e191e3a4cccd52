"""The emergency stop with a running daemon (issue 13 §7): after a pause nothing more is
claimed on the paused channel, the send in flight finishes, nothing is lost, and a resume lets
the rest go, each once on the receiver's ledger."""

from __future__ import annotations

import time
from pathlib import Path

from daemon_env import DaemonEnv, make_env
from kepubot.services import pauses
from kepubot.timeutil import utcnow


def _rows(env: DaemonEnv) -> list[tuple[int, str]]:
    """Through kepubot's own connection: the test runs on either backend."""
    app = env.app()
    try:
        rows = app.store.conn().execute("SELECT id, state FROM deliveries WHERE channel = 'cms'")
        return [(r[0], r[1]) for r in rows.fetchall()]
    finally:
        app.close()


def test_pause_stops_claims_lets_the_send_in_flight_finish_and_loses_nothing(
    tmp_path: Path,
) -> None:
    env = make_env(tmp_path)
    try:
        # the first webhook call takes 3 s: it is in flight when the pause comes
        env.faults([{"route": "webhook", "mode": "delay", "seconds": 3, "count": 1}])
        env.queue(3, ["cms"])
        process = env.start()
        try:
            env.wait_for(lambda: any(s == "sending" for _, s in _rows(env)), timeout=60)
            app = env.app()
            assert pauses.pause(
                app, channels=["cms"], reason="全国哀悼日", actor="ops", now=utcnow()
            ) == ["cms"]
            (paused_at_audit,) = (
                app.store.conn()
                .execute("SELECT MAX(id) FROM audit WHERE action = 'channels.paused'")
                .fetchone()
            )
            app.close()
            # the send in flight finishes and is recorded
            env.wait_for(lambda: [s for _, s in _rows(env)].count("published") == 1, 60)
            time.sleep(1.5)  # several polls (poll_seconds 0.2) of a running daemon
            states = sorted(s for _, s in _rows(env))
            assert states == ["published", "queued", "queued"], states
            app = env.app()
            claims = (
                app.store.conn()
                .execute(
                    "SELECT COUNT(*) FROM audit WHERE action = 'delivery.claimed' AND id > ?",
                    (paused_at_audit,),
                )
                .fetchone()[0]
            )
            app.close()
            assert claims == 0
            assert len(env.ledger("webhook")["accepted"]) == 1
            app = env.app()
            pauses.resume(app, channels=[], actor="ops", now=utcnow())
            app.close()
            env.wait_for(lambda: all(s == "published" for _, s in _rows(env)), timeout=60)
        finally:
            assert env.stop(process) == 0
        ledger = env.ledger("webhook")
        keys = [e["idempotency_key"] for e in ledger["accepted"]]
        assert len(keys) == 3 == len(set(keys)) and ledger["duplicates"] == []
    finally:
        env.sandbox.stop()
