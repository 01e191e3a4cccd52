"""CSV import throughput: `kepubot --as zhang post import FILE` on 10,000 rows, against a raw
sqlite3 ``executemany`` of the same rows into ``posts`` measured in the same run.

    .venv/bin/python bench/import_csv.py             # 10,000 rows, 3 runs
    .venv/bin/python bench/import_csv.py --quick     # 1,000 rows, 3 runs
    .venv/bin/python bench/import_csv.py --rows 5000 --runs 1 --profile

Each run imports into a fresh workspace made by `kepubot init` (its config has the news-feed
channel and the editor zhang). The CSV uses every column of ``importer.CSV_COLUMNS``: Chinese
titles, summaries and multi-paragraph Markdown bodies (some with ASCII commas and quotes, so
the CSV needs quoting), tags, links, a future ``at`` on every fifth row, and one of five small
PNGs generated in ``bench/out/import_csv/``.

Reported:
- the CLI, wall time of the subprocess (median of the runs) and posts/s, plus a one-row import
  as the fixed cost (interpreter, config, channels, database open) to separate it out;
- the baseline: ``csv`` parsing + one ``executemany`` into ``posts`` (same pragmas as kepubot:
  WAL, synchronous=FULL, one transaction), and the insert alone;
- an in-process breakdown of the CLI's work (read_posts / prepare / create_posts), and with
  ``--profile`` the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import json
import pstats
import random
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from _common import KEPUBOT, OUT, body_for, header, kepubot_init, run_wall, title_for, write_png

from kepubot.app import App
from kepubot.config import load_config
from kepubot.files.importer import CSV_COLUMNS, read_posts
from kepubot.services.posts import create_posts, prepare
from kepubot.timeutil import utcnow

DIR = OUT / "import_csv"
COLOURS = [(230, 57, 70), (29, 53, 87), (69, 123, 157), (168, 218, 220), (241, 250, 238)]
TAGS = ["科普", "天文", "生命科学", "地球科学", "健康", "物理", "化学", "技术"]


def write_csv(path: Path, rows: int) -> list[dict[str, str]]:
    """The CSV file and its rows as dicts (for the baseline)."""
    rng = random.Random(rows)
    image_dir = path.parent / "img"
    for index, colour in enumerate(COLOURS):
        write_png(image_dir / f"figure-{index}.png", colour, size=32)
    shanghai = ZoneInfo("Asia/Shanghai")
    start = (utcnow() + timedelta(days=2)).astimezone(shanghai)
    records = []
    for i in range(1, rows + 1):
        body = body_for(rng, rng.randint(6, 18))
        if i % 7 == 0:
            body += '\n\n原文引用："Science is a way of thinking", 而不仅是知识的集合。'
        records.append(
            {
                "title": title_for(rng, i),
                "summary": body.split("。")[0] + "。",
                "body": body,
                "tags": ";".join(rng.sample(TAGS, 3)),
                "link": f"https://kepu.example.org/articles/{i}",
                "channels": "news-feed",
                "at": (start + timedelta(hours=i)).strftime("%Y-%m-%d %H:%M") if i % 5 == 0 else "",
                "images": f"img/figure-{i % len(COLOURS)}.png",
                "video": "",
                "cover": "",
            }
        )
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(records)
    return records


def fresh_workspace(name: str, csv_source: Path) -> Path:
    """A new `kepubot init` workspace holding a copy of the CSV and its images."""
    workspace = DIR / name
    shutil.rmtree(workspace, ignore_errors=True)
    kepubot_init(workspace)
    shutil.copy2(csv_source, workspace / csv_source.name)
    shutil.copytree(csv_source.parent / "img", workspace / "img")
    return workspace


def count_posts(workspace: Path) -> int:
    conn = sqlite3.connect(workspace / "kepubot.db")
    try:
        return conn.execute("SELECT COUNT(*) FROM posts").fetchone()[0]
    finally:
        conn.close()


def cli_import(workspace: Path, csv_name: str, expected: int) -> float:
    seconds, stdout = run_wall(
        [KEPUBOT, "--lang", "en", "--as", "zhang", "post", "import", csv_name], workspace
    )
    # (a line naming the encoding the CSV was read in comes first)
    if not any(line.startswith(f"imported {expected} posts") for line in stdout.splitlines()):
        raise SystemExit(f"unexpected output: {stdout[:200]}")
    found = count_posts(workspace)
    if found != expected:
        raise SystemExit(f"{workspace}: {found} posts in the database, expected {expected}")
    return seconds


def baseline(csv_path: Path, records: int) -> tuple[float, float]:
    """(csv parse + insert, insert alone) seconds: raw sqlite3 into kepubot's posts table."""
    workspace = DIR / "baseline"
    shutil.rmtree(workspace, ignore_errors=True)
    kepubot_init(workspace)  # the same schema, made by kepubot's migrations
    db = workspace / "kepubot.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    start = time.perf_counter()
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    now = "2026-11-29T00:00:00.000Z"
    values = [
        (
            r["title"],
            r["body"],
            r["summary"],
            r["link"],
            json.dumps(r["tags"].split(";"), ensure_ascii=False),
            json.dumps([{"kind": "image", "path": r["images"]}]),
            json.dumps(r["channels"].split(";")),
            "zhang",
            "0" * 64,
            now,
            now,
        )
        for r in rows
    ]
    parsed = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO posts (title, body, summary, link, tags, media, channels, author, state,"
        " content_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'draft', ?, ?, ?)",
        values,
    )
    conn.execute("COMMIT")
    end = time.perf_counter()
    conn.close()
    if count_posts(workspace) != records:
        raise SystemExit("baseline: wrong number of rows")
    return end - start, end - parsed


def in_process(csv_name: str, rows: int, profile: bool) -> dict[str, float]:
    """Where the CLI's time goes, measured inside one process on a fresh workspace."""
    workspace = fresh_workspace("in-process", DIR / "source" / csv_name)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    app = App(load_config(workspace / "kepubot.toml"))
    app.channels  # noqa: B018 — what the CLI does at start-up
    app.store.conn()
    timings["open (config, channels, database)"] = time.perf_counter() - start

    start = time.perf_counter()
    items = read_posts(workspace / csv_name)
    timings["read_posts (CSV -> PostInput)"] = time.perf_counter() - start

    now = utcnow()
    start = time.perf_counter()
    for data, _source in items:
        prepare(app, data, now=now)
    timings["prepare x N (validate, copy+hash media)"] = time.perf_counter() - start

    profiler = cProfile.Profile() if profile else None
    start = time.perf_counter()
    if profiler:
        profiler.enable()
    ids = create_posts(app, "zhang", items, now=now)
    if profiler:
        profiler.disable()
    timings["create_posts (prepare again + insert + audit + commit)"] = time.perf_counter() - start
    assert len(ids) == rows
    app.close()
    if profiler:
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        stats.sort_stats("tottime").print_stats(15)
        print("\n== cProfile of create_posts, top 15 by own time ==")
        print("\n".join(line for line in text.getvalue().splitlines() if line.strip())[:6000])
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 rows")
    parser.add_argument("--rows", type=int, help="rows in the CSV (default 10,000)")
    parser.add_argument("--runs", type=int, default=3, help="CLI imports to take the median of")
    parser.add_argument("--profile", action="store_true", help="cProfile create_posts")
    args = parser.parse_args()
    rows = args.rows or (1_000 if args.quick else 10_000)

    header(f"import_csv: `kepubot post import` of {rows:,} CSV rows")
    source = DIR / "source"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    csv_name = f"posts-{rows}.csv"
    csv_path = source / csv_name
    write_csv(csv_path, rows)
    one_name = "posts-1.csv"
    write_csv(source / one_name, 1)
    print(f"   CSV: {csv_path.stat().st_size / 1e6:.1f} MB, {rows:,} rows, 5 distinct PNGs")

    # Fixed cost: a one-row import (interpreter start, config, channels, database open).
    fixed = []
    for run in range(max(3, args.runs)):
        workspace = fresh_workspace(f"cli-one-{run}", source / one_name)
        fixed.append(cli_import(workspace, one_name, 1))
    fixed_s = statistics.median(fixed)

    walls = []
    for run in range(args.runs):
        workspace = fresh_workspace(f"cli-{run}", csv_path)
        walls.append(cli_import(workspace, csv_name, rows))
        print(f"   CLI run {run + 1}: {walls[-1]:.2f} s")
        sys.stdout.flush()
    wall = statistics.median(walls)

    raw_total, raw_insert = baseline(csv_path, rows)
    breakdown = in_process(csv_name, rows, args.profile)

    per_row = (wall - fixed_s) / rows
    print(f"\n== results ({rows:,} rows; CLI median of {args.runs} runs) ==")
    print(
        f"   {'kepubot post import (subprocess wall)':<58} {wall:8.2f} s  {rows / wall:>9,.0f} posts/s"
    )
    print(f"   {'  one-row import (fixed cost)':<58} {fixed_s:8.2f} s")
    print(
        f"   {'  per row, fixed cost removed':<58} {per_row * 1e6:8.0f} µs"
        f"  {1 / per_row:>9,.0f} posts/s"
    )
    print(
        f"   {'baseline: csv parse + sqlite3 executemany (1 tx)':<58} {raw_total:8.3f} s"
        f"  {rows / raw_total:>9,.0f} posts/s"
    )
    print(
        f"   {'baseline: sqlite3 executemany alone':<58} {raw_insert:8.3f} s"
        f"  {rows / raw_insert:>9,.0f} posts/s"
    )
    print(f"   ratio CLI / baseline (csv + insert): {wall / raw_total:.1f}x slower")
    print(
        f"   ratio CLI per-row (fixed cost removed) / baseline: {per_row * rows / raw_total:.1f}x"
    )
    print("\n== in-process breakdown (one fresh workspace) ==")
    for name, seconds in breakdown.items():
        print(f"   {name:<58} {seconds:8.3f} s  {seconds / rows * 1e6:7.0f} µs/row")
    out = DIR / f"results-{rows}.json"
    out.write_text(
        json.dumps(
            {
                "rows": rows,
                "cli_runs_s": walls,
                "cli_median_s": wall,
                "fixed_s": fixed_s,
                "baseline_total_s": raw_total,
                "baseline_insert_s": raw_insert,
                "breakdown_s": breakdown,
            },
            indent=2,
        )
    )
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
