"""Console render time: does a page of the browser console (``kepubot web``) cost the same with
10³ and 10⁵ posts?

    .venv/bin/python bench/web_render.py            # 10³ and 10⁵ posts (~3 min on 2 cores)
    .venv/bin/python bench/web_render.py --quick    # 10³ and 10⁴ posts, fewer requests
    .venv/bin/python bench/web_render.py --sizes 1000,100000 --iterations 300 --rebuild

This is server time: each request goes through Flask's test client, so it is the whole WSGI
request inside the app (session cookie, user check, the page's service calls and SQL, the
Jinja template, the security headers), with no network and no HTTP server.

Data: the posts, post_channels and deliveries of ``bench/queue_scale.py`` (its ``build()``
and its cache in ``bench/out/queue_scale/``; one post a minute, the newest 300 still in
review or queued, everything older published). Each database is copied to
``bench/out/web_render/`` and given what the console and the report need: one metric
snapshot (``metrics`` + ``metrics_latest``) per published weibo-main and wechat-main
delivery, daily follower counts (``account_metrics``), a remote URL per published delivery,
and a password for the bench user. The copies are cached; they are rebuilt when
queue_scale's database is rebuilt (new migration, new data shape) or with ``--rebuild``.
"Now" (the clock passed to ``create_app``) is the time queue_scale built its database, so
the data sits where it was put: the 7-day report, the month calendar and the due queue all
have real content.

Measured per size, signed in (GET /login for the CSRF token, POST /login) as a user with the
roles editor and manager: p50 and p99 of single requests to the posts list (first page, each
filter, page 100), the reports (default 7 days, and 30 days), the calendar (week, month) and
the deliveries list. Two floors are measured in the same run: GET /login signed out and GET
/static/app.css. For the two reports, ``build_report`` alone (no web) is timed too, so the
web's share can be read off. The ratio is the figure at the largest size over the figure at
the smallest. The SQL of one request per page is captured (``set_trace_callback``), grouped
by shape, and each shape's EXPLAIN QUERY PLAN is printed for the largest size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import queue_scale
from _common import OUT, captured_sql, header, percentile, plan, time_calls

from kepubot.app import App
from kepubot.config import load_config
from kepubot.reports.aggregate import build_report
from kepubot.services import accounts
from kepubot.timeutil import from_db, to_db
from kepubot.web.app import create_app

VERSION = 1  # bump when what is added to queue_scale's data changes
DIR = OUT / "web_render"
USER = "bench"
PASSWORD = "bench-password-2026"
TIMEZONE = "Asia/Shanghai"
TZ = ZoneInfo(TIMEZONE)
METRIC_CHANNELS = ("weibo-main", "wechat-main")  # the feed has no metrics
# the channel settings take secrets from the environment; these are never sent anywhere
SECRETS = {
    "KEPUBOT_BENCH_WEIBO_TOKEN": "bench-weibo-token",
    "KEPUBOT_BENCH_WECHAT_SECRET": "bench-wechat-secret",
}
ABSENT = "天文"  # in no title and no tag of queue_scale's data: the filter walks every post
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')

CONFIG = """\
[kepubot]
database = "{database}"
timezone = "{timezone}"
language = "zh"
media_dir = "{media}"

[review]
levels = ["初审", "复审", "终审"]

[users.{user}]
roles = ["editor", "manager"]
{authors}
[channels.news-feed]
type = "feed"
output_dir = "{feeds}"
site_url = "https://kepu.example.org"
title = "科普资讯"
formats = ["rss", "atom", "json"]
posting_times = ["08:30", "12:00", "20:00"]
min_gap_minutes = 0

[channels.weibo-main]
type = "weibo"
access_token = "${{KEPUBOT_BENCH_WEIBO_TOKEN}}"
link_domain = "kepu.example.org"
rip = "203.0.113.7"
api_base = "https://api.weibo.com"
rate_limit = "30/hour"
posting_times = ["08:30", "12:00", "20:00"]

[channels.wechat-main]
type = "wechat"
app_id = "wx0123456789abcdef"
app_secret = "${{KEPUBOT_BENCH_WECHAT_SECRET}}"
mode = "freepublish"
api_base = "https://api.weixin.qq.com"
posting_times = ["20:00"]
"""


# --- the databases -------------------------------------------------------------------------


def config_path(n: int) -> Path:
    return DIR / f"kepubot-posts-{n}.toml"


def write_config(n: int) -> Path:
    db = DIR / f"posts-{n}.db"
    authors = "".join(f'[users.{a}]\nroles = ["editor"]\n' for a in queue_scale.AUTHORS)
    path = config_path(n)
    path.write_text(
        CONFIG.format(
            database=db,
            timezone=TIMEZONE,
            media=DIR / "media",
            feeds=DIR / "feeds",
            user=USER,
            authors=authors,
        ),
        encoding="utf-8",
    )
    return path


def _add_report_data(db: Path, n: int, now: datetime) -> dict[str, int]:
    """One snapshot per published weibo/wechat delivery, follower counts per day, URLs."""
    rng = random.Random(n)
    limit = now.timestamp() - 60
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute(
        "UPDATE deliveries SET remote_url = 'https://social.example.org/' || channel || '/'"
        " || remote_id WHERE state = 'published' AND remote_id IS NOT NULL"
    )
    marks = ", ".join("?" for _ in METRIC_CHANNELS)
    published = conn.execute(
        "SELECT id, channel, published_at FROM deliveries"
        f" WHERE state = 'published' AND channel IN ({marks}) ORDER BY id",
        METRIC_CHANNELS,
    ).fetchall()
    snapshots: list[tuple] = []
    latest: list[tuple] = []
    for metric_id, (delivery_id, channel, published_at) in enumerate(published, start=1):
        at = from_db(published_at).timestamp()
        collected = min(at + 86400, limit)
        reach = rng.lognormvariate(0, 1.0) * min(24.0, max(0.0, collected - at) / 3600)
        if channel == "weibo-main":  # counters only, no reads
            values = (None, int(12 * reach), int(3 * reach), int(2 * reach), None)
        else:  # WeChat: reads, shares, favourites
            values = (int(50 * reach), None, None, int(4 * reach), int(1.2 * reach))
        stamp = to_db(datetime.fromtimestamp(collected, UTC))
        snapshots.append((metric_id, delivery_id, stamp, *values))
        latest.append((delivery_id, metric_id, stamp, *values))
    conn.executemany(
        "INSERT INTO metrics (id, delivery_id, collected_at, views, likes, comments, shares,"
        " favorites) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        snapshots,
    )
    conn.executemany(
        "INSERT INTO metrics_latest (delivery_id, metrics_id, collected_at, views, likes,"
        " comments, shares, favorites) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        latest,
    )
    first = from_db(conn.execute("SELECT MIN(created_at) FROM posts").fetchone()[0]).date()
    days = (now.date() - first).days + 1
    followers = [
        (
            channel,
            (first + timedelta(days=d)).isoformat(),
            100_000 * (c + 1) + 150 * d,
            150 + (d * 37 % 50),
            (first + timedelta(days=d)).isoformat() + "T16:05:00.000Z",
        )
        for c, channel in enumerate(METRIC_CHANNELS)
        for d in range(days)
    ]
    conn.executemany(
        "INSERT INTO account_metrics (channel, day, followers, followers_gained, collected_at)"
        " VALUES (?, ?, ?, ?, ?)",
        followers,
    )
    conn.execute("COMMIT")
    conn.close()
    return {"metrics": len(snapshots), "account_metrics": len(followers)}


def prepare(n: int, *, rebuild: bool) -> dict[str, Any]:
    """queue_scale's database for ``n`` posts (built there if missing), copied here with the
    report data and the bench user's password added; cached."""
    source = queue_scale.DIR / f"posts-{n}.db"
    source_meta = queue_scale.build(source, n, rebuild=rebuild)
    db = DIR / f"posts-{n}.db"
    meta_path = db.with_suffix(".json")
    key = {
        "version": VERSION,
        "source_version": queue_scale.BUILD_VERSION,
        "schema": queue_scale.SCHEMA_KEY,
        "posts": n,
        "now": source_meta["built_at"],
    }
    write_config(n)
    if not rebuild and db.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if all(meta.get(k) == v for k, v in key.items()):
            meta["cached"] = True
            return meta
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    meta_path.unlink(missing_ok=True)
    shutil.copyfile(source, db)
    now = from_db(source_meta["built_at"])
    added = _add_report_data(db, n, now)
    app = App(load_config(config_path(n)))
    accounts.set_password(app, "bench", USER, PASSWORD, now=now)
    app.close()
    meta = {
        **key,
        "source_counts": source_meta["counts"],
        "added": added,
        "prepare_seconds": round(time.perf_counter() - started, 1),
        "source_how": "cached" if source_meta["cached"] else "built",
        "bytes": db.stat().st_size,
    }
    meta_path.write_text(json.dumps(meta, indent=2))
    meta["cached"] = False
    return meta


# --- measuring ------------------------------------------------------------------------------

Page = tuple[str, str, dict[str, str]]  # (label, path, query)


def pages(now: datetime) -> list[Page]:
    today = local_day(now)
    month_ago = today - timedelta(days=29)
    return [
        ("/posts", "/posts", {}),
        ("/posts?state=approved", "/posts", {"state": "approved"}),
        ("/posts?channel=wechat-main", "/posts", {"channel": "wechat-main"}),
        ("/posts?author=zhang", "/posts", {"author": "zhang"}),
        ("/posts?tag=专题7 (1 post in 40)", "/posts", {"tag": "专题7"}),
        (f"/posts?tag={ABSENT} (no match)", "/posts", {"tag": ABSENT}),
        ("/posts?q=黑洞 (1 title in 20)", "/posts", {"q": "黑洞"}),
        (f"/posts?q={ABSENT} (no match)", "/posts", {"q": ABSENT}),
        ("/posts?page=100", "/posts", {"page": "100"}),
        ("/reports (7 days)", "/reports", {}),
        (
            "/reports?since=&until= (30 days)",
            "/reports",
            {"since": month_ago.isoformat(), "until": today.isoformat()},
        ),
        ("/calendar (week)", "/calendar", {}),
        ("/calendar?view=month", "/calendar", {"view": "month"}),
        ("/calendar?view=agenda", "/calendar", {"view": "agenda"}),
        (
            f"/calendar?view=month&tag={ABSENT} (no match)",
            "/calendar",
            {"view": "month", "tag": ABSENT},
        ),
        ("/deliveries", "/deliveries", {}),
    ]


def local_day(now: datetime) -> date:
    return now.astimezone(TZ).date()


FLOORS: list[Page] = [
    ("floor: GET /login signed out", "/login", {}),
    ("floor: GET /static/app.css", "/static/app.css", {}),
]


def sign_in(client: Any) -> None:
    page = client.get("/login")
    found = CSRF.search(page.get_data(as_text=True))
    if page.status_code != 200 or found is None:
        raise SystemExit(f"GET /login: {page.status_code}, no csrf-token meta tag")
    answer = client.post(
        "/login", data={"username": USER, "password": PASSWORD, "csrf_token": found.group(1)}
    )
    if answer.status_code not in (302, 303):
        raise SystemExit(f"POST /login as {USER}: {answer.status_code} (wrong password?)")


def _shape(sql: str) -> str:
    """The statement with its literals replaced, to group the same query run many times."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    return re.sub(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])", "?", sql)


def profile_request(label: str, request: Callable[[], object], lines: int = 22) -> None:
    """cProfile of one request, by cumulative time (where the page's time goes)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    request()
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(lines)
    body = text.getvalue()
    body = body[body.find("   ncalls") :] if "   ncalls" in body else body
    print(f"\n   -- cProfile of one request to {label}, by cumulative time --")
    print("\n".join(f"   {line}"[:160] for line in body.rstrip().splitlines()))


def measure(
    n: int, now: datetime, iterations: int, budget: float, profile: str | None = None
) -> tuple[dict[str, list[float]], dict[str, Any], dict[str, list[tuple[str, int, list[str]]]]]:
    """({case: seconds per request}, {figure: value}, {case: [(sql, runs, plan)]})."""
    results: dict[str, list[float]] = {}
    figures: dict[str, Any] = {}
    plans: dict[str, list[tuple[str, int, list[str]]]] = {}
    flask = create_app(load_config(config_path(n)), clock=lambda: now)
    service: App = flask.extensions["kepubot"].get()
    conn = service.store.conn()

    anonymous = flask.test_client()
    for label, path, query in FLOORS:
        if anonymous.get(path, query_string=query).status_code != 200:
            raise SystemExit(f"{label}: not 200")
        results[label] = time_calls(
            lambda path=path, query=query: anonymous.get(path, query_string=query).close(),
            iterations,
            warmup=2,
            budget=budget,
        )

    client = flask.test_client()
    sign_in(client)
    for label, path, query in pages(now):
        first = client.get(path, query_string=query)
        if first.status_code != 200:
            raise SystemExit(f"{label}: {first.status_code}\n{first.get_data(as_text=True)[:2000]}")
        figures[f"{label} bytes"] = len(first.get_data())
        if label == "/calendar?view=month":
            figures.update(_calendar_shown(first.get_data(as_text=True)))

        def request(path: str = path, query: dict[str, str] = query) -> None:
            client.get(path, query_string=query).close()

        statements = captured_sql(conn, request)
        groups: dict[str, list[str]] = {}
        for sql in statements:
            if sql.split()[0].upper() in ("SELECT", "WITH", "UPDATE", "INSERT", "DELETE"):
                groups.setdefault(_shape(sql), []).append(sql)
        plans[label] = [(same[0], len(same), plan(conn, same[0])) for same in groups.values()]
        results[label] = time_calls(request, iterations, warmup=1, budget=budget, min_samples=10)
        if profile and profile in label:
            profile_request(label, request)
        sys.stdout.flush()

    # The report alone (the service call the page makes), to read off the web's share.
    today = local_day(now)
    for label, since in (
        ("build_report 7 days (no web)", today - timedelta(days=6)),
        ("build_report 30 days (no web)", today - timedelta(days=29)),
    ):
        report = build_report(service, since=since, until=today, now=now, language="zh")
        figures[f"{label}: deliveries"] = report["totals"]["deliveries"]
        figures[f"{label}: previous period"] = report["previous"]["totals"]["deliveries"]
        results[label] = time_calls(
            lambda since=since: build_report(
                service, since=since, until=today, now=now, language="zh"
            ),
            iterations,
            warmup=0,
            budget=budget,
            min_samples=10,
        )
    # What the month calendar should show: deliveries.in_period without its LIMIT 5000.
    start = datetime(today.year, today.month, 1, tzinfo=service.tz)
    end = datetime(today.year + today.month // 12, today.month % 12 + 1, 1, tzinfo=service.tz)
    bounds = (to_db(start), to_db(end)) * 2
    figures["calendar month: deliveries in the month"] = conn.execute(
        "SELECT (SELECT COUNT(*) FROM deliveries WHERE state = 'published'"
        " AND published_at >= ? AND published_at < ?) + (SELECT COUNT(*) FROM deliveries"
        " WHERE due_at >= ? AND due_at < ? AND state NOT IN ('published', 'cancelled'))",
        bounds,
    ).fetchone()[0]
    figures["calendar month: of them not published"] = conn.execute(
        "SELECT COUNT(*) FROM deliveries WHERE due_at >= ? AND due_at < ?"
        " AND state NOT IN ('published', 'cancelled')",
        bounds[:2],
    ).fetchone()[0]
    return results, figures, plans


def _calendar_shown(html: str) -> dict[str, Any]:
    """Entries on the month page (a card per post per day, or a count per day, channel and
    state when the month is crowded), how many of them are not published, and the days of
    the month that have any (cells outside the month excluded)."""
    events = unpublished = 0
    days: list[str] = []
    for cell in html.split("<td ")[1:]:
        if "outside" in cell.split(">", 1)[0]:
            continue
        count = cell.count('class="event ')
        events += count
        unpublished += (
            count
            - cell.count('class="event s-published ')
            - cell.count('class="event card s-published ')
        )
        if count:
            days.append(cell.split('data-day="', 1)[1][:10])
    return {
        "calendar month: events shown": events,
        "calendar month: events shown not published": unpublished,
        "calendar month: days with events": f"{len(days)} ({days[0]} .. {days[-1]})"
        if days
        else "0",
    }


def stats(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in ms."""
    return percentile(samples, 50) * 1e3, percentile(samples, 99) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10³ and 10⁴ posts, fewer requests")
    parser.add_argument("--sizes", help="comma-separated post counts (overrides --quick)")
    parser.add_argument("--iterations", type=int, help="requests per page (default 200/40)")
    parser.add_argument(
        "--budget", type=float, help="seconds per page before stopping (default 8/2)"
    )
    parser.add_argument("--rebuild", action="store_true", help="ignore the cached databases")
    parser.add_argument(
        "--profile",
        metavar="TEXT",
        help="cProfile one request to each page whose label contains TEXT (largest size)",
    )
    args = parser.parse_args()
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [1_000, 10_000] if args.quick else [1_000, 100_000]
    iterations = args.iterations or (40 if args.quick else 200)
    budget = args.budget or (2.0 if args.quick else 8.0)
    for name, value in SECRETS.items():
        os.environ.setdefault(name, value)

    header("web_render: server time of the console's pages (Flask test client)")
    print(f"   {iterations} requests per page, or fewer once {budget:g} s are spent (at least 10)")
    DIR.mkdir(parents=True, exist_ok=True)
    all_results: dict[int, dict[str, list[float]]] = {}
    all_figures: dict[int, dict[str, Any]] = {}
    all_plans: dict[int, dict[str, list[tuple[str, int, list[str]]]]] = {}
    for n in sizes:
        meta = prepare(n, rebuild=args.rebuild)
        now = from_db(meta["now"])
        c = meta["source_counts"]
        how = "cached" if meta["cached"] else f"prepared in {meta['prepare_seconds']} s"
        print(
            f"\n-- {n:,} posts ({how}; {meta['bytes'] / 1e6:,.0f} MB):"
            f" {sum(v for k, v in c.items() if k.startswith('deliveries.')):,} deliveries,"
            f" {c.get('deliveries.published', 0):,} published,"
            f" {meta['added']['metrics']:,} metric snapshots;"
            f" now = {now.astimezone(TZ).isoformat(timespec='minutes')}"
        )
        sys.stdout.flush()
        started = time.perf_counter()
        results, figures, plans = measure(
            n, now, iterations, budget, args.profile if n == sizes[-1] else None
        )
        all_results[n], all_figures[n], all_plans[n] = results, figures, plans
        for case, samples in results.items():
            p50, p99 = stats(samples)
            size = figures.get(f"{case} bytes")
            extra = f"   {size / 1024:>7,.1f} KiB" if size else ""
            print(
                f"   {case:<44} p50 {p50:>9,.2f} ms   p99 {p99:>9,.2f} ms"
                f"   (n={len(samples)}){extra}"
            )
        for k, v in figures.items():
            if not k.endswith(" bytes"):
                print(f"   {k}: {v:,}" if isinstance(v, int) else f"   {k}: {v}")
        print(f"   ({time.perf_counter() - started:.0f} s)")
        sys.stdout.flush()

    small, large = sizes[0], sizes[-1]
    print(f"\n== summary: ms per request (server time); ratio = {large:,} / {small:,} posts ==")
    head = "".join(f"{f'{n:,} p50':>12}{f'{n:,} p99':>12}" for n in sizes)
    print(f"   {'page':<44}{head}   ratio p50   ratio p99")
    report: dict[str, Any] = {}
    for case in all_results[small]:
        figures_ms = [stats(all_results[n][case]) for n in sizes]
        cells = "".join(f"{p50:>12,.2f}{p99:>12,.2f}" for p50, p99 in figures_ms)
        ratio50 = figures_ms[-1][0] / figures_ms[0][0]
        ratio99 = figures_ms[-1][1] / figures_ms[0][1]
        print(f"   {case:<44}{cells}   {ratio50:>9.2f}   {ratio99:>9.2f}")
        report[case] = {
            str(n): {
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "samples": len(all_results[n][case]),
                "bytes": all_figures[n].get(f"{case} bytes"),
            }
            for n, (p50, p99) in zip(sizes, figures_ms, strict=True)
        }
        report[case]["ratio_p50"] = round(ratio50, 2)
        report[case]["ratio_p99"] = round(ratio99, 2)

    print("\n   reports per 1,000 deliveries read (the period's and the previous period's):")
    for case, key in (
        ("/reports (7 days)", "build_report 7 days (no web)"),
        ("/reports?since=&until= (30 days)", "build_report 30 days (no web)"),
    ):
        per: list[float] = []
        for n in sizes:
            read = all_figures[n][f"{key}: deliveries"] + all_figures[n][f"{key}: previous period"]
            per.append(stats(all_results[n][case])[0] / max(read, 1) * 1000)
            print(f"     {case:<40} {n:>9,} posts: {read:>7,} read, {per[-1]:6.1f} ms p50")
        print(f"     {'':<40} ratio {per[-1] / per[0]:.2f}")

    print(
        f"\n== SQL of one request per page, grouped by shape, with EXPLAIN QUERY PLAN ({large:,}) =="
    )
    shown: set[str] = set()
    for case, statements in all_plans[large].items():
        print(f"\n-- {case}")
        for sql, runs, lines in statements:
            shape = _shape(sql)
            times = f" [×{runs}]" if runs > 1 else ""
            if shape in shown:
                print(f"   (as above){times} {sql[:120]}{' ...' if len(sql) > 120 else ''}")
                continue
            shown.add(shape)
            print(f"   {sql[:600]}{' ...' if len(sql) > 600 else ''}{times}")
            for line in lines:
                print(f"     {line}")

    out = DIR / f"results-{'-'.join(map(str, sizes))}.json"
    out.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "sizes": sizes,
                "iterations": iterations,
                "budget_seconds": budget,
                "results": report,
                "figures": {str(n): all_figures[n] for n in sizes},
                "plans": {
                    case: [{"sql": sql, "runs": runs, "plan": lines} for sql, runs, lines in st]
                    for case, st in all_plans[large].items()
                },
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
