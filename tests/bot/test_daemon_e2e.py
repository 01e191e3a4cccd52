"""The daemon end to end: real `kepubot run` subprocesses, a real database file, the sandbox's
real HTTP server. What is counted is what the receiving side got."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from backends import connect_db, on_postgresql

from daemon_env import CMS_SECRET, WECOM_KEY, DaemonEnv, feed_ids, make_env
from kepubot.bot.crash import POINTS


@pytest.fixture
def env(tmp_path: Path):
    environment = make_env(tmp_path)
    yield environment
    environment.sandbox.stop()


def keys_received(env: DaemonEnv, route: str = "webhook") -> Counter[str]:
    ledger = env.ledger(route)
    counted: Counter[str] = Counter()
    for entry in ledger["accepted"] + ledger["duplicates"]:
        counted[entry.get("idempotency_key") or entry["body"].get("idempotency_key", "")] += 1
    return counted


def integrity_ok(env: DaemonEnv) -> bool:
    conn = connect_db(env.db)
    try:
        if on_postgresql():  # no PRAGMA there: the audit chain must verify end to end
            from kepubot.queue import audit

            return audit.verify(conn).ok
        return conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("channel", ["cms", "news-feed", "plain"])
def test_every_crash_point_publishes_once_or_asks_a_person(
    env: DaemonEnv, point: str, channel: str
) -> None:
    env.queue(1, [channel])
    crashed = env.run_once(KEPUBOT_CRASH_AT=point)
    assert crashed.returncode == -signal.SIGKILL, env.log_text()
    states = env.settle(timeout=30)
    if channel == "news-feed":
        assert states == {"published": 1}
        assert len(feed_ids(env)) == 1
        return
    received = keys_received(env)
    assert all(count == 1 for count in received.values()), received
    if channel == "plain" and point in ("after-intent", "after-response"):
        # The request may have gone out and this receiver cannot be asked: a person decides.
        assert states == {"needs_attention": 1}
        assert len(received) == (1 if point == "after-response" else 0)
    else:
        assert states == {"published": 1}
        assert len(received) == 1


def test_accepted_but_never_answered_is_reconciled_not_resent(env: DaemonEnv) -> None:
    env.faults([{"route": "webhook", "mode": "hang_after", "seconds": 3, "count": 1}])
    env.queue(1, ["cms"])
    env.run_once()
    assert env.states() == {"unknown": 1}
    states = env.settle(timeout=30)
    assert states == {"published": 1}
    assert list(keys_received(env).values()) == [1]
    assert "outcome unknown" in env.log_text()


def test_response_lost_after_accepting_on_30_percent(env: DaemonEnv) -> None:
    env.faults([{"route": "webhook", "mode": "drop_after", "rate": 0.3}], seed=3)
    env.queue(20, ["cms"])
    process = env.start()
    try:
        env.wait_for(lambda: env.states().get("published", 0) == 20, timeout=90)
    finally:
        assert env.stop(process) == 0
    received = keys_received(env)
    assert len(received) == 20 and set(received.values()) == {1}
    assert env.ledger("webhook")["duplicates"] == []


def test_kill_nine_storm(env: DaemonEnv) -> None:
    env.queue(100, ["cms", "news-feed"])  # 200 deliveries
    rng = random.Random(11)
    for _ in range(20):
        process = env.start()
        time.sleep(rng.uniform(0.1, 0.6))
        process.kill()
        process.wait()
    process = env.start()
    try:
        env.wait_for(env.settled, timeout=120)
    finally:
        env.stop(process)
    states = env.states()
    assert set(states) <= {"published", "needs_attention"}, states
    assert states.get("published", 0) + states.get("needs_attention", 0) == 200
    received = keys_received(env)
    assert all(n == 1 for n in received.values()), "a post reached the CMS twice"
    assert len(set(feed_ids(env))) == len(feed_ids(env)) == 100
    assert integrity_ok(env)


def test_three_daemons_share_one_database(env: DaemonEnv) -> None:
    # a little latency, as on a real network, so that the daemons overlap
    env.faults([{"route": "*", "mode": "delay", "seconds": 0.02}])
    env.queue(150, ["cms", "staff"])  # 300 deliveries
    # three hosts (docs/architecture.md §11.3): each daemon names its own in its leases
    processes = [env.start(KEPUBOT_HOSTNAME=f"host-{i}") for i in range(3)]
    try:
        env.wait_for(lambda: env.states().get("published", 0) == 300, timeout=120)
    finally:
        codes = [env.stop(p) for p in processes]
    assert codes == [0, 0, 0]
    received = keys_received(env)
    assert len(received) == 150 and set(received.values()) == {1}
    assert len(env.ledger("wecom")["accepted"]) == 150
    assert "database is locked" not in env.log_text()
    conn = connect_db(env.db)
    # each delivery was claimed once and sent once, by the daemon that claimed it
    rows = conn.execute(
        "SELECT delivery_id, action, actor FROM audit WHERE action IN"
        " ('delivery.claimed', 'delivery.sending') ORDER BY id"
    ).fetchall()
    conn.close()
    claims = Counter(d for d, action, _ in rows if action == "delivery.claimed")
    assert len(claims) == 300 and set(claims.values()) == {1}
    claimer = {d: actor for d, action, actor in rows if action == "delivery.claimed"}
    assert all(claimer[d] == actor for d, action, actor in rows if action == "delivery.sending")
    assert {actor.rpartition(":")[0] for actor in claimer.values()} <= {
        "host-0",
        "host-1",
        "host-2",
    }


def test_retry_after_is_honoured_and_other_channels_keep_flowing(env: DaemonEnv) -> None:
    env.faults([{"route": "webhook", "mode": "rate_limit", "seconds": 3, "count": 1}])
    env.queue(3, ["cms", "news-feed"])
    process = env.start()
    try:
        env.wait_for(lambda: env.states().get("published", 0) == 6, timeout=60)
    finally:
        env.stop(process)
    webhook = [r for r in env.requests_seen() if r["route"] == "webhook" and r["method"] == "POST"]
    limited = [r for r in webhook if r["status"] == 429]
    assert len(limited) == 1
    after = [r for r in webhook if r["at"] > limited[0]["at"]]
    assert after and min(r["at"] for r in after) >= limited[0]["at"] + 3 - 0.05
    # The feed did not wait for the CMS's breaker.
    conn = connect_db(env.db)
    feed_done = conn.execute(
        "SELECT MAX(published_at) FROM deliveries WHERE channel = 'news-feed'"
    ).fetchone()[0]
    cms_first = conn.execute(
        "SELECT MIN(published_at) FROM deliveries WHERE channel = 'cms'"
    ).fetchone()[0]
    conn.close()
    assert feed_done < cms_first


def test_sigterm_during_a_burst(env: DaemonEnv) -> None:
    env.faults([{"route": "webhook", "mode": "delay", "seconds": 0.2}])
    env.queue(40, ["cms"])
    process = env.start()
    env.wait_for(lambda: env.states().get("published", 0) >= 3, timeout=30)
    # the daemon gives in-flight sends shutdown_seconds (5) and exits 0; how long the exit takes
    # on a busy machine is not what is tested, only that it comes (the generous bound is for a
    # daemon that would hang) and leaves no claim behind
    code = env.stop(process, timeout=60)
    assert code == 0
    assert "claimed" not in env.states()
    states = env.settle(timeout=60)
    assert states == {"published": 40}
    assert set(keys_received(env).values()) == {1}


def test_secrets_never_reach_logs_or_database(env: DaemonEnv) -> None:
    env.queue(3, ["cms", "staff"])
    env.faults([{"route": "wecom", "mode": "error_before", "status": 500, "count": 1}])
    env.settle(timeout=30, KEPUBOT_LOG_LEVEL="debug")
    text = env.log_text()
    assert "DEBUG" in text
    raw = b"".join(p.read_bytes() for p in env.root.glob("kepubot.db*"))
    for secret in (CMS_SECRET, WECOM_KEY):
        assert secret not in text
        assert secret.encode() not in raw


def test_refused_credentials_pause_the_channel_until_new_ones_are_configured(
    env: DaemonEnv,
) -> None:
    env.queue(3, ["cms", "news-feed"])
    env.run_once(KEPUBOT_TEST_CMS_SECRET="an-old-secret")
    states = env.states()
    assert states == {"published": 3, "queued": 3}, states  # the feed went on; the CMS waits
    log = env.log_text()
    assert "needs re-authorization" in log and "an-old-secret" not in log
    env.run_once(KEPUBOT_TEST_CMS_SECRET="an-old-secret")
    assert env.states() == {"published": 3, "queued": 3}  # still paused, nothing lost
    refused = [r for r in env.requests_seen() if r["route"] == "webhook" and r["status"] == 401]
    assert len(refused) == 1  # the open breaker kept the daemon from hammering the receiver
    # The operator configures the right secret: the next daemon resumes at once.
    assert env.settle(timeout=30) == {"published": 6}
    assert "credentials changed" in env.log_text()
    assert set(keys_received(env).values()) == {1}
