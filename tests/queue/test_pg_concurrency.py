"""Shared write transactions on PostgreSQL (docs/architecture.md §11.3): the delivery engine's
hot path runs side by side, an exclusive write waits for it, and the fences still hold under
real concurrency (threads with connections of their own on the test's database).

The interleavings are made deterministic with a third connection that holds a lock the hot
path meets late (the audit chain's ``audit`` lock, taken just before COMMIT): transactions
stop there, and ``pg_locks`` shows who holds and who waits for what."""

from __future__ import annotations

import functools
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import on_postgresql

from kepubot.app import App
from kepubot.config import load_config
from kepubot.errors import LeaseLost
from kepubot.models import Delivery
from kepubot.queue import audit, deliveries
from kepubot.queue.db import PG_WRITER_LOCK, advisory_lock, transaction
from kepubot.queue.store import Store
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow

CHANNELS = [f"c{i}" for i in range(4)]


def _config(channels: list[str]) -> str:
    text = """
        [kepubot]
        database = "kepubot.db"

        [users.ed]
        roles = ["editor"]
        [users.rev]
        roles = ["reviewer"]
        """
    for name in channels:
        text += f"""
        [channels.{name}]
        type = "webhook"
        url = "http://127.0.0.1:9/webhook/{name}"
        timeout_seconds = 1
        """
    return textwrap.dedent(text)


@dataclass
class Env:
    root: Path
    stores: list[Store] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "kepubot.toml"

    def queue(self, channels: list[str]) -> None:
        """One approved post per entry (its one channel), due now, in this order."""
        app = App(load_config(self.config))
        try:
            now = utcnow()
            items = [
                (PostInput(title=f"科普 {i}", body=f"第 {i} 篇。", channels=[c]), f"t {i}")
                for i, c in enumerate(channels)
            ]
            ids = create_posts(app, "ed", items, now=now)
            submit(app, "ed", ids, now=now)
            approve(app, "rev", ids, now=now)
        finally:
            app.close()

    def connect(self) -> Any:
        """A kepubot connection of its own (SQLite file or the test's PostgreSQL database)."""
        store = Store.for_config(load_config(self.config))
        self.stores.append(store)
        return store.connect()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    (tmp_path / "kepubot.toml").write_text(_config(CHANNELS), encoding="utf-8")
    environment = Env(tmp_path)
    yield environment
    for store in environment.stores:
        store.close()


def _pg_only() -> None:
    if not on_postgresql():
        pytest.skip("PostgreSQL only: SQLite has one writer at a time (BEGIN IMMEDIATE)")


def wait_until(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting until {what}")


class Runner(threading.Thread):
    """Runs ``job`` in a thread; keeps its result or exception."""

    def __init__(self, job: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.job = job
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.job()
        except BaseException as exc:
            self.error = exc

    def outcome(self, timeout: float = 30.0) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the thread is still blocked"
        if self.error is not None:
            raise self.error
        return self.result


def pid(conn: Any) -> int:
    return int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])


def writer_lock(probe: Any) -> dict[int, tuple[str, bool]]:
    """backend pid -> (mode, granted) on the writers' lock (PG_WRITER_LOCK) of this database."""
    rows = probe.execute(
        "SELECT pid, mode, granted FROM pg_locks WHERE locktype = 'advisory'"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " AND classid = 0 AND objid = ? AND objsubid = 1",
        (PG_WRITER_LOCK,),
    ).fetchall()
    return {int(r[0]): (str(r[1]), bool(r[2])) for r in rows}


def waiting(probe: Any, backend: int) -> bool:
    """Is ``backend`` waiting for any lock (advisory, row or transaction)?"""
    row = probe.execute(
        "SELECT COUNT(*) FROM pg_locks WHERE pid = ? AND NOT granted", (backend,)
    ).fetchone()
    return int(row[0]) > 0


def hold_audit(conn: Any) -> None:
    """Open a transaction on ``conn`` holding the audit chain's lock: every transaction that
    appends an audit row stops just before its append (the last statement before COMMIT)."""
    conn.execute("BEGIN")
    advisory_lock(conn, "audit")


def test_hot_path_claims_run_side_by_side_and_an_exclusive_write_waits_for_them(
    env: Env,
) -> None:
    _pg_only()
    # two due on c0, then one on c1, oldest first
    env.queue(["c0", "c0", "c1"])
    probe, blocker, conn_a, conn_b, conn_c = (env.connect() for _ in range(5))
    pid_a, pid_b, pid_c = pid(conn_a), pid(conn_b), pid(conn_c)
    hold_audit(blocker)
    now = utcnow()
    a = Runner(lambda: deliveries.claim_next(conn_a, worker="a:1", now=now, lease_seconds=60))
    a.start()
    wait_until("claim a waits at the audit lock", lambda: waiting(probe, pid_a))
    b = Runner(lambda: deliveries.claim_next(conn_b, worker="b:1", now=now, lease_seconds=60))
    b.start()
    wait_until("claim b waits at the audit lock", lambda: waiting(probe, pid_b))
    # both are inside their claims at once, each holding the writers' lock shared: before,
    # b waited for a's COMMIT at the writers' lock, having done nothing
    holders = writer_lock(probe)
    assert holders[pid_a] == ("ShareLock", True)
    assert holders[pid_b] == ("ShareLock", True)

    def exclusive_write() -> int:
        with transaction(conn_c):
            # the first thing an exclusive writer sees is every shared writer's work committed
            return int(
                conn_c.execute(
                    "SELECT COUNT(*) FROM deliveries WHERE state = 'claimed'"
                ).fetchone()[0]
            )

    c = Runner(exclusive_write)
    c.start()
    wait_until("the exclusive write waits", lambda: writer_lock(probe).get(pid_c) is not None)
    assert writer_lock(probe)[pid_c] == ("ExclusiveLock", False)
    time.sleep(0.3)
    assert c.is_alive() and waiting(probe, pid_c)

    blocker.execute("COMMIT")
    first, second = a.outcome(), b.outcome()
    assert c.outcome() == 2
    # one send per account: b passed over c0's second delivery (a held c0) and took c1's
    assert (first.channel, second.channel) == ("c0", "c1")
    assert audit.verify(probe).ok


def test_a_stale_lease_loses_to_the_new_owner_while_both_write_at_once(env: Env) -> None:
    _pg_only()
    env.queue(["c0"])
    probe, blocker, conn_old, conn_new = (env.connect() for _ in range(4))
    pid_new = pid(conn_new)
    now = utcnow()
    stale = deliveries.claim_next(conn_old, worker="old:1", now=now, lease_seconds=1)
    assert stale is not None
    later = now + timedelta(seconds=5)
    assert deliveries.expire_leases(probe, now=later, actor="reaper") == (1, 0)
    fresh = deliveries.claim_next(conn_new, worker="new:1", now=later, lease_seconds=60)
    assert fresh is not None and fresh.id == stale.id

    def send(conn: Any, delivery: Delivery, worker: str) -> int:
        return deliveries.begin_send(
            conn, delivery=delivery, worker=worker, now=later, lease_seconds=60
        )

    hold_audit(blocker)
    new = Runner(lambda: send(conn_new, fresh, "new:1"))
    new.start()
    # the new owner has changed the row and waits to append its audit row, holding the row
    wait_until("the new owner waits at the audit lock", lambda: waiting(probe, pid_new))
    # the stale worker's intent, in a shared transaction beside the owner's open one: its
    # fenced UPDATE finds the committed row leased to another (version 2) and is refused
    # without waiting for anyone
    with pytest.raises(LeaseLost):
        send(conn_old, stale, "old:1")
    assert writer_lock(probe)[pid_new] == ("ShareLock", True)
    blocker.execute("COMMIT")
    assert isinstance(new.outcome(), int)

    # the outcome: the stale worker's record loses while the owner's is being written
    hold_audit(blocker)
    mine = Runner(
        lambda: deliveries.record_published(
            conn_new, delivery=fresh, worker="new:1", now=later, remote_id="r1", remote_url=None
        )
    )
    mine.start()
    wait_until("the owner's outcome waits at the audit lock", lambda: waiting(probe, pid_new))
    stale.state = "sending"  # what the stale worker believes
    with pytest.raises(LeaseLost):
        deliveries.record_unknown(
            conn_old, delivery=stale, worker="old:1", now=later, error="timed out"
        )
    blocker.execute("COMMIT")
    mine.outcome()
    row = deliveries.get(probe, fresh.id)
    assert (row.state, row.remote_id, row.lease_owner) == ("published", "r1", None)
    attempts = probe.execute(
        "SELECT COUNT(*), COUNT(finished_at) FROM attempts WHERE delivery_id = ?", (fresh.id,)
    ).fetchone()
    assert tuple(attempts) == (1, 1)
    assert audit.verify(probe).ok


def test_two_daemons_polling_one_job_the_second_waits_and_sees_the_first_outcome(
    env: Env,
) -> None:
    """record_polled decides from the row it read: the read locks it (FOR UPDATE), so a second
    poller waits for the first one's COMMIT and is then refused, instead of moving the
    not_before of a delivery that is already published."""
    _pg_only()
    from kepubot.errors import InvalidTransition

    env.queue(["c0"])
    probe, blocker, conn_a, conn_b = (env.connect() for _ in range(4))
    pid_a, pid_b = pid(conn_a), pid(conn_b)
    now = utcnow()
    delivery = deliveries.claim_next(conn_a, worker="a:1", now=now, lease_seconds=60)
    assert delivery is not None
    deliveries.begin_send(conn_a, delivery=delivery, worker="a:1", now=now, lease_seconds=60)
    deliveries.record_processing(
        conn_a, delivery=delivery, worker="a:1", now=now, progress={"job": "j1"}, poll_at=now
    )
    hold_audit(blocker)
    first = Runner(
        lambda: deliveries.record_polled(
            conn_a, delivery_id=delivery.id, actor="a:1", now=now, published=("r1", None)
        )
    )
    first.start()
    wait_until("the first poller waits at the audit lock", lambda: waiting(probe, pid_a))
    later = now + timedelta(minutes=5)
    second = Runner(
        lambda: deliveries.record_polled(
            conn_b, delivery_id=delivery.id, actor="b:1", now=now, poll_at=later
        )
    )
    second.start()
    wait_until("the second poller waits for the row", lambda: waiting(probe, pid_b))
    holders = writer_lock(probe)
    assert holders[pid_a] == ("ShareLock", True) and holders[pid_b] == ("ShareLock", True)
    blocker.execute("COMMIT")
    assert first.outcome() == "published"
    with pytest.raises(InvalidTransition, match="is published, not processing"):
        second.outcome()
    row = deliveries.get(probe, delivery.id)
    # the second poller's not_before (``later``) was never written
    assert row.state == "published" and row.not_before < later - timedelta(minutes=1)
    assert audit.verify(probe).ok


def test_racing_workers_claim_each_delivery_once_and_one_per_account(env: Env) -> None:
    """Threads with connections of their own claim, send and record the same due rows at once
    (on both backends). Each delivery is claimed and published once, and never two of one
    channel are in flight together: the audit chain's order is the commit order (its lock is
    held from the append to COMMIT), so it is replayed to check that."""
    per_channel = 12
    env.queue([c for _ in range(per_channel) for c in CHANNELS])
    holder: dict[str, str] = {}
    guard = threading.Lock()
    overlaps: list[str] = []
    failed = threading.Event()

    def work(worker: str) -> int:
        try:
            return loop(worker)
        except BaseException:
            failed.set()  # the others stop too, and the error is raised by outcome()
            raise

    def loop(worker: str) -> int:
        conn = env.connect()
        done = 0
        while not failed.is_set():
            delivery = deliveries.claim_next(conn, worker=worker, now=utcnow(), lease_seconds=60)
            if delivery is None:
                if conn.execute(
                    "SELECT COUNT(*) FROM deliveries WHERE state != 'published'"
                ).fetchone()[0]:
                    time.sleep(0.01)  # others hold the remaining channels for now
                    continue
                return done
            with guard:
                if delivery.channel in holder:
                    overlaps.append(
                        f"{worker} and {holder[delivery.channel]} on {delivery.channel}"
                    )
                holder[delivery.channel] = worker
            deliveries.begin_send(
                conn, delivery=delivery, worker=worker, now=utcnow(), lease_seconds=60
            )
            with guard:
                holder.pop(delivery.channel, None)
            deliveries.record_published(
                conn,
                delivery=delivery,
                worker=worker,
                now=utcnow(),
                remote_id=f"r{delivery.id}",
                remote_url=None,
            )
            done += 1
        return done

    runners = [Runner(functools.partial(work, f"w{i}:1")) for i in range(6)]
    for runner in runners:
        runner.start()
    total = sum(runner.outcome(timeout=240) for runner in runners)
    assert total == per_channel * len(CHANNELS)
    assert overlaps == []
    probe = env.connect()
    channel_of = {int(r[0]): r[1] for r in probe.execute("SELECT id, channel FROM deliveries")}
    assert set(Counter(r[0] for r in probe.execute("SELECT state FROM deliveries"))) == {
        "published"
    }
    per_delivery = Counter(
        int(r[0]) for r in probe.execute("SELECT delivery_id FROM attempts").fetchall()
    )
    assert set(per_delivery.values()) == {1} and len(per_delivery) == total
    assert audit.verify(probe).ok
    # replay the chain: between a delivery's claim and its publication no other claim on its
    # channel
    in_flight: dict[str, int] = {}
    claims: Counter[int] = Counter()
    for row in probe.execute(
        "SELECT action, delivery_id FROM audit WHERE action IN"
        " ('delivery.claimed', 'delivery.published') ORDER BY id"
    ):
        delivery_id = int(row[1])
        channel = channel_of[delivery_id]
        if row[0] == "delivery.claimed":
            claims[delivery_id] += 1
            assert channel not in in_flight, (
                f"delivery {delivery_id} claimed while {in_flight[channel]} was in flight"
            )
            in_flight[channel] = delivery_id
        else:
            assert in_flight.pop(channel) == delivery_id
    assert set(claims.values()) == {1} and len(claims) == total
