"""SQLite and PostgreSQL side by side, in one run (issue 12 §4; docs/architecture.md §11).

    .venv/bin/python bench/backends.py            # 2,000 deliveries per run, lateness over 60 s
    .venv/bin/python bench/backends.py --quick    # 500 deliveries, lateness over 30 s

For each backend:

- **raw limit**: the floor of one delivery on that backend, measured in the same run just
  before each throughput run: ``claim_next`` + ``begin_send`` + ``record_published`` (3
  committed transactions, kepubot's own queue functions) and one keep-alive POST to the
  0 ms webhook receiver (``bench/_receiver.py``, its own process), single-threaded;
- **dispatch throughput**: ``run_once(App)`` in-process (start-up excluded), workers = 8,
  with 1 channel and with 8 channels; the figure is deliveries per second over the sending
  span (first send's start to last send's end, from the attempts table), and its ratio to
  that backend's raw limit (goal ≥ 0.5). On PostgreSQL a thread samples
  ``pg_stat_activity`` and ``pg_locks`` every 10 ms meanwhile: how many of the run's backends
  are busy, how many wait for the writers' lock (docs/architecture.md §11.3) and how many for
  another advisory lock (``audit``, ``limits:``);
- **lateness**: ``kepubot run`` as a subprocess with deliveries due at spread times; lateness
  = attempt start − due time; p50/p99 (goal p99 ≤ 1.5 s). SQLite polls (poll_seconds = 1);
  PostgreSQL once with poll_seconds = 1 and once with poll_seconds = 60, where only its
  LISTEN/NOTIFY wake-ups and the next-due timer (docs/architecture.md §11.5) can be on time.

PostgreSQL is the server at ``KEPUBOT_BENCH_PG`` (default the tests' 127.0.0.1:5432, user
postgres); every run gets a fresh database, dropped afterwards. Without a server only SQLite
runs, and the output says so. Nothing asserts on timing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OUT, header, percentile
from daemon import (
    Receiver,
    bytecode_env,
    kepubot_argv,
    queue_posts,
    receiver,
    stop_daemon,
)

DIR = OUT / "backends"
PG_SERVER = os.environ.get("KEPUBOT_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CHANNELS = [f"cms{i}" for i in range(8)]


def pg_admin() -> Any:
    import psycopg

    return psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3)


def pg_available() -> str | None:
    try:
        with pg_admin():
            return None
    except Exception as exc:
        return str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)


@contextmanager
def database(backend: str, root: Path) -> Iterator[str]:
    """A fresh database: a SQLite file under ``root`` or a new PostgreSQL database (its URL)."""
    if backend == "sqlite":
        yield "kepubot.db"
        return
    name = f"kp_bench_{uuid.uuid4().hex[:10]}"
    with pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER.rpartition('/')[0]}/{name}"
    finally:
        with pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def workspace(root: Path, db: str, base: str, daemon: dict[str, Any]) -> Path:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    lines = ["[kepubot]", f"database = {json.dumps(db)}", "", "[daemon]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in daemon.items()]
    lines += ["", "[users.ed]", 'roles = ["editor"]', "[users.rev]", 'roles = ["reviewer"]']
    for name in CHANNELS:
        lines += [
            "",
            f"[channels.{name}]",
            'type = "webhook"',
            f'url = "{base}/webhook/{name}"',
            "timeout_seconds = 10",
        ]
    config = root / "kepubot.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def store_for(config: Path) -> Any:
    from kepubot.config import load_config
    from kepubot.queue.store import Store

    return Store.for_config(load_config(config))


def queue(config: Path, count: int, k: int, at_of: Any = None) -> None:
    from kepubot.queue.db import dialect

    store = store_for(config)
    conn = store.conn()
    is_pg = dialect(conn) == "postgresql"
    store.close()
    if is_pg:
        # queue_posts ends with a SQLite checkpoint; on PostgreSQL it has nothing to do
        _queue_pg(config, count, k, at_of)
    else:
        queue_posts(config, count, lambda i: CHANNELS[i % k], at_of)


def _queue_pg(config: Path, count: int, k: int, at_of: Any) -> None:
    import random

    from _common import body_for, title_for
    from daemon import load_app

    from kepubot.services.posts import PostInput, approve, create_posts, submit
    from kepubot.timeutil import utcnow

    rng = random.Random(20261205)
    app = load_app(config)
    items = [
        (
            PostInput(
                title=title_for(rng, i),
                body=body_for(rng, 6),
                summary="科普 benchmark",
                link=f"https://kepu.example.org/a/{i}",
                tags=["科普"],
                channels=[CHANNELS[i % k]],
                at=at_of(i).isoformat() if at_of else None,
            ),
            f"bench {i}",
        )
        for i in range(count)
    ]
    ids = create_posts(app, "ed", items, now=utcnow())
    submit(app, "ed", ids, now=utcnow())
    approve(app, "rev", ids, now=utcnow())
    app.close()


def raw_limit(config: Path, box: Receiver, count: int) -> float:
    """Deliveries per second of the raw loop (see the module docstring)."""
    import requests

    from kepubot.queue import deliveries
    from kepubot.timeutil import utcnow

    store = store_for(config)
    conn = store.conn()
    session = requests.Session()
    body = json.dumps({"title": "科普", "body": "正文。" * 60}, ensure_ascii=False).encode()
    worker = f"raw:{os.getpid()}"
    done = 0
    started = time.perf_counter()
    for _ in range(count):
        delivery = deliveries.claim_next(conn, worker=worker, now=utcnow(), lease_seconds=300)
        if delivery is None:
            break
        deliveries.begin_send(
            conn, delivery=delivery, worker=worker, now=utcnow(), lease_seconds=300
        )
        response = session.post(
            f"{box.base}/webhook/raw",
            data=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": f"raw-{uuid.uuid4()}"},
            timeout=10,
        )
        if response.status_code != 201:
            raise SystemExit(f"raw POST answered {response.status_code}")
        deliveries.record_published(
            conn,
            delivery=delivery,
            worker=worker,
            now=utcnow(),
            remote_id=response.json()["id"],
            remote_url=None,
        )
        done += 1
    seconds = time.perf_counter() - started
    session.close()
    store.close()
    return done / seconds


def sending_span(config: Path) -> tuple[int, float]:
    from kepubot.timeutil import from_db

    store = store_for(config)
    try:
        n, first, last = (
            store.conn()
            .execute("SELECT COUNT(*), MIN(started_at), MAX(finished_at) FROM attempts")
            .fetchone()
        )
    finally:
        store.close()
    return int(n), (from_db(last) - from_db(first)).total_seconds() if n else float("nan")


class LockSampler:
    """Samples the database's other backends every 10 ms while it runs (PostgreSQL): the mean
    number busy (not idle), waiting for the writers' lock, and waiting for another advisory
    lock."""

    def __init__(self, url: str) -> None:
        import threading

        self.url = url
        self.samples: list[tuple[int, int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        from kepubot.queue.db import PG_WRITER_LOCK

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                row = conn.execute(
                    "SELECT (SELECT COUNT(*) FROM pg_stat_activity"
                    "  WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    "  AND state NOT LIKE 'idle%%'),"
                    " COUNT(*) FILTER (WHERE writers), COUNT(*) FILTER (WHERE NOT writers)"
                    " FROM (SELECT classid = 0 AND objid = %s::oid AND objsubid = 1 AS writers"
                    "  FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database ="
                    "  (SELECT oid FROM pg_database WHERE datname = current_database())) w",
                    (PG_WRITER_LOCK,),
                ).fetchone()
                assert row is not None
                self.samples.append((int(row[0]), int(row[1]), int(row[2])))
                time.sleep(0.01)

    def __enter__(self) -> LockSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def means(self) -> tuple[float, float, float]:
        if not self.samples:
            return float("nan"), float("nan"), float("nan")
        return tuple(statistics.fmean(s[i] for s in self.samples) for i in range(3))  # type: ignore[return-value]


def dispatch(config: Path, url: str | None = None) -> tuple[int, float, float, str]:
    """run_once(App) in-process: (published, call seconds, sending-span seconds, lock waits:
    on PostgreSQL (``url``) the sampled means of busy backends and of those waiting for
    advisory locks, as text)."""
    from daemon import load_app

    from kepubot.bot.daemon import run_once
    from kepubot.bot.dispatch import Engine
    from kepubot.channels.base import markdown_to_html

    app = load_app(config)
    app.store.conn()
    for channel in app.channels.values():
        channel.session  # noqa: B018
    markdown_to_html("warm *up*")
    engine = Engine(app)
    sampler = LockSampler(url) if url else contextlib.nullcontext()
    try:
        with sampler:
            started = time.perf_counter()
            run_once(app, engine)
            seconds = time.perf_counter() - started
    finally:
        engine.close()
        app.close()
    n, span = sending_span(config)
    waits = ""
    if isinstance(sampler, LockSampler):
        busy, writers, other = sampler.means()
        waits = (
            f"   backends busy {busy:3.1f}, waiting: writers' lock {writers:3.1f},"
            f" other advisory {other:3.1f}"
        )
    return n, seconds, span, waits


def lateness(config: Path, count: int, span: float) -> list[float]:
    """Start ``kepubot run``, queue ``count`` deliveries due over ``span`` seconds starting
    15 s from now, wait until all are published; returns each send's lateness in seconds."""
    import subprocess

    from kepubot.timeutil import from_db

    log = config.parent / "daemon.log"
    process = subprocess.Popen(
        kepubot_argv(config, "run"),
        cwd=config.parent,
        env=bytecode_env(),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
    )
    try:
        first = datetime.now(UTC) + timedelta(seconds=15)
        queue(config, count, 8, lambda i: first + timedelta(seconds=span * i / count))
        deadline = time.monotonic() + span + 120
        store = store_for(config)
        conn = store.conn()
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'published'"
            ).fetchone()
            if row[0] >= count:
                break
            time.sleep(0.5)
        rows = conn.execute(
            "SELECT d.due_at, MIN(a.started_at) FROM deliveries d"
            " JOIN attempts a ON a.delivery_id = d.id GROUP BY d.id, d.due_at"
        ).fetchall()
        store.close()
    finally:
        stop_daemon(process)
    if len(rows) < count:
        print(f"     WARNING: only {len(rows)} of {count} sent; see {log}")
    return [(from_db(started) - from_db(due)).total_seconds() for due, started in rows]


SEED = """
INSERT INTO posts (id, title, body, author, state, content_hash, approved_hash, channels,
                   created_at, updated_at)
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
SELECT i, 'post ' || i, 'body', 'ed', 'approved', 'h' || i, 'h' || i, '["cms0"]',
       '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM s
"""
SEED_DELIVERIES = """
INSERT INTO deliveries (id, post_id, channel, state, due_at, not_before, content_hash,
                        published_at, remote_id, created_at, updated_at)
SELECT id, id, 'cms' || (id % 8), CASE WHEN id > ? THEN 'queued' ELSE 'published' END,
       '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'h' || id,
       CASE WHEN id > ? THEN NULL ELSE '2026-01-01T00:00:00Z' END, 'r' || id,
       '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z' FROM posts
"""


def claim_cost(config: Path, size: int, calls: int) -> tuple[float, float]:
    """Median seconds of ``claim_next`` (a whole committed claim) with ``size`` deliveries,
    the newest 100 queued and due, the rest published history; each claim is given back
    (untimed) so that the same rows stay due."""
    from kepubot.queue import deliveries
    from kepubot.queue.db import transaction
    from kepubot.timeutil import utcnow

    store = store_for(config)
    conn = store.conn()
    with transaction(conn):
        conn.execute(SEED, (size,))
        conn.execute(SEED_DELIVERIES, (size - 100, size - 100))
    if store.dialect == "postgresql":
        conn.execute("SELECT setval(pg_get_serial_sequence('deliveries', 'id'), ?)", (size,))
        conn.execute("SELECT setval(pg_get_serial_sequence('audit', 'id'), 1)")
        conn.execute("ANALYZE")
        # the bulk load's WAL is checkpointed now, not during the measurement (a commit right
        # after a checkpoint writes whole pages: that is the server's I/O, not the claim)
        conn.execute("CHECKPOINT")
    else:
        conn.execute("ANALYZE")
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        delivery = deliveries.claim_next(conn, worker="bench:1", now=utcnow(), lease_seconds=60)
        samples.append(time.perf_counter() - started)
        assert delivery is not None
        deliveries.release_claim(conn, delivery=delivery, worker="bench:1", now=utcnow())
    floor = []  # a one-row committed write: what any commit costs on this database
    with transaction(conn):
        conn.execute("INSERT INTO meta (key, value) VALUES ('bench', '0')")
    for i in range(calls):
        started = time.perf_counter()
        with transaction(conn):
            conn.execute("UPDATE meta SET value = ? WHERE key = 'bench'", (str(i + 1),))
        floor.append(time.perf_counter() - started)
    store.close()
    return statistics.median(samples), statistics.median(floor)


def claims(backends: list[str], sizes: list[int], calls: int) -> dict[str, Any]:
    print(f"\n   claim cost: median of {calls} claims (a whole committed claim_next), by rows")
    results: dict[str, Any] = {}
    for backend in backends:
        figures = {}
        for size in sizes:
            root = DIR / f"claims-{backend}-{size}"
            with database(backend, root) as db:
                config = workspace(root, db, "http://127.0.0.1:9", {})
                started = time.perf_counter()
                figures[size], floor = claim_cost(config, size, calls)
                took = time.perf_counter() - started
            print(
                f"   {backend:<10} {size:>9,} deliveries  {figures[size] * 1e6:8.0f} µs"
                f"  (floor: a 1-row commit {floor * 1e6:6.0f} µs; seed + measure {took:.0f} s)"
            )
        ratio = figures[sizes[-1]] / figures[sizes[0]]
        print(
            f"   {backend:<10} {sizes[-1]:,} / {sizes[0]:,}: {ratio:.2f}"
            f"  ({'met' if ratio <= 2 else 'missed'}: goal ≤ 2, flat)"
        )
        results[backend] = {"median_seconds": figures, "ratio": ratio}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="500 deliveries, 30 s of lateness, claims at 10^3..10^5 rows",
    )
    parser.add_argument("--count", type=int, help="deliveries per throughput run")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--only", choices=("throughput", "lateness", "claims"), help="one part of the run"
    )
    args = parser.parse_args()
    for key in [k for k in os.environ if k.startswith("KEPUBOT_") and k != "KEPUBOT_BENCH_PG"]:
        del os.environ[key]  # only the workspaces' configs choose the database
    count = args.count or (500 if args.quick else 2_000)
    raw_count = count // 2
    late_count, late_span = (60, 30.0) if args.quick else (300, 60.0)
    backends = [b for b in args.backends.split(",") if b]
    why = pg_available() if "postgresql" in backends else None
    if why is not None:
        print(f"!! PostgreSQL NOT MEASURED: no server at {PG_SERVER} ({why})")
        backends.remove("postgresql")
    DIR.mkdir(parents=True, exist_ok=True)
    header(f"backends side by side: {', '.join(backends)}; {count:,} deliveries per run")
    results: dict[str, Any] = {"count": count, "runs": {}}
    with receiver() as box:
        for backend in backends if args.only in (None, "throughput") else []:
            for label, k in (("1 channel", 1), ("8 channels", 8)):
                root = DIR / f"{backend}-{k}"
                with database(backend, root) as db:
                    box.reset()
                    config = workspace(root, db, box.base, {"workers": 8, "poll_seconds": 1})
                    queue(config, raw_count, 1)
                    raw = raw_limit(config, box, raw_count)
                with database(backend, root) as db:
                    box.reset()
                    config = workspace(root, db, box.base, {"workers": 8, "poll_seconds": 1})
                    queue(config, count, k)
                    n, call, span, waits = dispatch(config, db if backend == "postgresql" else None)
                rate = n / span
                results["runs"][f"{backend} {label}"] = {
                    "raw_rate": raw,
                    "published": n,
                    "call_seconds": call,
                    "sending_seconds": span,
                    "rate": rate,
                    "ratio": rate / raw,
                    "lock_waits": waits.strip(),
                }
                print(
                    f"   {backend:<10} {label:<10} raw limit {raw:7.1f}/s   dispatch {rate:7.1f}/s"
                    f" ({n:,} in {span:.2f} s sending, {call:.2f} s call)   {rate / raw:4.2f}× raw"
                    f"  ({'met' if rate / raw >= 0.5 else 'missed'}: goal ≥ 0.5){waits}"
                )
        if args.only in (None, "lateness"):
            print(f"\n   lateness: {late_count} deliveries, due over {late_span:.0f} s, 8 channels")
        modes = [("sqlite", 1, "polling every 1 s")]
        if "postgresql" in backends:
            modes += [
                ("postgresql", 1, "poll 1 s + LISTEN/NOTIFY"),
                ("postgresql", 60, "poll 60 s: LISTEN/NOTIFY and the next-due timer only"),
            ]
        for backend, poll, what in modes:
            if backend not in backends or args.only not in (None, "lateness"):
                continue
            root = DIR / f"late-{backend}-{poll}"
            with database(backend, root) as db:
                box.reset()
                config = workspace(root, db, box.base, {"workers": 8, "poll_seconds": poll})
                late = lateness(config, late_count, late_span)
            p50, p99 = statistics.median(late), percentile(late, 99)
            results["runs"][f"lateness {backend} poll {poll}"] = {"p50": p50, "p99": p99}
            print(
                f"   {backend:<10} {what:<55} p50 {p50:5.2f} s  p99 {p99:5.2f} s"
                f"  ({'met' if p99 <= 1.5 else 'missed'}: goal p99 ≤ 1.5 s)"
            )
        if box.duplicates():
            print(f"   WARNING: the receiver saw {box.duplicates()} duplicate sends")
    if args.only in (None, "claims"):
        sizes = [1_000, 10_000, 100_000] if args.quick else [1_000, 100_000, 1_000_000]
        results["claims"] = claims(backends, sizes, 100 if args.quick else 300)
    out = DIR / "results.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
