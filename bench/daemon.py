"""Daemon benchmarks: publishing throughput, concurrency under latency, punctuality of
scheduled sends, and the idle footprint of `kepubot run`.

    .venv/bin/python bench/daemon.py throughput    # 10,000 due deliveries, 1 and 8 channels
    .venv/bin/python bench/daemon.py concurrency   # 100 accounts, 50 ms latency, workers=8
    .venv/bin/python bench/daemon.py punctuality   # 1,000 sends due over 5 minutes
    .venv/bin/python bench/daemon.py idle          # `kepubot run` with nothing due, 60 s

Every subcommand takes ``--quick`` (smaller and shorter) and prints its figures as ratios
against a baseline measured in the same run. Nothing asserts on timing.

The webhook endpoint is ``bench/_receiver.py``, a minimal receiver with the contract of the
sandbox's webhook receiver, in a process of its own so that its request handling neither
shares the GIL with the code measured nor shows in its profile (its docstring says why it is
not the sandbox itself). Every run gets a fresh workspace under ``bench/out/daemon/``: a
database filled through the service layer (create, submit, approve; scheduled times through
``PostInput.at``), copied once per run, and a config whose webhook channels point at
``<receiver>/webhook/<name>``. The receiver forgets its idempotency keys between runs,
because copies of one database share them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import os
import pstats
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import KEPUBOT, OUT, PYTHON, body_for, clean_env, header, percentile, title_for

DIR = OUT / "daemon"
# the bench's own reads never go through TimedSQL's patched sqlite3.connect
CONNECT = sqlite3.connect


# --- the webhook endpoint, in a process of its own --------------------------------------


class Receiver:
    """``bench/_receiver.py`` in a process of its own: the webhook endpoint of every run."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [str(PYTHON), str(Path(__file__).with_name("_receiver.py"))],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=bytecode_env(),
        )
        assert self.process.stdout is not None
        self.base = self.process.stdout.readline().strip()
        if not self.base.startswith("http://"):
            self.stop()
            raise SystemExit(f"the receiver did not start (said {self.base!r})")

    def control(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.base}/_bench/{path}",
            data=data,
            method="GET" if payload is None else "POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def reset(self, delay: float = 0.0) -> None:
        """Forget all keys (copies of one database share their idempotency keys)."""
        self.control("reset", {})
        if delay:
            self.control("delay", {"seconds": delay})

    def duplicates(self) -> int:
        return int(self.control("stats")["duplicates"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def receiver() -> Iterator[Receiver]:
    box = Receiver()
    try:
        yield box
    finally:
        box.stop()


def post_round_trip(base: str, count: int = 50) -> float:
    """Median seconds of one keep-alive webhook POST (after a few unrecorded ones)."""
    import requests

    session = requests.Session()
    body = json.dumps({"title": "科普", "body": "正文。" * 60}, ensure_ascii=False).encode()
    samples = []
    for i in range(count + 5):
        start = time.perf_counter()
        response = session.post(
            f"{base}/webhook/roundtrip",
            data=body,
            headers={"Content-Type": "application/json", "Idempotency-Key": f"rt-{i}"},
            timeout=10,
        )
        response.raise_for_status()
        if i >= 5:
            samples.append(time.perf_counter() - start)
    session.close()
    return statistics.median(samples)


def endpoint_note() -> dict[str, float | None]:
    """Print the keep-alive POST round trip of the bench receiver and, when the working
    tree's sandbox can be started, of the sandbox as shipped."""
    figures: dict[str, float | None] = {"receiver_ms": None, "sandbox_ms": None}
    with receiver() as box:
        figures["receiver_ms"] = post_round_trip(box.base) * 1000
    process = subprocess.Popen(
        [str(PYTHON), "-m", "kepubot.sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=bytecode_env(),
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        if base.startswith("http://"):
            figures["sandbox_ms"] = post_round_trip(base, 20) * 1000
    finally:
        process.kill()
        process.wait()
    sandbox = (
        f"{figures['sandbox_ms']:.1f} ms"
        if figures["sandbox_ms"] is not None
        else "not measured (the working tree's sandbox did not start)"
    )
    print(
        f"   keep-alive webhook POST round trip (median): bench receiver"
        f" {figures['receiver_ms']:.2f} ms; kepubot sandbox as shipped {sandbox}"
    )
    return figures


# --- workspaces -----------------------------------------------------------------------------


def bytecode_env(**extra: str) -> dict[str, str]:
    """Subprocess environment: no KEPUBOT_* settings, bytecode cached as when installed."""
    env = clean_env(PYTHONPYCACHEPREFIX=str(DIR / "pycache"), **extra)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def config_text(base: str, channels: list[str], daemon: dict[str, Any]) -> str:
    lines = [
        "[kepubot]",
        'database = "kepubot.db"',
        "",
        "[daemon]",
        *(f"{k} = {json.dumps(v)}" for k, v in daemon.items()),
        "",
        "[users.ed]",
        'roles = ["editor"]',
        "[users.rev]",
        'roles = ["reviewer"]',
    ]
    for name in channels:
        lines += [
            "",
            f"[channels.{name}]",
            'type = "webhook"',
            f'url = "{base}/webhook/{name}"',
            "timeout_seconds = 10",
        ]
    return "\n".join(lines) + "\n"


def write_workspace(
    root: Path, base: str, channels: list[str], daemon: dict[str, Any], db: Path | None
) -> Path:
    """A fresh workspace directory; ``db`` (a template database) is copied in when given."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "kepubot.toml").write_text(config_text(base, channels, daemon), encoding="utf-8")
    if db is not None:
        shutil.copyfile(db, root / "kepubot.db")
    return root / "kepubot.toml"


def load_app(config: Path) -> Any:
    from kepubot.app import App
    from kepubot.config import load_config

    for key in [k for k in os.environ if k.startswith("KEPUBOT_")]:
        del os.environ[key]
    return App(load_config(config))


def queue_posts(
    config: Path,
    count: int,
    channel_of: Callable[[int], str],
    at_of: Callable[[int], datetime] | None = None,
) -> float:
    """Create, submit and approve ``count`` posts through the service layer; seconds taken.

    Without ``at_of`` every delivery is due at approval; with it, post i is scheduled at
    ``at_of(i)`` (which must still be in the future when the post is created).
    """
    from kepubot.services.posts import PostInput, approve, create_posts, submit
    from kepubot.timeutil import utcnow

    rng = random.Random(20261129)
    started = time.perf_counter()
    app = load_app(config)
    items = []
    for i in range(count):
        items.append(
            (
                PostInput(
                    title=title_for(rng, i),
                    body=body_for(rng, 6),
                    summary="科普 benchmark",
                    link=f"https://kepu.example.org/a/{i}",
                    tags=["科普"],
                    channels=[channel_of(i)],
                    at=at_of(i).isoformat() if at_of else None,
                ),
                f"bench {i}",
            )
        )
    ids = create_posts(app, "ed", items, now=utcnow())
    submit(app, "ed", ids, now=utcnow())
    approve(app, "rev", ids, now=utcnow())
    app.store.conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    app.close()
    return time.perf_counter() - started


def build_template(
    name: str,
    base: str,
    channels: list[str],
    count: int,
    channel_of: Callable[[int], str],
    at_of: Callable[[int], datetime] | None = None,
) -> Path:
    """A database with ``count`` approved posts (one delivery each); returns its path."""
    root = DIR / "templates" / name
    config = write_workspace(root, base, channels, {}, None)
    seconds = queue_posts(config, count, channel_of, at_of)
    for suffix in ("-wal", "-shm"):
        if Path(f"{root / 'kepubot.db'}{suffix}").exists():
            raise SystemExit(f"{root}: the template database was not checkpointed")
    print(f"   template {name}: {count:,} deliveries queued in {seconds:.1f} s")
    return root / "kepubot.db"


def db_states(db: Path) -> dict[str, int]:
    conn = CONNECT(db, timeout=30)
    try:
        return dict(conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
    finally:
        conn.close()


def attempt_span(db: Path) -> tuple[int, float]:
    """(attempts, seconds from the first send's start to the last send's end)."""
    from kepubot.timeutil import from_db

    conn = CONNECT(db, timeout=30)
    try:
        n, first, last = conn.execute(
            "SELECT COUNT(*), MIN(started_at), MAX(finished_at) FROM attempts"
        ).fetchone()
    finally:
        conn.close()
    if not n:
        return 0, float("nan")
    return n, (from_db(last) - from_db(first)).total_seconds()


def kepubot_argv(config: Path, *args: str) -> list[str]:
    return [str(KEPUBOT), "--config", str(config), *args]


def run_once_subprocess(config: Path, log: Path) -> tuple[float, str]:
    """Wall seconds of `kepubot run --once` from spawn to exit."""
    with log.open("w") as handle:
        started = time.perf_counter()
        result = subprocess.run(
            kepubot_argv(config, "run", "--once"),
            cwd=config.parent,
            env=bytecode_env(),
            stdout=subprocess.PIPE,
            stderr=handle,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"kepubot run --once failed ({result.returncode}); see {log}")
    return wall, result.stdout.strip()


def start_daemon(config: Path, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        kepubot_argv(config, "run"),
        cwd=config.parent,
        env=bytecode_env(),
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
        text=True,
    )


def stop_daemon(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def wait_published(db: Path, count: int, timeout: float, process: Any = None) -> float:
    """Poll the database until ``count`` deliveries are published; returns the wall time."""
    started = time.perf_counter()
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if db_states(db).get("published", 0) >= count:
            return time.perf_counter() - started
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the daemon exited early ({process.returncode})")
        time.sleep(0.1)
    raise SystemExit(f"not all published after {timeout:.0f} s: {db_states(db)}")


def check_all_published(label: str, db: Path, count: int) -> None:
    states = db_states(db)
    if states.get("published", 0) != count:
        print(f"   WARNING {label}: expected {count:,} published, got {states}")


def inprocess_logging(log: Path) -> logging.Handler:
    """What `kepubot` configures: INFO to a stream (here a file), APScheduler at WARNING."""
    handler = logging.FileHandler(log, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler


def run_once_inprocess(
    config: Path, log: Path, profile: bool = False
) -> tuple[float, dict[str, Any], dict[str, pstats.Stats] | None]:
    """``kepubot.bot.daemon.run_once`` with an App, timed without start-up.

    Start-up (config, database, channels and their HTTP sessions, the Markdown renderer's
    imports, the Engine and its connection) happens before the clock starts. With ``profile``,
    the calling (claiming) thread gets a cProfile, and every send thread one of its own; the
    send threads' profiles are merged.
    """
    from kepubot.bot.daemon import run_once
    from kepubot.bot.dispatch import Engine
    from kepubot.channels.base import markdown_to_html

    handler = inprocess_logging(log)
    app = load_app(config)
    app.store.conn()
    for channel in app.channels.values():
        channel.session  # noqa: B018
    markdown_to_html("warm *up*")

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()
    local = threading.local()

    class ProfiledEngine(Engine):
        def _send_safely(self, delivery: Any) -> None:
            profiler = getattr(local, "profiler", None)
            if profiler is None:
                profiler = local.profiler = cProfile.Profile()
                with lock:
                    profiles.append(profiler)
            profiler.enable()
            try:
                super()._send_safely(delivery)
            finally:
                profiler.disable()

    engine = (ProfiledEngine if profile else Engine)(app)
    main_profiler = cProfile.Profile() if profile else None
    try:
        started = time.perf_counter()
        if main_profiler is not None:
            main_profiler.enable()
        result = run_once(app, engine)
        if main_profiler is not None:
            main_profiler.disable()
        seconds = time.perf_counter() - started
    finally:
        engine.close()
        app.close()
        logging.getLogger().removeHandler(handler)
        handler.close()
    stats: dict[str, pstats.Stats] | None = None
    if main_profiler is not None:
        stats = {"claiming thread": pstats.Stats(main_profiler, stream=io.StringIO())}
        if profiles:
            send = pstats.Stats(profiles[0], stream=io.StringIO())
            for profiler in profiles[1:]:
                send.add(profiler)
            stats["send threads"] = send
    return seconds, result, stats


def rate_line(label: str, count: int, seconds: float, baseline: float, goal: float) -> str:
    rate = count / seconds
    return (
        f"   {label:<58} {seconds:8.2f} s {rate:8.1f}/s  {rate / baseline:5.2f}× raw"
        f"  ({'met' if rate / baseline >= goal else 'missed'}: goal ≥ {goal})"
    )


def write_results(name: str, data: dict[str, Any]) -> None:
    out = DIR / f"results-{name}.json"
    out.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    print(f"\nresults written to {out}")


# --- 1. throughput ----------------------------------------------------------------------------


def raw_loop(db: Path, url: str, count: int, *, http: bool = True, sql: bool = True) -> dict:
    """The raw limit: claim + intent + outcome (kepubot.queue.deliveries on the same kind of
    database, same connection settings) and one keep-alive POST, single-threaded."""
    import requests

    from kepubot.queue import deliveries
    from kepubot.queue.db import connect
    from kepubot.timeutil import utcnow

    conn = connect(db)
    session = requests.Session()
    document = {
        "post_id": 0,
        "title": "科普",
        "summary": "",
        "body": "正文。" * 60,
        "html": "<p>" + "正文。" * 60 + "</p>",
        "link": "https://kepu.example.org/a/0",
        "tags": ["科普"],
        "media": [],
    }
    body = json.dumps(document, ensure_ascii=False).encode()
    phases = {"claim": 0.0, "intent": 0.0, "post": 0.0, "outcome": 0.0}
    clock = time.perf_counter
    worker = f"raw:{os.getpid()}"
    done = 0
    started = clock()
    for i in range(count):
        t0 = clock()
        delivery = None
        if sql:
            delivery = deliveries.claim_next(conn, worker=worker, now=utcnow(), lease_seconds=300)
            if delivery is None:
                break
        t1 = clock()
        if delivery is not None:
            deliveries.begin_send(
                conn, delivery=delivery, worker=worker, now=utcnow(), lease_seconds=300
            )
        t2 = clock()
        remote_id = f"raw-{i}"
        if http:
            key = f"raw-{os.getpid()}-{i}-{time.monotonic_ns()}"
            response = session.post(
                url,
                data=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
                timeout=10,
            )
            if response.status_code != 201:
                raise SystemExit(f"raw POST answered {response.status_code}: {response.text}")
            remote_id = response.json()["id"]
        t3 = clock()
        if delivery is not None:
            deliveries.record_published(
                conn,
                delivery=delivery,
                worker=worker,
                now=utcnow(),
                remote_id=remote_id,
                remote_url=None,
            )
        t4 = clock()
        phases["claim"] += t1 - t0
        phases["intent"] += t2 - t1
        phases["post"] += t3 - t2
        phases["outcome"] += t4 - t3
        done += 1
    seconds = clock() - started
    conn.close()
    session.close()
    return {
        "count": done,
        "seconds": seconds,
        "phases_ms": {k: v / done * 1000 for k, v in phases.items()},
    }


def fsync_floor(db: Path, iterations: int = 300) -> float:
    """Median seconds of one committed one-row write transaction (kepubot's connection
    settings: WAL, synchronous=FULL): the price of each commit's fsync."""
    from kepubot.queue.db import connect, transaction

    conn = connect(db)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, n INTEGER)")
    conn.execute("INSERT OR IGNORE INTO bench_floor VALUES (1, 0)")
    samples = []
    for i in range(iterations):
        start = time.perf_counter()
        with transaction(conn):
            conn.execute("UPDATE bench_floor SET n = ? WHERE id = 1", (i + 1,))
        samples.append(time.perf_counter() - start)
    conn.close()
    return statistics.median(samples)


def run_phases(db: Path, started: datetime, ended: datetime) -> dict[str, float]:
    """Split a run by the attempts table: start-up (to the first send's start), sending (to
    the last send's end) and the work after the last send."""
    from kepubot.timeutil import from_db

    conn = CONNECT(db, timeout=30)
    try:
        n, first, last = conn.execute(
            "SELECT COUNT(*), MIN(started_at), MAX(finished_at) FROM attempts"
        ).fetchone()
    finally:
        conn.close()
    if not n:
        return {}
    first_at, last_at = from_db(first), from_db(last)
    return {
        "attempts": n,
        "start_up": (first_at - started).total_seconds(),
        "sending": (last_at - first_at).total_seconds(),
        "after": (ended - last_at).total_seconds(),
    }


THROUGHPUT_LAYOUTS = {"1": ("1 channel", 1), "8": ("8 channels", 8)}


def throughput(args: argparse.Namespace) -> None:
    count = args.count or (1_000 if args.quick else 10_000)
    inproc_count = args.inprocess_count or min(count, 500 if args.quick else 3_000)
    raw_count = 500 if args.quick else 2_000
    layouts = [
        THROUGHPUT_LAYOUTS[k] for k in (["1", "8"] if args.channels == "both" else [args.channels])
    ]
    channels = [f"cms{i}" for i in range(8)]
    daemon = {"workers": 8, "poll_seconds": 1}
    title = "diagnostics" if args.diagnose else f"{count:,} due deliveries"
    header(f"daemon throughput: {title}, endpoint without latency, workers = 8")
    results: dict[str, Any] = {"count": count, "inprocess_count": inproc_count, "runs": {}}
    results["endpoint"] = endpoint_note()
    with receiver() as box:
        print(f"   webhook receiver at {box.base} (bench/_receiver.py, separate process)")
        raw_template = build_template(
            f"throughput-raw-{raw_count}", box.base, channels, raw_count + 50, lambda i: "cms0"
        )
        raw_rate = raw_limit(box, channels, daemon, raw_template, raw_count, results)

        if args.diagnose:
            n = 1_000 if args.quick else 2_000
            diagnostics(box, channels, daemon, n, raw_rate, results)
            write_results(f"throughput-diagnostics-{n}", results)
            return

        def raw_again() -> float:
            """The raw limit again, right before a run: the disk's fsync time moves with the
            machine's load, so each run is compared with a baseline taken just before it."""
            n = raw_count // 2
            box.reset()
            write_workspace(DIR / "throughput-raw", box.base, channels, daemon, raw_template)
            raw = raw_loop(DIR / "throughput-raw" / "kepubot.db", f"{box.base}/webhook/raw", n)
            floor = fsync_floor(DIR / "throughput-raw" / "kepubot.db", 100)
            rate = raw["count"] / raw["seconds"]
            print(
                f"     raw limit just before: {rate:.1f}/s ({n:,} deliveries);"
                f" fsync floor {floor * 1000:.3f} ms"
            )
            return rate

        print(
            f"\n   kepubot, each run against the raw limit measured just before it"
            f" (goal ≥ 0.5 × raw); `run --once` {count:,} deliveries, in-process {inproc_count:,}:"
        )
        for label, k in layouts:
            slug = label.replace(" ", "")

            def channel_of(i: int, k: int = k) -> str:
                return channels[i % k]

            templates = {
                n: build_template(f"throughput-{k}-{n}", box.base, channels, n, channel_of)
                for n in dict.fromkeys((count, inproc_count))
            }
            print(f"\n   {label}, `kepubot run --once` as a subprocess:")
            base_rate = raw_again()
            box.reset()
            ws = DIR / f"throughput-{slug}-cli"
            config = write_workspace(ws, box.base, channels, daemon, templates[count])
            started = datetime.now(UTC)
            wall, said = run_once_subprocess(config, ws / "run-once.log")
            phases = run_phases(ws / "kepubot.db", started, datetime.now(UTC))
            check_all_published(f"{label} subprocess", ws / "kepubot.db", count)
            results["runs"][f"{label}: run --once subprocess"] = {
                "count": count,
                "seconds": wall,
                "rate": count / wall,
                "raw_rate": base_rate,
                "ratio": count / wall / base_rate,
                "phases": phases,
                "stdout": said,
            }
            print(rate_line("spawn → exit", count, wall, base_rate, 0.5))
            print_phases(phases, count, base_rate)

            print(f"   {label}, run_once(App) in-process:")
            base_rate = raw_again()
            box.reset()
            ws = DIR / f"throughput-{slug}-inproc"
            config = write_workspace(ws, box.base, channels, daemon, templates[inproc_count])
            started = datetime.now(UTC)
            seconds, result, _ = run_once_inprocess(config, ws / "run-once.log")
            phases = run_phases(ws / "kepubot.db", started, datetime.now(UTC))
            check_all_published(f"{label} in-process", ws / "kepubot.db", inproc_count)
            results["runs"][f"{label}: run_once in-process"] = {
                "count": inproc_count,
                "seconds": seconds,
                "rate": inproc_count / seconds,
                "raw_rate": base_rate,
                "ratio": inproc_count / seconds / base_rate,
                "phases": phases,
                "result": result,
            }
            print(
                rate_line(
                    "run_once call (start-up excluded)", inproc_count, seconds, base_rate, 0.5
                )
            )
            print_phases(phases, inproc_count, base_rate)
            if box.duplicates():
                print(f"   WARNING: the receiver saw {box.duplicates()} duplicate sends")
    write_results(f"throughput-{count}-{args.channels}", results)


def print_phases(phases: dict[str, float], count: int, raw_rate: float) -> None:
    if not phases:
        return
    sending = count / phases["sending"]
    print(
        f"     of which: start-up to the first send {phases['start_up']:.2f} s;"
        f" sending {phases['sending']:.2f} s ({sending:.1f}/s, {sending / raw_rate:.2f}× raw);"
        f" after the last send {phases['after']:.2f} s"
    )


def raw_limit(
    box: Receiver,
    channels: list[str],
    daemon: dict[str, Any],
    template: Path,
    count: int,
    results: dict[str, Any],
) -> float:
    """Measure and print the raw limit and its parts; returns deliveries/s."""
    ws = DIR / "throughput-raw"
    url = f"{box.base}/webhook/rawbench"

    def fresh_db() -> Path:
        box.reset()
        write_workspace(ws, box.base, channels, daemon, template)
        return ws / "kepubot.db"

    raw_loop(fresh_db(), url, 50)  # warm the page cache, imports and the receiver
    raw = raw_loop(fresh_db(), url, count)
    rate = raw["count"] / raw["seconds"]
    raw_sql = raw_loop(fresh_db(), url, count // 2, http=False)
    raw_http = raw_loop(fresh_db(), url, count // 2, sql=False)
    floor = fsync_floor(fresh_db())
    results.update(raw=raw, raw_sql_only=raw_sql, raw_http_only=raw_http)
    results["fsync_floor_ms"] = floor * 1000
    print(f"\n   raw limit: one thread, {raw['count']:,} deliveries:")
    print(f"     claim_next + begin_send + POST + record_published: {rate:8.1f}/s  (the baseline)")
    print(
        "     per delivery, ms: " + ", ".join(f"{k} {v:.3f}" for k, v in raw["phases_ms"].items())
    )
    print(
        f"     SQLite part alone {raw_sql['count'] / raw_sql['seconds']:.1f}/s;"
        f" POST alone {raw_http['count'] / raw_http['seconds']:.1f}/s;"
        f" one committed 1-row write transaction (the fsync floor) {floor * 1000:.3f} ms"
    )
    return rate


class TimedSQL:
    """Bench-only: wall time of every statement kepubot executes, by statement, through a
    ``sqlite3.Connection`` subclass passed as ``factory`` to ``sqlite3.connect``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.totals: dict[str, list[float]] = {}
        self._original = sqlite3.connect

    @staticmethod
    def key(sql: str) -> str:
        words = " ".join(sql.split())
        return words if len(words) <= 90 else words[:87] + "..."

    def add(self, sql: str, seconds: float) -> None:
        key = self.key(sql)
        with self.lock:
            entry = self.totals.setdefault(key, [0, 0.0])
            entry[0] += 1
            entry[1] += seconds

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        timer = self

        class TimedConnection(sqlite3.Connection):
            def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:  # type: ignore[override]
                start = time.perf_counter()
                try:
                    return super().execute(sql, parameters)
                finally:
                    timer.add(sql, time.perf_counter() - start)

            def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:  # type: ignore[override]
                start = time.perf_counter()
                try:
                    return super().executemany(sql, parameters)
                finally:
                    timer.add(sql, time.perf_counter() - start)

        def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
            kwargs.setdefault("factory", TimedConnection)
            return timer._original(*args, **kwargs)

        sqlite3.connect = connect  # type: ignore[assignment]
        try:
            yield
        finally:
            sqlite3.connect = self._original  # type: ignore[assignment]

    def report(self, count: int, top: int = 16) -> list[dict[str, Any]]:
        rows = sorted(self.totals.items(), key=lambda kv: -kv[1][1])
        total = sum(v[1] for _, v in rows)
        print(
            f"     {'ms/deliv':>8} {'calls/deliv':>11}  statement (all threads; {total / count * 1000:.2f} ms per delivery in execute)"
        )
        out = []
        for key, (calls, seconds) in rows[:top]:
            print(f"     {seconds / count * 1000:8.3f} {calls / count:11.2f}  {key}")
            out.append({"sql": key, "ms": seconds / count * 1000, "calls": calls / count})
        return out


@contextlib.contextmanager
def what_if(change: str) -> Iterator[None]:
    """Bench-only patches of the running process (kepubot's files are not touched):

    - ``"as is"``: nothing;
    - ``"synchronous=NORMAL"``: the engine's connections skip the fsync at each commit;
    - ``"writer lock"``: every ``transaction()`` first takes one process-wide
      ``threading.Lock``, so threads wait for the write lock on a Python lock that wakes them
      at once, instead of in SQLite's busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25,
      25, 50, 50, 100 ms between tries.
    """
    if change == "as is":
        yield
        return
    if change == "synchronous=NORMAL":
        import kepubot.bot.dispatch as dispatch_module

        original = dispatch_module.connect

        def connect_normal(path: Any) -> sqlite3.Connection:
            conn = original(path)
            conn.execute("PRAGMA synchronous=NORMAL")
            return conn

        dispatch_module.connect = connect_normal  # type: ignore[assignment]
        try:
            yield
        finally:
            dispatch_module.connect = original  # type: ignore[assignment]
        return
    if change == "writer lock":
        import kepubot.queue.db as db_module

        original_tx = db_module.transaction
        lock = threading.Lock()

        @contextlib.contextmanager
        def locked(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
            with lock, original_tx(conn) as inner:
                yield inner

        patched = []
        for name, module in list(sys.modules.items()):
            if name.startswith("kepubot") and getattr(module, "transaction", None) is original_tx:
                module.transaction = locked  # type: ignore[attr-defined]
                patched.append(module)
        try:
            yield
        finally:
            for module in patched:
                module.transaction = original_tx  # type: ignore[attr-defined]
        return
    raise ValueError(change)


def import_engine_modules() -> None:
    """Import every module whose ``transaction`` the writer-lock what-if must reach."""
    import kepubot.bot.collect
    import kepubot.bot.daemon
    import kepubot.bot.dispatch
    import kepubot.bot.reconcile
    import kepubot.bot.watchdog
    import kepubot.bot.weekly
    import kepubot.queue.deliveries
    import kepubot.queue.metrics  # noqa: F401


def diagnostics(
    box: Receiver,
    channels: list[str],
    daemon: dict[str, Any],
    count: int,
    raw_rate: float,
    results: dict[str, Any],
) -> None:
    """Where the time goes, on ``count`` deliveries, 1 and 8 channels, all in-process except
    strace: wall time per SQL statement; cProfile of the claiming thread and of the send
    threads; system calls per delivery of `run --once` under ``strace -f -c``; and a what-if
    with ``synchronous=NORMAL`` (a bench-only patch of the engine's connections)."""
    templates = {}
    for label, k in THROUGHPUT_LAYOUTS.values():

        def channel_of(i: int, k: int = k) -> str:
            return channels[i % k]

        templates[label] = build_template(
            f"throughput-{k}-{count}", box.base, channels, count, channel_of
        )
    diag: dict[str, Any] = results.setdefault("diagnostics", {"count": count})

    for label, template in templates.items():
        slug = label.replace(" ", "")
        box.reset()
        ws = DIR / f"throughput-{slug}-sql"
        config = write_workspace(ws, box.base, channels, daemon, template)
        timer = TimedSQL()
        with timer.installed():
            seconds, _, _ = run_once_inprocess(config, ws / "run-once.log")
        check_all_published(f"{label} timed SQL", ws / "kepubot.db", count)
        print(
            f"\n   {label}: wall time per SQL statement, {count:,} deliveries ({count / seconds:.1f}/s while timed)"
        )
        diag[f"sql {label}"] = timer.report(count)

    for label, template in templates.items():
        slug = label.replace(" ", "")
        box.reset()
        ws = DIR / f"throughput-{slug}-profile"
        config = write_workspace(ws, box.base, channels, daemon, template)
        seconds, _, profiles = run_once_inprocess(config, ws / "run-once.log", profile=True)
        check_all_published(f"{label} profile", ws / "kepubot.db", count)
        assert profiles is not None
        print(
            f"\n   {label}: cProfile, {count:,} deliveries ({count / seconds:.1f}/s under the profiler)"
        )
        for role, stats in profiles.items():
            stats.dump_stats(str(DIR / f"throughput-{slug}-{role}.prof"))
            print(f"   -- {role} --")
            diag[f"profile {label} {role}"] = print_profile(stats, count)

    if shutil.which("strace"):
        for label, template in templates.items():
            slug = label.replace(" ", "")
            box.reset()
            ws = DIR / f"throughput-{slug}-strace"
            config = write_workspace(ws, box.base, channels, daemon, template)
            summary_file = ws / "strace.txt"
            with (ws / "run-once.log").open("w") as handle:
                subprocess.run(
                    [
                        "strace",
                        "-f",
                        "-c",
                        "-o",
                        str(summary_file),
                        "-e",
                        "trace=fsync,fdatasync,pwrite64,pread64,fcntl,sendto,recvfrom",
                        *kepubot_argv(config, "run", "--once"),
                    ],
                    cwd=ws,
                    env=bytecode_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=handle,
                    check=False,
                )
            check_all_published(f"{label} strace", ws / "kepubot.db", count)
            calls = {}
            for line in summary_file.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
                    calls[parts[-1]] = int(parts[3])
            diag[f"syscalls per delivery {label}"] = {k: v / count for k, v in calls.items()}
            print(
                f"\n   {label}: system calls per delivery, `run --once` under strace -f -c: "
                + ", ".join(f"{k} {v / count:.1f}" for k, v in sorted(calls.items()))
            )

    print("\n   what-if (bench-only patches, see `what_if`), run_once in-process, back to back:")
    import_engine_modules()
    for label, template in templates.items():
        slug = label.replace(" ", "")
        rates = {}
        for change in ("as is", "synchronous=NORMAL", "writer lock"):
            box.reset()
            ws = DIR / f"throughput-{slug}-whatif"
            config = write_workspace(ws, box.base, channels, daemon, template)
            with what_if(change):
                seconds, _, _ = run_once_inprocess(config, ws / "run-once.log")
            check_all_published(f"{label} {change}", ws / "kepubot.db", count)
            rates[change] = count / seconds
        diag[f"what-if {label}"] = rates
        print(
            f"     {label}: "
            + ", ".join(f"{k} {v:.1f}/s ({v / rates['as is']:.2f}×)" for k, v in rates.items())
        )


def print_profile(stats: pstats.Stats, count: int, top: int = 25) -> list[dict[str, Any]]:
    """Own time and cumulative time per delivery for the heaviest functions."""
    entries = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in entries.items():
        short = filename
        for marker in ("/kepubot/", "/site-packages/", "/lib/python3"):
            if marker in filename:
                short = filename.split(marker, 1)[1]
                break
        rows.append((own, cumulative, calls, f"{short}:{line}({name})"))
    print(f"     {'own µs/deliv':>12} {'cum µs/deliv':>12} {'calls/deliv':>11}  function")
    for own, cumulative, calls, where in sorted(rows, reverse=True)[:top]:
        print(
            f"     {own / count * 1e6:12.1f} {cumulative / count * 1e6:12.1f}"
            f" {calls / count:11.2f}  {where}"
        )
    print("     -- by cumulative time --")
    for own, cumulative, calls, where in sorted(rows, key=lambda r: -r[1])[:top]:
        print(
            f"     {own / count * 1e6:12.1f} {cumulative / count * 1e6:12.1f}"
            f" {calls / count:11.2f}  {where}"
        )
    return [
        {"function": w, "own_us": o / count * 1e6, "cum_us": c / count * 1e6, "calls": n / count}
        for o, c, n, w in sorted(rows, key=lambda r: -r[1])[: top * 2]
    ]


# --- 2. concurrency ---------------------------------------------------------------------------


def parallel_posts(base: str, threads: int, seconds: float) -> tuple[int, float]:
    """The endpoint's ceiling: ``threads`` threads, each POSTing in a loop over its own
    keep-alive session, for ``seconds``. Returns (requests answered, elapsed seconds)."""
    import requests

    body = json.dumps({"title": "科普", "body": "正文。" * 60}, ensure_ascii=False).encode()
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        session = requests.Session()
        n = 0
        while time.perf_counter() < deadline:
            key = f"ceiling-{index}-{n}-{time.monotonic_ns()}"
            response = session.post(
                f"{base}/webhook/ceiling{index}",
                data=body,
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
                timeout=10,
            )
            response.raise_for_status()
            n += 1
        counts[index] = n
        session.close()

    started = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts), time.perf_counter() - started


def run_daemon_inprocess(config: Path, log: Path, count: int) -> float:
    """``kepubot.bot.daemon.run_forever`` in this process until ``count`` deliveries are
    published (then SIGTERM to itself); returns seconds from the call to all published."""
    from kepubot.bot.daemon import run_forever

    handler = inprocess_logging(log)
    app = load_app(config)
    app.store.conn()
    db = config.parent / "kepubot.db"
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    done: dict[str, float] = {}
    started = time.perf_counter()

    def watcher() -> None:
        deadline = started + 300
        try:
            while time.perf_counter() < deadline:
                if db_states(db).get("published", 0) >= count:
                    done["wall"] = time.perf_counter() - started
                    return
                time.sleep(0.1)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watcher, daemon=True)
    thread.start()
    try:
        run_forever(app)
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)
        app.close()
        logging.getLogger().removeHandler(handler)
        handler.close()
    thread.join()
    if "wall" not in done:
        raise SystemExit(f"in-process daemon: not all published: {db_states(db)}")
    return done["wall"]


def send_timeline(db: Path) -> dict[str, float]:
    """Mean ms per delivery between its audit rows: claimed -> send started (the executor
    picked it up) and send started -> platform answered (post read, intent committed,
    rendering, the request). Each row's ``at`` is the engine's clock at that step."""
    from kepubot.timeutil import from_db

    conn = CONNECT(db, timeout=30)
    try:
        rows = conn.execute(
            "SELECT delivery_id, action, at FROM audit WHERE action IN"
            " ('delivery.claimed', 'delivery.sending', 'delivery.published')"
        ).fetchall()
    finally:
        conn.close()
    marks: dict[int, dict[str, datetime]] = {}
    for delivery_id, action, at in rows:
        marks.setdefault(delivery_id, {})[action.split(".")[1]] = from_db(at)
    picked, answered = [], []
    for m in marks.values():
        if len(m) == 3:
            picked.append((m["sending"] - m["claimed"]).total_seconds())
            answered.append((m["published"] - m["sending"]).total_seconds())
    return {
        "claimed_to_send_ms": statistics.mean(picked) * 1000,
        "send_to_answer_ms": statistics.mean(answered) * 1000,
    }


def concurrency(args: argparse.Namespace) -> None:
    count = args.count or (500 if args.quick else 2_000)
    accounts, workers, latency = 100, 8, 0.05
    ideal = workers / latency
    goal = 0.8 * ideal
    header(
        f"daemon concurrency: {count:,} deliveries over {accounts} accounts,"
        f" {latency * 1000:.0f} ms latency, workers = {workers}"
    )
    channels = [f"acct{i:03d}" for i in range(accounts)]
    daemon = {"workers": workers, "poll_seconds": 1}
    results: dict[str, Any] = {"count": count, "goal_rate": goal, "runs": {}}
    with receiver() as box:
        print(
            f"   webhook receiver at {box.base} (bench/_receiver.py, separate process),"
            f" sleeping {latency * 1000:.0f} ms before each webhook request"
        )
        template = build_template(
            "concurrency", box.base, channels, count, lambda i: channels[i % accounts]
        )

        box.reset(delay=latency)
        parallel_posts(box.base, workers, 1.0)  # warm up
        box.reset(delay=latency)
        answered, elapsed = parallel_posts(box.base, workers, 3.0 if args.quick else 6.0)
        ceiling = answered / elapsed
        results["ceiling"] = {"requests": answered, "seconds": elapsed, "rate": ceiling}
        print(
            f"\n   baseline: {workers} threads × keep-alive POST loop on the delayed endpoint:"
            f" {ceiling:.1f}/s ({ceiling / ideal:.2f} × the ideal {ideal:.0f}/s)"
        )
        floor = fsync_floor(DIR / "fsync-floor.db")
        results["fsync_floor_ms"] = floor * 1000
        print(
            f"   one committed 1-row write transaction (the fsync floor) {floor * 1000:.3f} ms;"
            f" goal: ≥ 0.8 × {workers} / {latency} s = {goal:.0f}/s\n"
        )

        def report(label: str, rate: float, extra: str = "") -> None:
            verdict = "met" if rate >= goal else "missed"
            print(
                f"   {label:<52} {rate:7.1f}/s  {rate / goal:5.2f}× goal ({verdict})"
                f"  {rate / ceiling:5.2f}× baseline{extra}"
            )

        # the daemon: a finished send claims the next at once
        box.reset(delay=latency)
        ws = DIR / "concurrency-daemon"
        config = write_workspace(ws, box.base, channels, daemon, template)
        db = ws / "kepubot.db"
        started = time.perf_counter()
        process = start_daemon(config, ws / "daemon.log")
        try:
            wall = wait_published(db, count, 300, process)
        finally:
            code = stop_daemon(process)
        total = time.perf_counter() - started
        n, span = attempt_span(db)
        results["runs"]["kepubot run (daemon)"] = {
            "attempts": n,
            "attempt_span_seconds": span,
            "rate_attempts": count / span,
            "wall_to_all_published": wall,
            "rate_wall": count / wall,
            "exit_code": code,
            "total_with_shutdown": total,
        }
        report("`kepubot run`: first send start → last send end", count / span)
        report("`kepubot run`: spawn → all published (with start-up)", count / wall)
        timeline = send_timeline(db)
        cycle = workers / (count / span) * 1000
        rest = cycle - timeline["claimed_to_send_ms"] - timeline["send_to_answer_ms"]
        results["runs"]["kepubot run (daemon)"]["timeline"] = {**timeline, "cycle_ms": cycle}
        print(
            f"     per worker slot and delivery ({cycle:.1f} ms = {workers} / rate): claimed → send"
            f" started {timeline['claimed_to_send_ms']:.1f} ms; send started → answer"
            f" {timeline['send_to_answer_ms']:.1f} ms (the endpoint sleeps {latency * 1000:.0f});"
            f" answer → next claim in that slot {rest:.1f} ms"
        )

        # run --once: claims up to `workers`, waits for all of them, claims again
        box.reset(delay=latency)
        ws = DIR / "concurrency-once"
        config = write_workspace(ws, box.base, channels, daemon, template)
        wall, said = run_once_subprocess(config, ws / "run-once.log")
        check_all_published("run --once", ws / "kepubot.db", count)
        n, span = attempt_span(ws / "kepubot.db")
        results["runs"]["kepubot run --once"] = {
            "wall": wall,
            "rate_wall": count / wall,
            "attempt_span_seconds": span,
            "rate_attempts": count / span,
            "stdout": said,
        }
        report("`kepubot run --once`: first send start → last send end", count / span)
        report("`kepubot run --once`: spawn → exit", count / wall)
        if box.duplicates():
            print(f"   WARNING: the receiver saw {box.duplicates()} duplicate sends")

        if args.diagnose:
            import_engine_modules()
            print("\n   diagnostics: run_forever in-process, until all published:")
            for change in ("as is", "synchronous=NORMAL", "writer lock"):
                box.reset(delay=latency)
                ws = DIR / "concurrency-inproc"
                config = write_workspace(ws, box.base, channels, daemon, template)
                timer = TimedSQL()
                with what_if(change), timer.installed():
                    wall = run_daemon_inprocess(config, ws / "daemon.log", count)
                n, span = attempt_span(ws / "kepubot.db")
                results["runs"][f"in-process daemon, {change}"] = {
                    "wall": wall,
                    "rate_attempts": count / span,
                    "sql": timer.report(count, top=0 if change != "as is" else 8),
                }
                report(f"what-if {change}: first send → last send end", count / span)
    write_results(f"concurrency-{count}", results)


# --- 3. punctuality ---------------------------------------------------------------------------


def ideal_poller(dues: list[datetime], poll: float, stop: threading.Event) -> list[float]:
    """Baseline: a plain loop waking every ``poll`` seconds that "sends" everything due at
    once; returns its lateness per due time (seconds)."""
    lateness: list[float] = []
    index = 0
    tick = time.monotonic() + poll
    while index < len(dues) and not stop.is_set():
        time.sleep(max(0.0, tick - time.monotonic()))
        now = datetime.now(UTC)
        while index < len(dues) and dues[index] <= now:
            lateness.append((now - dues[index]).total_seconds())
            index += 1
        tick += poll
    return lateness


def punctuality(args: argparse.Namespace) -> None:
    count = args.count or (200 if args.quick else 1_000)
    span = args.span or (60.0 if args.quick else 300.0)
    channels = [f"cms{i}" for i in range(10)]
    poll = 1.0
    goal_p99 = 1.5
    header(
        f"daemon punctuality: {count:,} deliveries due over {span:.0f} s on {len(channels)}"
        f" channels, poll_seconds = {poll:g}"
    )
    results: dict[str, Any] = {"count": count, "span": span}
    with receiver() as box:
        print(f"   webhook receiver at {box.base} (bench/_receiver.py, separate process)")
        ws = DIR / "punctuality"
        config = write_workspace(ws, box.base, channels, {"workers": 8, "poll_seconds": poll}, None)
        lead = 10.0 + count / 100
        first = datetime.now(UTC) + timedelta(seconds=lead)
        rng = random.Random(11)
        dues = sorted(first + timedelta(seconds=rng.uniform(0, span)) for _ in range(count))
        # stored with millisecond precision, as kepubot stores them
        dues = [d.replace(microsecond=d.microsecond // 1000 * 1000) for d in dues]
        seconds = queue_posts(
            config, count, lambda i: channels[i % len(channels)], dues.__getitem__
        )
        margin = (first - datetime.now(UTC)).total_seconds()
        print(
            f"   {count:,} posts scheduled in {seconds:.1f} s; the first is due in {margin:.1f} s"
        )
        if margin < 2:
            raise SystemExit("scheduling took too long; the first deliveries are already due")

        db = ws / "kepubot.db"
        process = start_daemon(config, ws / "daemon.log")
        stop = threading.Event()
        baseline: list[float] = []
        poller = threading.Thread(
            target=lambda: baseline.extend(ideal_poller(dues, poll, stop)), daemon=True
        )
        poller.start()
        try:
            time.sleep(max(0.0, (dues[-1] - datetime.now(UTC)).total_seconds()))
            wait_published(db, count, 120, process)
        finally:
            stop.set()
            code = stop_daemon(process)
            poller.join(timeout=5)

        from kepubot.timeutil import from_db

        conn = CONNECT(db)
        rows = conn.execute(
            "SELECT d.due_at, a.started_at,"
            " (SELECT MIN(at) FROM audit WHERE delivery_id = d.id AND action = 'delivery.claimed')"
            " FROM deliveries d JOIN attempts a ON a.delivery_id = d.id AND a.number = 1"
        ).fetchall()
        conn.close()
        late = [(from_db(s) - from_db(d)).total_seconds() for d, s, _ in rows]
        to_claim = [(from_db(c) - from_db(d)).total_seconds() for d, _, c in rows]
        claim_to_send = [(from_db(s) - from_db(c)).total_seconds() for _, s, c in rows]

        def figures(samples: list[float]) -> dict[str, float]:
            return {
                "n": len(samples),
                "p50": percentile(samples, 50),
                "p90": percentile(samples, 90),
                "p99": percentile(samples, 99),
                "max": max(samples),
                "min": min(samples),
            }

        measured = figures(late)
        base = figures(baseline)
        results.update(
            lateness=measured,
            baseline=base,
            due_to_claim=figures(to_claim),
            claim_to_send=figures(claim_to_send),
            over_goal=sum(1 for x in late if x > goal_p99),
            exit_code=code,
        )
        print(f"\n   lateness = attempts.started_at − deliveries.due_at, {len(late):,} sends")
        print(f"   {'':<44} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8}  (s)")
        for label, f in (
            ("kepubot run", measured),
            ("  of which due → claimed (audit row)", results["due_to_claim"]),
            ("  of which claimed → send started", results["claim_to_send"]),
            (f"baseline: ideal {poll:g} s poller, same run", base),
        ):
            print(f"   {label:<44} {f['p50']:8.3f} {f['p90']:8.3f} {f['p99']:8.3f} {f['max']:8.3f}")
        print(
            f"   ratio to baseline: p50 {measured['p50'] / base['p50']:.2f}×,"
            f" p99 {measured['p99'] / base['p99']:.2f}×;"
            f" goal p99 ≤ {goal_p99} s: {'met' if measured['p99'] <= goal_p99 else 'missed'}"
            f" ({results['over_goal']} sends later than {goal_p99} s; min lateness"
            f" {measured['min']:.3f} s)"
        )
        if measured["min"] < 0:
            print("   WARNING: a send started before its due time")
    write_results(f"punctuality-{count}", results)


# --- 4. idle footprint ------------------------------------------------------------------------


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the ")": state is field 3, utime 14 and stime 15 (1-based over the whole line)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "Threads", "voluntary_ctxt_switches"):
            values[key] = int(rest.split()[0])
    return values


def wakeups(pid: int) -> int:
    """Voluntary context switches summed over every thread of the process."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    total += int(line.split()[1])
    return total


def idle(args: argparse.Namespace) -> None:
    seconds = args.seconds or (15.0 if args.quick else 60.0)
    warmup = 5.0
    channels = [f"cms{i}" for i in range(10)]
    header(f"daemon idle footprint: nothing due, {seconds:.0f} s after {warmup:.0f} s of start-up")
    ws = DIR / "idle"
    # nothing listens on port 9: no request is made while nothing is due
    config = write_workspace(ws, "http://127.0.0.1:9", channels, {"poll_seconds": 1}, None)
    later = datetime.now(UTC) + timedelta(days=1)
    queue_posts(config, 1_000, lambda i: channels[i % 10], lambda i: later + timedelta(seconds=i))
    print("   1,000 deliveries queued for tomorrow (so the due-queries have rows to skip)")

    daemon = start_daemon(config, ws / "daemon.log")
    base = subprocess.Popen(
        [str(PYTHON), "-c", f"import time; time.sleep({seconds + warmup + 30})"],
        env=bytecode_env(),
    )
    results: dict[str, Any] = {"seconds": seconds}
    try:
        time.sleep(warmup)
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon exited ({daemon.returncode}); see {ws / 'daemon.log'}")
        pids = {"kepubot run": daemon.pid, 'python -c "time.sleep"': base.pid}
        start_cpu = {k: proc_cpu_seconds(p) for k, p in pids.items()}
        start_wake = {k: wakeups(p) for k, p in pids.items()}
        started = time.monotonic()
        rss_samples: dict[str, list[int]] = {k: [] for k in pids}
        while time.monotonic() - started < seconds:
            for k, p in pids.items():
                rss_samples[k].append(proc_status(p)["VmRSS"])
            time.sleep(min(5.0, max(0.0, seconds - (time.monotonic() - started))))
        elapsed = time.monotonic() - started
        for k, p in pids.items():
            status = proc_status(p)
            cpu = proc_cpu_seconds(p) - start_cpu[k]
            results[k] = {
                "cpu_seconds": cpu,
                "cpu_percent": cpu / elapsed * 100,
                "rss_kb": status["VmRSS"],
                "hwm_kb": status["VmHWM"],
                "threads": status["Threads"],
                "rss_min_kb": min(rss_samples[k]),
                "rss_max_kb": max(rss_samples[k] + [status["VmRSS"]]),
                "rss_samples_kb": rss_samples[k] + [status["VmRSS"]],
                "wakeups_per_s": (wakeups(p) - start_wake[k]) / elapsed,
            }
    finally:
        base.kill()
        base.wait()
        code = stop_daemon(daemon)
    results["exit_code"] = code
    log_lines = (ws / "daemon.log").read_text(errors="replace").splitlines()
    results["log_lines"] = len(log_lines)

    d, b = results["kepubot run"], results['python -c "time.sleep"']
    print(
        f"\n   {'':<26} {'CPU %':>7} {'RSS MB':>7} {'peak MB':>8} {'threads':>7} {'wakeups/s':>9}"
    )
    for label, r in (("kepubot run", d), ('python -c "time.sleep"', b)):
        print(
            f"   {label:<26} {r['cpu_percent']:7.3f} {r['rss_kb'] / 1024:7.1f}"
            f" {r['hwm_kb'] / 1024:8.1f} {r['threads']:7d} {r['wakeups_per_s']:9.1f}"
        )
    cpu_ratio = (
        f"{d['cpu_percent'] / b['cpu_percent']:.0f}× baseline"
        if b["cpu_percent"] > 0
        else f"baseline {b['cpu_percent']:.3f} %"
    )
    print(
        f"   CPU: {d['cpu_percent']:.3f} % ({cpu_ratio}); goal ≤ 1 %:"
        f" {'met' if d['cpu_percent'] <= 1 else 'missed'}"
    )
    print(
        f"   RSS: {d['rss_kb'] / 1024:.1f} MB ({d['rss_kb'] / b['rss_kb']:.1f}× baseline;"
        f" {d['rss_min_kb'] / 1024:.1f}–{d['rss_max_kb'] / 1024:.1f} MB during the interval);"
        f" goal ≤ 80 MB: {'met' if d['rss_kb'] <= 80 * 1024 else 'missed'}"
    )
    print(f"   daemon log: {len(log_lines)} lines; exit code after SIGTERM {code}")
    write_results(f"idle-{seconds:.0f}", results)


# --- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("throughput", help="10,000 due deliveries, 1 and 8 channels")
    p.add_argument("--quick", action="store_true", help="1,000 deliveries (500 in-process)")
    p.add_argument("--count", type=int, help="deliveries per `run --once` (default 10,000)")
    p.add_argument(
        "--inprocess-count", type=int, help="deliveries per in-process run (default 3,000)"
    )
    p.add_argument(
        "--channels", choices=["1", "8", "both"], default="both", help="layouts to run (both)"
    )
    p.add_argument(
        "--diagnose",
        action="store_true",
        help="instead of the runs: wall time per SQL statement, cProfile, strace, and what-ifs"
        " (synchronous=NORMAL, one writer lock) on 2,000 deliveries per layout",
    )
    p.set_defaults(run=throughput)
    p = sub.add_parser("concurrency", help="100 accounts, 50 ms latency, workers = 8")
    p.add_argument("--quick", action="store_true", help="500 deliveries")
    p.add_argument("--count", type=int, help="deliveries (default 2,000)")
    p.add_argument(
        "--diagnose",
        action="store_true",
        help="add in-process daemon runs: wall time per SQL statement, and what-ifs",
    )
    p.set_defaults(run=concurrency)
    p = sub.add_parser("punctuality", help="sends due at spread times, poll_seconds = 1")
    p.add_argument("--quick", action="store_true", help="200 deliveries over 1 minute")
    p.add_argument("--count", type=int, help="deliveries (default 1,000)")
    p.add_argument("--span", type=float, help="seconds the due times spread over (default 300)")
    p.set_defaults(run=punctuality)
    p = sub.add_parser("idle", help="`kepubot run` with nothing due")
    p.add_argument("--quick", action="store_true", help="15 s")
    p.add_argument("--seconds", type=float, help="measured interval (default 60)")
    p.set_defaults(run=idle)
    args = parser.parse_args()
    DIR.mkdir(parents=True, exist_ok=True)
    args.run(args)


if __name__ == "__main__":
    main()
