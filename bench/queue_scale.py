"""Queue scale: does claiming the next due delivery and listing the first page of posts cost the
same with 10³ and 10⁶ rows?

    .venv/bin/python bench/queue_scale.py            # 10³, 10⁵, 10⁶ posts
    .venv/bin/python bench/queue_scale.py --quick    # 10³, 10⁴ posts
    .venv/bin/python bench/queue_scale.py --sizes 1000,100000 --rebuild

The databases are built with kepubot's own migrations, then filled with direct SQL
(``executemany`` in one transaction, secondary indexes dropped during the load and recreated
from their original SQL) and cached in ``bench/out/queue_scale/`` by size. The cached files are
only read; the claim measurements run on a copy.

Data shape (per size N = number of posts): the newest 300 posts are the working set at every
size, as in a real newsroom where history grows but the review queue and the schedule do not:
25 % drafts, 20 % in review (~60 posts), 5 % rejected, 50 % approved with deliveries ``queued``
and ``not_before`` spread from 3 days ago to 4 days ahead (~220 queued deliveries, ~95 of them
due). Everything older is history: approved posts with
``published`` deliveries (1 % failed, 0.5 % cancelled), plus some cancelled/rejected/draft
posts. Each post targets news-feed (75 %), weibo-main (50 %), wechat-main (20 %), at least one.

Measured per size (median and p90 of single calls, microseconds):
- ``claim_next``: the daemon's claim (BEGIN IMMEDIATE, UPDATE ... RETURNING, audit row, COMMIT),
  followed each time by an untimed ``release_claim`` so the same due row is claimed again;
  plus the same with ``exclude_channels``, the due-row lookup SQL alone, and a one-row
  fsync'd write transaction as the floor every committed claim pays.
- ``list_posts(limit=50)``: no filter, ``--state in_review``, ``--channel wechat-main``, and two
  combined filters (``--state in_review`` with ``--channel news-feed`` / ``--author zhang``);
  full call (SQL + pydantic models) and the captured SQL alone, with its query plan.
The ratio column is median(largest size) / median(smallest size); the goal is ≤ 2.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from _common import OUT, app_for, captured_sql, header, kepubot_init, plan, summary, time_calls

from kepubot.queue import deliveries
from kepubot.queue.db import open_database, transaction
from kepubot.queue.migrations import MIGRATIONS
from kepubot.services.posts import list_posts
from kepubot.timeutil import to_db, utcnow

BUILD_VERSION = 3  # bump when the data shape changes, to rebuild cached databases
# ... and a changed migration (new schema) rebuilds them too
SCHEMA_KEY = hashlib.sha256(repr(MIGRATIONS).encode()).hexdigest()[:12]
DIR = OUT / "queue_scale"
CHANNEL_ODDS = (("news-feed", 0.75), ("wechat-main", 0.20), ("weibo-main", 0.50))
AUTHORS = ("zhang", "liu", "chen", "sun", "zhou")
WORKING_SET = 300  # newest posts still moving through review and the queue, at every size
BATCH = 50_000

LIST_CASES: list[tuple[str, dict[str, str]]] = [
    ("post list (no filter)", {}),
    ("post list --state in_review", {"state": "in_review"}),
    ("post list --channel wechat-main", {"channel": "wechat-main"}),
    (
        "post list --state in_review --channel news-feed",
        {"state": "in_review", "channel": "news-feed"},
    ),
    ("post list --state in_review --author zhang", {"state": "in_review", "author": "zhang"}),
]


# --- building --------------------------------------------------------------------------------


def _stamp(seconds: float) -> str:
    """kepubot's stored time format (fixed width, UTC, milliseconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + ".000Z"


def _rows(n_posts: int, now: float) -> tuple[Iterator[tuple], list[tuple], list[tuple], dict]:
    """Generate posts lazily; post_channels and deliveries are collected as posts are made."""
    from _common import body_for, title_for

    rng = random.Random(n_posts)
    bodies = [body_for(rng, rng.randint(4, 12)) for _ in range(997)]
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(1024)]
    image = json.dumps(
        [
            {
                "kind": "image",
                "path": f"ab/{hashes[0]}.png",
                "sha256": hashes[0],
                "name": "figure.png",
                "size": 2048,
                "mime": "image/png",
                "alt": "",
            }
        ],
        ensure_ascii=False,
        sort_keys=True,
    )
    post_channels: list[tuple] = []
    delivery_rows: list[tuple] = []
    counts: dict[str, int] = {}
    first_new = n_posts - min(WORKING_SET, n_posts) + 1
    step = 60.0  # one post a minute, the newest one a minute ago

    def posts() -> Iterator[tuple]:
        delivery_id = 0
        for post_id in range(1, n_posts + 1):
            created = now - (n_posts - post_id + 1) * step
            created_text = _stamp(created)
            channels = [name for name, odds in CHANNEL_ODDS if rng.random() < odds] or ["news-feed"]
            roll = rng.random()
            if post_id >= first_new:
                state = (
                    "draft"
                    if roll < 0.25
                    else "in_review"
                    if roll < 0.45
                    else "rejected"
                    if roll < 0.50
                    else "approved"
                )
            else:
                state = (
                    "approved"
                    if roll < 0.95
                    else "cancelled"
                    if roll < 0.98
                    else "rejected"
                    if roll < 0.99
                    else "draft"
                )
            counts[f"posts.{state}"] = counts.get(f"posts.{state}", 0) + 1
            digest = hashes[post_id % len(hashes)]
            topic_tags = json.dumps(["科普", f"专题{post_id % 40}"], ensure_ascii=False)
            for channel in channels:
                post_channels.append((post_id, channel))
            if state == "approved" or (state == "cancelled" and roll < 0.965):
                for channel in channels:
                    delivery_id += 1
                    published_at = None
                    if state == "cancelled":
                        d_state, due = "cancelled", created + 3600
                    elif post_id >= first_new:
                        d_state = "queued"
                        due = now + rng.uniform(-3 * 86400, 4 * 86400)
                    else:
                        d_roll = rng.random()
                        due = created + 3600
                        if d_roll < 0.985:
                            d_state, published_at = "published", _stamp(due + 5)
                        elif d_roll < 0.995:
                            d_state = "failed"
                        else:
                            d_state = "cancelled"
                    counts[f"deliveries.{d_state}"] = counts.get(f"deliveries.{d_state}", 0) + 1
                    due_text = _stamp(due)
                    delivery_rows.append(
                        (
                            delivery_id,
                            post_id,
                            channel,
                            d_state,
                            due_text,
                            due_text,
                            1 if d_state in ("published", "failed") else 0,
                            digest,
                            f"remote-{delivery_id}" if published_at else None,
                            published_at,
                            "permanent" if d_state == "failed" else None,
                            "平台返回错误：内容审核未通过" if d_state == "failed" else None,
                            created_text,
                            published_at or created_text,
                        )
                    )
            yield (
                post_id,
                title_for(rng, post_id),
                bodies[post_id % len(bodies)],
                "一句话摘要：" + bodies[(post_id * 7) % len(bodies)][:40],
                f"https://kepu.example.org/articles/{post_id}",
                topic_tags,
                image if post_id % 3 == 0 else "[]",
                json.dumps(channels),
                AUTHORS[post_id % len(AUTHORS)],
                state,
                1 if state != "draft" else 0,
                3 if state == "approved" else (1 + post_id % 3 if state == "in_review" else 0),
                digest,
                digest if state == "approved" else None,
                created_text,
                created_text,
            )

    return posts(), post_channels, delivery_rows, counts


def _chunks(rows: Iterator[tuple] | list[tuple], size: int = BATCH) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def build(path: Path, n_posts: int, *, rebuild: bool) -> dict:
    """The cached database for ``n_posts`` (built if missing, stale or ``rebuild``)."""
    meta_path = path.with_suffix(".json")
    if not rebuild and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if (
            meta.get("version") == BUILD_VERSION
            and meta.get("schema") == SCHEMA_KEY
            and meta.get("posts") == n_posts
        ):
            meta["cached"] = True
            return meta
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    started = time.perf_counter()
    now_dt = utcnow()
    open_database(path, to_db(now_dt)).close()  # the schema from kepubot's migrations

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('posts', 'post_channels', 'deliveries')"
    ).fetchall()
    for name, _sql in indexes:
        conn.execute(f"DROP INDEX {name}")
    posts, post_channels, delivery_rows, counts = _rows(n_posts, now_dt.timestamp())
    conn.execute("BEGIN")
    for batch in _chunks(posts):
        conn.executemany(
            "INSERT INTO posts (id, title, body, summary, link, tags, media, channels, author,"
            " state, review_round, review_level, content_hash, approved_hash, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            batch,
        )
        conn.executemany(
            "INSERT INTO post_channels (post_id, channel) VALUES (?, ?)", post_channels
        )
        post_channels.clear()
        conn.executemany(
            "INSERT INTO deliveries (id, post_id, channel, state, due_at, not_before, attempts,"
            " content_hash, remote_id, published_at, error_kind, last_error, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            delivery_rows,
        )
        delivery_rows.clear()
    conn.execute("COMMIT")
    loaded = time.perf_counter() - started
    for _name, sql in indexes:
        conn.execute(sql)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    meta = {
        "version": BUILD_VERSION,
        "schema": SCHEMA_KEY,
        "posts": n_posts,
        "counts": dict(sorted(counts.items())),
        "built_at": to_db(now_dt),
        "load_seconds": round(loaded, 1),
        "build_seconds": round(time.perf_counter() - started, 1),
        "bytes": path.stat().st_size,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    meta["cached"] = False
    return meta


# --- measuring ------------------------------------------------------------------------------


def measure_size(db: Path, workspace: Path, iterations: int) -> tuple[dict, dict]:
    """Returns ({case: samples}, {case: (sql, plan)}) for one cached database."""
    results: dict[str, list[float]] = {}
    plans: dict[str, list[tuple[str, list[str]]]] = {}

    # Listing: read-only, straight on the cached file.
    app = app_for(db, workspace)
    conn = app.store.conn()
    for _name, filters in LIST_CASES:  # warm the page cache and the code paths once
        list_posts(app, limit=50, **filters)
    for name, filters in LIST_CASES:

        def call(filters: dict[str, str] = filters) -> object:
            return list_posts(app, limit=50, **filters)

        statements = [s for s in captured_sql(conn, call) if s.startswith("SELECT posts.")]
        sql = statements[0]
        plans[name] = [(sql, plan(conn, sql))]
        results[name] = time_calls(call, iterations)
        results[f"{name} [SQL only]"] = time_calls(
            lambda sql=sql: conn.execute(sql).fetchall(), iterations
        )
        rows = len(list_posts(app, limit=50, **filters))
        results[f"{name} [rows]"] = [rows]
    app.close()

    # Claiming writes, so it runs on a copy.
    work = db.with_name(f"work-{db.name}")
    for suffix in ("-wal", "-shm"):
        Path(f"{work}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(db, work)
    try:
        app = app_for(work, workspace)
        conn = app.store.conn()

        def claim_cycle(exclude: tuple[str, ...], samples: list[float]) -> None:
            start = time.perf_counter()
            delivery = deliveries.claim_next(
                conn, worker="bench", now=utcnow(), lease_seconds=300, exclude_channels=exclude
            )
            samples.append(time.perf_counter() - start)
            if delivery is None:
                raise SystemExit(f"{db.name}: no due queued delivery to claim")
            deliveries.release_claim(conn, delivery=delivery, worker="bench", now=utcnow())

        for label, exclude in (
            ("claim_next", ()),
            ("claim_next exclude_channels=[news-feed, weibo-main]", ("news-feed", "weibo-main")),
        ):
            # Every statement claim_next runs (not the release), whatever its version does.
            statements = captured_sql(
                conn,
                lambda exclude=exclude: deliveries.release_claim(
                    conn,
                    delivery=deliveries.claim_next(
                        conn,
                        worker="bench",
                        now=utcnow(),
                        lease_seconds=300,
                        exclude_channels=exclude,
                    ),
                    worker="bench",
                    now=utcnow(),
                ),
            )
            claim_part = statements[: statements.index("COMMIT") + 1]
            plans[label] = [
                (sql, plan(conn, sql))
                for sql in dict.fromkeys(claim_part)
                if sql.split()[0].upper() in ("SELECT", "UPDATE", "INSERT", "DELETE", "WITH")
            ]
            samples: list[float] = []
            for _ in range(3):
                claim_cycle(exclude, [])
            for _ in range(iterations):
                claim_cycle(exclude, samples)
            results[label] = samples

        # The lookup alone: the subquery claim_next runs to find the oldest due row.
        lookup = (
            "SELECT id FROM deliveries INDEXED BY deliveries_due WHERE state = 'queued'"
            " AND not_before <= ? ORDER BY not_before, id LIMIT 1"
        )
        results["due-row lookup [SQL only]"] = time_calls(
            lambda: conn.execute(lookup, (to_db(utcnow()),)).fetchone(), iterations
        )
        due = conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'queued' AND not_before <= ?",
            (to_db(utcnow()),),
        ).fetchone()[0]
        results["due-row lookup [due rows]"] = [due]

        # The floor: one committed single-row write (WAL + synchronous=FULL -> one fsync).
        # The value must change: SQLite skips rewriting an identical row, and then the commit
        # has nothing to sync.
        def floor() -> None:
            with transaction(conn):
                conn.execute("UPDATE deliveries SET lease_version = lease_version + 1 WHERE id = 1")

        results["floor: 1-row write transaction"] = time_calls(floor, iterations)
        app.close()
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{work}{suffix}").unlink(missing_ok=True)
    return results, plans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10³ and 10⁴ posts only")
    parser.add_argument("--sizes", help="comma-separated post counts (overrides --quick)")
    parser.add_argument("--iterations", type=int, help="timed calls per case (default 300/100)")
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached databases")
    args = parser.parse_args()
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [1_000, 10_000] if args.quick else [1_000, 100_000, 1_000_000]
    iterations = args.iterations or (100 if args.quick else 300)

    header("queue_scale: claim the next due delivery, first page of `post list`")
    DIR.mkdir(parents=True, exist_ok=True)
    workspace = DIR / "workspace"
    kepubot_init(workspace)

    all_results: dict[int, dict[str, list[float]]] = {}
    all_plans: dict[int, dict[str, list[tuple[str, list[str]]]]] = {}
    for n in sizes:
        db = DIR / f"posts-{n}.db"
        meta = build(db, n, rebuild=args.rebuild)
        how = "cached" if meta["cached"] else f"built in {meta['build_seconds']} s"
        c = meta["counts"]
        n_deliveries = sum(v for k, v in c.items() if k.startswith("deliveries."))
        print(
            f"\n-- {n:,} posts ({how}; {meta['bytes'] / 1e6:,.0f} MB):"
            f" {n_deliveries:,} deliveries, of which {c.get('deliveries.queued', 0):,} queued,"
            f" {c.get('deliveries.published', 0):,} published;"
            f" {c.get('posts.in_review', 0):,} posts in review"
        )
        sys.stdout.flush()
        results, plans = measure_size(db, workspace, iterations)
        all_results[n] = results
        all_plans[n] = plans
        for case, samples in results.items():
            if case.endswith("[rows]") or case.endswith("[due rows]"):
                print(f"   {case:<62} {samples[0]:>9,}")
                continue
            median, p90 = summary(samples)
            print(f"   {case:<62} median {median * 1e6:>9,.0f} µs   p90 {p90 * 1e6:>9,.0f} µs")
        sys.stdout.flush()

    smallest, largest = sizes[0], sizes[-1]
    print(f"\n== summary: median µs per call; ratio = {largest:,} / {smallest:,} (goal ≤ 2) ==")
    cases = [c for c in all_results[smallest] if not c.endswith("rows]")]
    head = "".join(f"{n:>12,}" for n in sizes)
    print(f"   {'case':<62}{head}   ratio")
    report = {}
    for case in cases:
        medians = [summary(all_results[n][case])[0] * 1e6 for n in sizes]
        ratio = medians[-1] / medians[0]
        flag = "" if ratio <= 2 else "   <-- over 2"
        print(
            f"   {case:<62}" + "".join(f"{m:>12,.0f}" for m in medians) + f"   {ratio:5.2f}{flag}"
        )
        report[case] = {
            str(n): {
                "median_us": round(summary(all_results[n][case])[0] * 1e6, 1),
                "p90_us": round(summary(all_results[n][case])[1] * 1e6, 1),
            }
            for n in sizes
        }
        report[case]["ratio"] = round(ratio, 2)

    print(f"\n== EXPLAIN QUERY PLAN (at {largest:,} posts) ==")
    for case, statements in all_plans[largest].items():
        shape = [lines for _sql, lines in statements]
        differs = [n for n in sizes if [lines for _s, lines in all_plans[n][case]] != shape]
        print(f"\n-- {case}")
        for sql, lines in statements:
            print(f"   {sql[:400]}{' ...' if len(sql) > 400 else ''}")
            for line in lines:
                print(f"     {line}")
        if differs:
            print(f"   (the plan differs at {', '.join(map(str, differs))} posts)")

    out = DIR / f"results-{'-'.join(map(str, sizes))}.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "sizes": sizes,
                "iterations": iterations,
                "results": report,
                "plans": {
                    case: [{"sql": sql, "plan": lines} for sql, lines in statements]
                    for case, statements in all_plans[largest].items()
                },
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
