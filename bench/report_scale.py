"""Report scale: does `kepubot report` cost the same with 1 and with 100 metric snapshots per
delivery?

    .venv/bin/python bench/report_scale.py            # 10⁵ and 10⁷ snapshots (~2 GB)
    .venv/bin/python bench/report_scale.py --quick    # 10⁵ and 10⁶ snapshots
    .venv/bin/python bench/report_scale.py --per-delivery 1,30 --rebuild

Both databases hold the same 50,000 posts × 2 channels (weibo-main, wechat-main) = 100,000
``published`` deliveries, published over the 90 days before a fixed "now" (2026-11-29 12:00
Asia/Shanghai), and the same ``metrics_latest`` (the newest snapshot per delivery, as
``kepubot.queue.metrics.store`` keeps it). They differ only in the history in ``metrics``:
1 snapshot per delivery (10⁵ rows) or 100 (10⁷ rows). Snapshots are inserted round by round
(every delivery's first, then every delivery's second, ...), so ``metrics.id`` order is
collection order, not delivery order, as the collector writes them. Weibo snapshots have no
views and WeChat snapshots no likes or comments, as the platforms report them.

The schema comes from kepubot's migrations (``open_database``); rows go in with direct SQL:
``executemany`` in batches of 50,000 inside one transaction, on a build connection with
``synchronous=OFF`` and ``journal_mode=OFF`` (this connection only), secondary indexes
dropped during the load and recreated from their own SQL afterwards. The databases are cached
in ``bench/out/report_scale/`` (key: snapshots per delivery, data-shape version, a hash of
``MIGRATIONS``); the measurements only read them.

Measured on each database, through an App whose connection is kepubot's own (WAL, default
cache):
- ``build_report(app, since, until, now)`` for the 7 days and the 30 days before "now"
  (each call also reads the previous period of the same length);
- ``reporting.published_rows`` alone for the same two periods (the SQL and row dicts);
- ``render(report, fmt)`` of the 7-day report to JSON, HTML and XLSX;
- the first ``build_report`` on a freshly opened connection (SQLite cache cold, OS cache warm).
The ratio is median(most snapshots) / median(fewest); the goal is ≤ 2 for ``build_report``.
The plan of every statement ``build_report`` runs is printed (EXPLAIN QUERY PLAN of the SQL
captured with ``set_trace_callback``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from _common import (
    OUT,
    app_for,
    body_for,
    captured_sql,
    header,
    kepubot_init,
    plan,
    summary,
    time_calls,
    title_for,
)

from kepubot.queue import reporting
from kepubot.queue.db import open_database
from kepubot.queue.migrations import MIGRATIONS
from kepubot.reports.aggregate import build_report
from kepubot.reports.render import render
from kepubot.timeutil import to_db

BUILD_VERSION = 1  # bump when the data shape changes, to rebuild cached databases
SCHEMA_KEY = hashlib.sha256(repr(MIGRATIONS).encode()).hexdigest()[:12]
DIR = OUT / "report_scale"
TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=TZ)  # fixed, so the cached data never goes stale
POSTS = 50_000
CHANNELS = ("weibo-main", "wechat-main")
SPAN_DAYS = 90
AUTHORS = ("zhang", "liu", "chen", "sun", "zhou", "wu", "zheng", "wang")
TAGS = ("天文", "生物", "医学", "地理", "物理", "化学", "气象", "环境", "科技", "健康")
BATCH = 50_000
HISTORY_DAYS = 30  # snapshots of a delivery spread over at most its first 30 days
PERIODS = {"7-day": 7, "30-day": 30}
FORMATS = ("json", "html", "xlsx")


# --- building --------------------------------------------------------------------------------


class Stamp:
    """kepubot's stored time format for epoch seconds, with the minute prefix cached (10⁷ rows
    would otherwise spend most of the build in strftime)."""

    def __init__(self) -> None:
        self._minutes: dict[int, str] = {}

    def __call__(self, seconds: float) -> str:
        millis = int(seconds * 1000)
        minute, rest = divmod(millis, 60_000)
        prefix = self._minutes.get(minute)
        if prefix is None:
            prefix = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(minute * 60))
            self._minutes[minute] = prefix
        second, milli = divmod(rest, 1000)
        return f"{prefix}:{second:02d}.{milli:03d}Z"


class Shape:
    """The deliveries and their snapshot values, a pure function of the delivery index, so that
    every database holds the same deliveries and the same latest snapshot."""

    def __init__(self) -> None:
        rng = random.Random(20261129)
        now = NOW.timestamp()
        start = now - SPAN_DAYS * 86400
        step = SPAN_DAYS * 86400 / POSTS
        self.created = [start + i * step + rng.uniform(0, step * 0.8) for i in range(POSTS)]
        # per delivery: (published epoch, snapshot span seconds, reach factor)
        self.published: list[float] = []
        self.span: list[float] = []
        self.factor: list[float] = []
        for created in self.created:
            for slot, _channel in enumerate(CHANNELS):
                published = created + 600 + slot * rng.uniform(30, 3600)
                published = min(published, now - 120)
                self.published.append(published)
                self.span.append(max(60.0, min(now - published - 60, HISTORY_DAYS * 86400)))
                self.factor.append(rng.lognormvariate(0, 1.0))

    def deliveries(self) -> int:
        return len(self.published)

    def snapshot(self, j: int, k: int, per_delivery: int) -> tuple[float, tuple]:
        """(collected epoch, (views, likes, comments, shares, favorites)) of snapshot k."""
        fraction = (k + 1) / per_delivery
        collected = self.published[j] + 3600 * min(1.0, fraction) + self.span[j] * fraction
        collected = min(collected, NOW.timestamp() - 30)
        hours = max(0.0, collected - self.published[j]) / 3600
        reach = self.factor[j] * min(hours, 24 + hours**0.5)
        if j % 2 == 0:  # weibo-main: counters only, no reads
            return collected, (None, int(12 * reach), int(3 * reach), int(2 * reach), None)
        return collected, (int(50 * reach), None, None, int(4 * reach), int(1.2 * reach))


def _raw(j: int, values: tuple) -> str:
    """A short stand-in for the platform answer ``store`` keeps in ``metrics.raw``."""
    views, likes, comments, shares, favorites = values
    if j % 2 == 0:
        return (
            f'{{"id": {4_900_000_000_000_001 + j}, "attitudes": {likes},'
            f' "comments": {comments}, "reposts": {shares}}}'
        )
    return (
        f'{{"source": "datacube/getarticletotal", "msgid": "{2_247_483_600 + j}_1",'
        f' "int_page_read_count": {views}, "share_count": {shares},'
        f' "add_to_fav_count": {favorites}}}'
    )


def _chunks(rows: Iterator[tuple], size: int = BATCH) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def build(path: Path, per_delivery: int, shape: Shape, *, rebuild: bool) -> dict:
    """The cached database with ``per_delivery`` snapshots per delivery."""
    meta_path = path.with_suffix(".json")
    if not rebuild and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (
            meta.get("version") == BUILD_VERSION
            and meta.get("schema") == SCHEMA_KEY
            and meta.get("per_delivery") == per_delivery
        ):
            meta["cached"] = True
            return meta
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    print(f"   building {path.name} ({per_delivery} snapshot(s) per delivery) ...", flush=True)
    started = time.perf_counter()
    open_database(path, to_db(NOW)).close()  # the schema from kepubot's migrations

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('posts', 'post_channels', 'deliveries', 'metrics', 'metrics_latest')"
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    stamp = Stamp()
    rng = random.Random(7)
    bodies = [body_for(rng, rng.randint(4, 12)) for _ in range(499)]
    n = shape.deliveries()
    timings: dict[str, float] = {}

    def posts() -> Iterator[tuple]:
        for i in range(POSTS):
            post_id = i + 1
            created = stamp(shape.created[i])
            digest = hashlib.sha256(str(post_id).encode()).hexdigest()
            tags = [TAGS[post_id % len(TAGS)]] + ([TAGS[(post_id * 7) % 10]] if i % 3 else [])
            yield (
                post_id,
                title_for(rng, post_id),
                bodies[post_id % len(bodies)],
                f"https://kepu.example.org/articles/{post_id}",
                json.dumps(tags, ensure_ascii=False),
                json.dumps(list(CHANNELS)),
                AUTHORS[post_id % len(AUTHORS)],
                "approved",
                1,
                1,
                digest,
                digest,
                created,
                created,
            )

    def post_channels() -> Iterator[tuple]:
        for i in range(POSTS):
            for channel in CHANNELS:
                yield (i + 1, channel, "approved")

    def deliveries() -> Iterator[tuple]:
        for j in range(n):
            post_id = j // 2 + 1
            channel = CHANNELS[j % 2]
            published = shape.published[j]
            due = stamp(published - 5)
            done = stamp(published)
            thirty = published + 30 * 86400
            next_at = stamp(thirty) if thirty > NOW.timestamp() else None
            remote = (
                str(4_900_000_000_000_001 + j)
                if channel == "weibo-main"
                else str(1_000_000_000 + j)
            )
            url = (
                f"https://weibo.com/5000000001/{remote}"
                if channel == "weibo-main"
                else f"https://mp.weixin.qq.com/s/{hashlib.md5(remote.encode()).hexdigest()}"
            )
            yield (
                j + 1,
                post_id,
                channel,
                "published",
                due,
                due,
                1,
                hashlib.sha256(str(post_id).encode()).hexdigest(),
                remote,
                url,
                done,
                next_at,
                6 if next_at is None else 5,
                stamp(shape.created[j // 2]),
                done,
            )

    def metrics() -> Iterator[tuple]:
        metric_id = 0
        for k in range(per_delivery):
            for j in range(n):
                metric_id += 1
                collected, values = shape.snapshot(j, k, per_delivery)
                yield (metric_id, j + 1, stamp(collected), *values, _raw(j, values))

    def latest() -> Iterator[tuple]:
        last = per_delivery - 1
        for j in range(n):
            collected, values = shape.snapshot(j, last, per_delivery)
            yield (j + 1, last * n + j + 1, stamp(collected), *values)

    def account_metrics() -> Iterator[tuple]:
        first = (NOW - timedelta(days=SPAN_DAYS)).date()
        for d in range(SPAN_DAYS + 1):
            day = (first + timedelta(days=d)).isoformat()
            for c, channel in enumerate(CHANNELS):
                followers = 100_000 * (c + 1) + 150 * d + (d * 37 % 50)
                yield (channel, day, followers, 150 + (d * 37 % 50), "{}", day + "T16:05:00.000Z")

    loads = [
        (
            "posts",
            "INSERT INTO posts (id, title, body, link, tags, channels, author, state,"
            " review_round, review_level, content_hash, approved_hash, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            posts,
        ),
        (
            "post_channels",
            "INSERT INTO post_channels (post_id, channel, state) VALUES (?, ?, ?)",
            post_channels,
        ),
        (
            "deliveries",
            "INSERT INTO deliveries (id, post_id, channel, state, due_at, not_before, attempts,"
            " content_hash, remote_id, remote_url, published_at, next_metrics_at, metrics_step,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            deliveries,
        ),
        (
            "metrics",
            "INSERT INTO metrics (id, delivery_id, collected_at, views, likes, comments, shares,"
            " favorites, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            metrics,
        ),
        (
            "metrics_latest",
            "INSERT INTO metrics_latest (delivery_id, metrics_id, collected_at, views, likes,"
            " comments, shares, favorites) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            latest,
        ),
        (
            "account_metrics",
            "INSERT INTO account_metrics (channel, day, followers, followers_gained, raw,"
            " collected_at) VALUES (?, ?, ?, ?, ?, ?)",
            account_metrics,
        ),
    ]
    conn.execute("BEGIN")
    for table, sql, rows in loads:
        began = time.perf_counter()
        for batch in _chunks(rows()):
            conn.executemany(sql, batch)
        timings[table] = round(time.perf_counter() - began, 1)
    conn.execute("COMMIT")
    began = time.perf_counter()
    for _name, sql in indexes:
        conn.execute(sql)
    timings["indexes"] = round(time.perf_counter() - began, 1)
    counts = {
        table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("posts", "deliveries", "metrics", "metrics_latest")
    }
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    meta = {
        "version": BUILD_VERSION,
        "schema": SCHEMA_KEY,
        "per_delivery": per_delivery,
        "counts": counts,
        "timings": timings,
        "build_seconds": round(time.perf_counter() - started, 1),
        "bytes": path.stat().st_size,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    meta["cached"] = False
    return meta


# --- measuring ------------------------------------------------------------------------------


def period(days: int) -> tuple[date, date]:
    """The ``days`` complete local days before NOW's day."""
    until = NOW.date() - timedelta(days=1)
    return until - timedelta(days=days - 1), until


def bounds(since: date, until: date) -> tuple[datetime, datetime]:
    start = datetime.combine(since, datetime.min.time(), tzinfo=TZ)
    return start, datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=TZ)


def measure(db: Path, workspace: Path, iterations: int) -> tuple[dict, dict, dict]:
    """({case: samples}, {case: figure}, {label: [(sql, plan)]}) for one database."""
    results: dict[str, list[float]] = {}
    figures: dict[str, object] = {}
    plans: dict[str, list[tuple[str, list[str]]]] = {}

    # First call on a fresh connection: SQLite's cache is empty, the OS cache is not.
    app = app_for(db, workspace)
    since, until = period(7)
    start = time.perf_counter()
    build_report(app, since=since, until=until, now=NOW)
    results["build_report 7-day, first call on a new connection"] = [time.perf_counter() - start]
    app.close()

    app = app_for(db, workspace)
    conn = app.store.conn()
    for label, days in PERIODS.items():
        since, until = period(days)

        def call(since: date = since, until: date = until) -> dict:
            return build_report(app, since=since, until=until, now=NOW)

        report = call()
        statements = captured_sql(conn, call)
        plans[label] = [(sql, plan(conn, sql)) for sql in dict.fromkeys(statements)]
        count = iterations if days <= 7 else max(3, (iterations + 1) // 2 + 1)
        results[f"build_report {label}"] = time_calls(call, count, warmup=1, budget=60)
        figures[f"{label} deliveries"] = report["totals"]["deliveries"]
        figures[f"{label} previous deliveries"] = report["previous"]["totals"]["deliveries"]
        figures[f"{label} views"] = report["totals"]["views"]
        start_at, end_at = bounds(since, until)
        results[f"published_rows {label} [SQL + row dicts]"] = time_calls(
            lambda a=start_at, b=end_at: reporting.published_rows(conn, a, b, None),
            count,
            warmup=1,
            budget=60,
        )
        if label == "7-day":
            for fmt in FORMATS:
                payload = render(report, fmt)
                figures[f"{fmt} bytes"] = len(
                    payload.encode("utf-8") if isinstance(payload, str) else payload
                )
                results[f"render {fmt} (7-day)"] = time_calls(
                    lambda fmt=fmt, report=report: render(report, fmt), iterations * 3, warmup=2
                )
    app.close()
    return results, figures, plans


def profile(db: Path, workspace: Path) -> None:
    """Where a 30-day build_report spends its time (cProfile, own time)."""
    import cProfile
    import pstats

    app = app_for(db, workspace)
    since, until = period(30)
    build_report(app, since=since, until=until, now=NOW)
    profiler = cProfile.Profile()
    profiler.enable()
    report = build_report(app, since=since, until=until, now=NOW)
    profiler.disable()
    app.close()
    rows = report["totals"]["deliveries"] + report["previous"]["totals"]["deliveries"]
    print(f"\n== cProfile of one 30-day build_report ({rows:,} rows read), by own time ==")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10⁵ and 10⁶ snapshots (1 and 10)")
    parser.add_argument(
        "--per-delivery", help="comma-separated snapshots per delivery (default 1,100)"
    )
    parser.add_argument("--iterations", type=int, default=7, help="timed 7-day reports per DB")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached databases")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one 30-day build_report (largest DB)"
    )
    args = parser.parse_args()
    if args.per_delivery:
        sizes = [int(s) for s in args.per_delivery.split(",")]
    else:
        sizes = [1, 10] if args.quick else [1, 100]

    header("report_scale: build_report and rendering with 1 vs many snapshots per delivery")
    DIR.mkdir(parents=True, exist_ok=True)
    workspace = DIR / "workspace"
    kepubot_init(workspace)
    shape = Shape()
    print(
        f"   {POSTS:,} posts × {len(CHANNELS)} channels = {shape.deliveries():,} published"
        f" deliveries over {SPAN_DAYS} days; now = {NOW.isoformat()}"
    )
    for label, days in PERIODS.items():
        since, until = period(days)
        print(f"   {label} period: {since} .. {until} (and the {days} days before it)")

    metas: dict[int, dict] = {}
    for per in sizes:
        metas[per] = build(DIR / f"metrics-x{per}.db", per, shape, rebuild=args.rebuild)
    all_results: dict[int, dict[str, list[float]]] = {}
    all_plans: dict[int, dict] = {}
    all_figures: dict[int, dict] = {}
    for per in sizes:
        meta = metas[per]
        how = "cached" if meta["cached"] else f"built in {meta['build_seconds']} s"
        c = meta["counts"]
        print(
            f"\n-- {c['metrics']:,} snapshots ({per} per delivery; {how};"
            f" {meta['bytes'] / 1e6:,.0f} MB): {c['deliveries']:,} deliveries,"
            f" {c['metrics_latest']:,} latest rows"
        )
        if not meta["cached"]:
            print(f"   build timings (s): {meta['timings']}")
        sys.stdout.flush()
        results, figures, plans = measure(DIR / f"metrics-x{per}.db", workspace, args.iterations)
        all_results[per], all_figures[per], all_plans[per] = results, figures, plans
        for case, samples in results.items():
            median, p90 = summary(samples)
            print(
                f"   {case:<52} median {median * 1e3:>9,.1f} ms   p90 {p90 * 1e3:>9,.1f} ms"
                f"   (n={len(samples)})"
            )
        print("   " + ", ".join(f"{k}: {v:,}" for k, v in figures.items() if v is not None))
        sys.stdout.flush()

    low, high = sizes[0], sizes[-1]
    n_low, n_high = metas[low]["counts"]["metrics"], metas[high]["counts"]["metrics"]
    print(
        f"\n== summary: median ms per call; ratio = {n_high:,} / {n_low:,} snapshots"
        " (goal ≤ 2 for build_report) =="
    )
    head = "".join(f"{metas[p]['counts']['metrics']:>14,}" for p in sizes)
    print(f"   {'case':<52}{head}   ratio")
    report: dict[str, dict] = {}
    for case in all_results[low]:
        medians = [summary(all_results[p][case])[0] * 1e3 for p in sizes]
        ratio = medians[-1] / medians[0]
        flag = "   <-- over 2" if ratio > 2 and case.startswith("build_report") else ""
        print(
            f"   {case:<52}" + "".join(f"{m:>14,.1f}" for m in medians) + f"   {ratio:5.2f}{flag}"
        )
        report[case] = {
            str(metas[p]["counts"]["metrics"]): {
                "median_ms": round(summary(all_results[p][case])[0] * 1e3, 2),
                "p90_ms": round(summary(all_results[p][case])[1] * 1e3, 2),
                "samples": len(all_results[p][case]),
            }
            for p in sizes
        }
        report[case]["ratio"] = round(ratio, 2)

    print(f"\n== EXPLAIN QUERY PLAN of every statement build_report runs (at {n_high:,}) ==")
    checks = []
    for label, statements in all_plans[high].items():
        shape_high = [lines for _sql, lines in statements]
        differs = [
            metas[p]["counts"]["metrics"]
            for p in sizes
            if [lines for _s, lines in all_plans[p][label]] != shape_high
        ]
        print(f"\n-- build_report {label}")
        for sql, lines in statements:
            print(f"   {sql}")
            for line in lines:
                print(f"     {line}")
            if "FROM deliveries d" in sql:
                text = "\n".join(lines)
                checks.append(
                    (
                        label,
                        "USING INDEX deliveries_published" in text,
                        "metrics_latest" not in text or "m USING INTEGER PRIMARY KEY" in text,
                        "metrics " not in sql.split("FROM", 1)[1],
                    )
                )
        if differs:
            print(f"   (the plan differs at {', '.join(f'{d:,}' for d in differs)} snapshots)")
    print()
    for label, by_index, by_pk, no_history in checks:
        print(
            f"   published_rows {label}: deliveries_published {'yes' if by_index else 'NO'};"
            f" metrics_latest by primary key {'yes' if by_pk else 'NO'};"
            f" reads metrics history {'no' if no_history else 'YES'}"
        )

    if args.profile:
        profile(DIR / f"metrics-x{high}.db", workspace)

    out = DIR / f"results-{'-'.join(map(str, sizes))}.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "per_delivery": sizes,
                "databases": {str(p): metas[p] for p in sizes},
                "results": report,
                "figures": {str(p): all_figures[p] for p in sizes},
                "plans": {
                    label: [{"sql": sql, "plan": lines} for sql, lines in statements]
                    for label, statements in all_plans[high].items()
                },
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
