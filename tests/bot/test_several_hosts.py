"""Three daemons as separate processes standing in for three hosts (KEPUBOT_HOSTNAME), on both
backends: answers lost after the platform accepted, one host killed with SIGKILL mid-run.
Every post reaches the receiver exactly once (the sandbox's ledger), and `kepubot status`
lists the daemons of every host (docs/architecture.md §11.3, docs/operations.md §15)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from backends import connect_db

from daemon_env import DaemonEnv, make_env

HOSTS = ("host-a", "host-b", "host-c")


@pytest.fixture
def env(tmp_path: Path):
    # leases short enough that the killed host's claims are taken over within the test
    environment = make_env(tmp_path, lease_seconds=3)
    yield environment
    environment.sandbox.stop()


def keys_received(env: DaemonEnv) -> Counter[str]:
    ledger = env.ledger("webhook")
    counted: Counter[str] = Counter()
    for entry in ledger["accepted"] + ledger["duplicates"]:
        counted[entry.get("idempotency_key") or entry["body"].get("idempotency_key", "")] += 1
    return counted


def hosts_seen(env: DaemonEnv) -> set[str]:
    conn = connect_db(env.db)
    try:
        return {row[0] for row in conn.execute("SELECT host FROM daemons").fetchall()}
    finally:
        conn.close()


def test_three_hosts_lost_answers_and_a_killed_host_publish_each_post_once(
    env: DaemonEnv,
) -> None:
    env.faults(
        [
            {"route": "webhook", "mode": "drop_after", "rate": 0.3},
            {"route": "*", "mode": "delay", "seconds": 0.02},
        ],
        seed=5,
    )
    processes = {host: env.start(KEPUBOT_HOSTNAME=host) for host in HOSTS}
    try:
        # every host is up (its heartbeat written) before the work arrives, so that all three
        # compete for it; once it is under way, host-b is lost (no shutdown, leases left)
        env.wait_for(lambda: hosts_seen(env) == set(HOSTS), timeout=60)
        env.queue(40, ["cms"])
        env.wait_for(lambda: env.states().get("published", 0) >= 5, timeout=60)
        processes["host-b"].kill()
        processes["host-b"].wait()
        env.wait_for(lambda: env.states() == {"published": 40}, timeout=120)
        status = subprocess.run(
            [sys.executable, "-m", "kepubot", "--config", str(env.config), "status", "--json"],
            cwd=env.root,
            env=env.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        codes = {h: env.stop(p) for h, p in processes.items() if h != "host-b"}
    assert codes == {"host-a": 0, "host-c": 0}, env.log_text()
    received = keys_received(env)
    assert len(received) == 40 and set(received.values()) == {1}, received
    assert env.ledger("webhook")["duplicates"] == []

    assert status.returncode == 0, status.stderr
    daemons = json.loads(status.stdout)["daemons"]
    assert {d["host"] for d in daemons} == set(HOSTS)
    running = {d["host"] for d in daemons if d["running"]}
    assert {"host-a", "host-c"} <= running  # host-b's last heartbeat may still be fresh

    conn = connect_db(env.db)
    try:
        owners = {
            row[0].rpartition(":")[0]
            for row in conn.execute(
                "SELECT actor FROM audit WHERE action = 'delivery.claimed'"
            ).fetchall()
        }
    finally:
        conn.close()
    # every claim names its host (which of them won how many claims is up to the scheduler)
    assert owners and owners <= set(HOSTS), owners
