"""Start-up time of the command line: `kepubot --help` and `kepubot post list` as subprocesses,
against `python -c pass` and `python -c "import click"` with the same interpreter, in the same
run. Goal: each kepubot command ≤ 0.3 s wall.

    .venv/bin/python bench/startup.py            # 15 runs per command
    .venv/bin/python bench/startup.py --quick    # 5 runs per command

`post list` runs in a small workspace (`kepubot init` + 20 imported posts) in
``bench/out/startup/``. Afterwards, ``python -X importtime`` of `kepubot post list` shows the
ten imports with the largest cumulative time, and which optional heavy packages got imported.

Bytecode: an installed kepubot has its ``.pyc`` files, so the main figures run with
``PYTHONPYCACHEPREFIX=bench/out/startup/pycache`` (the cache lives under bench/out; the warm-up
runs fill it) and without ``PYTHONDONTWRITEBYTECODE``. If the calling environment sets
``PYTHONDONTWRITEBYTECODE`` (this sandbox does, and kepubot/ has no ``__pycache__``), the
commands are timed a second time in that environment too, where every run compiles kepubot's
sources again.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess

from _common import KEPUBOT, OUT, PYTHON, clean_env, header, kepubot_init, run_wall, summary

DIR = OUT / "startup"
GOAL_S = 0.3
# Packages kepubot depends on that `post list` has no need for.
HEAVY = (
    "requests",
    "urllib3",
    "markdown_it",
    "nh3",
    "apscheduler",
    "sqlite_utils",
    "http.client",
    "email",
    "importlib.metadata",
    "pydantic",
    "kepubot.channels.feed",
    "kepubot.models",
)


def prepare_workspace() -> None:
    workspace = DIR / "workspace"
    if (workspace / "kepubot.db").exists():
        return
    shutil.rmtree(workspace, ignore_errors=True)
    kepubot_init(workspace)
    with (workspace / "posts.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "body", "channels", "tags"])
        for i in range(1, 21):
            writer.writerow(
                [f"科普小知识第{i}期", f"正文第{i}段。\n\n第二段。", "news-feed", "科普"]
            )
    run_wall([KEPUBOT, "--as", "zhang", "post", "import", "posts.csv"], workspace)


def cached_env() -> dict[str, str]:
    """Bytecode cached under bench/out, as for an installed package."""
    env = clean_env(PYTHONPYCACHEPREFIX=str(DIR / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def time_command(argv: list[str], runs: int, env: dict[str, str]) -> list[float]:
    workspace = DIR / "workspace"
    for _ in range(2):  # warm the page cache and the .pyc files
        run_wall(argv, workspace, env)
    return [run_wall(argv, workspace, env)[0] for _ in range(runs)]


def importtime(argv: list[str]) -> list[tuple[int, int, str]]:
    """(self µs, cumulative µs, indented module name) for every import of the command."""
    result = subprocess.run(
        [str(PYTHON), "-X", "importtime", *argv],
        cwd=DIR / "workspace",
        env=cached_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (.*)$", line)
        if match:
            rows.append((int(match.group(1)), int(match.group(2)), match.group(3)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 runs per command")
    parser.add_argument("--runs", type=int, help="runs per command (default 15)")
    args = parser.parse_args()
    runs = args.runs or (5 if args.quick else 15)

    header(f"startup: wall time of one command, median of {runs} runs")
    prepare_workspace()
    commands = [
        ("baseline: python -c pass", [str(PYTHON), "-c", "pass"]),
        ('baseline: python -c "import click"', [str(PYTHON), "-c", "import click"]),
        ("kepubot --help", [str(KEPUBOT), "--help"]),
        ("kepubot post list", [str(KEPUBOT), "post", "list"]),
    ]
    modes = [("bytecode cached (as installed)", cached_env())]
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        modes.append(("PYTHONDONTWRITEBYTECODE=1, no kepubot .pyc (this sandbox)", clean_env()))
    all_results = {}
    for mode, env in modes:
        results = {name: time_command(argv, runs, env) for name, argv in commands}
        all_results[mode] = results
        base = statistics.median(results["baseline: python -c pass"])
        click_base = statistics.median(results['baseline: python -c "import click"'])
        print(f"\n-- {mode}")
        print(
            f"   {'command':<38} {'median':>9} {'p90':>9} {'min':>9}   {'/ pass':>7}"
            f" {'/ click':>8}   goal ≤ {GOAL_S} s"
        )
        for name, samples in results.items():
            median, p90 = summary(samples)
            verdict = ""
            if name.startswith("kepubot"):
                verdict = "met" if median <= GOAL_S else "MISSED"
            print(
                f"   {name:<38} {median:8.3f}s {p90:8.3f}s {min(samples):8.3f}s"
                f"   {median / base:6.1f}x {median / click_base:7.1f}x   {verdict}"
            )

    for label, argv in (
        ("kepubot post list", [str(KEPUBOT), "post", "list"]),
        ("kepubot --help", [str(KEPUBOT), "--help"]),
    ):
        rows = importtime(argv)
        total = sum(r[0] for r in rows)
        print(
            f"\n== python -X importtime {label} (bytecode cached):"
            f" {total / 1000:.0f} ms in {len(rows)} imports =="
        )
        if label == "kepubot post list":
            print("   top 10 by cumulative time (nested names are indented, as importtime prints)")
            print(f"   {'self ms':>8} {'cumul. ms':>9}  module")
            for self_us, cumulative_us, name in sorted(rows, key=lambda r: -r[1])[:10]:
                print(f"   {self_us / 1000:8.1f} {cumulative_us / 1000:9.1f}  {name}")
            print("   top 10 by own time")
            for self_us, cumulative_us, name in sorted(rows, key=lambda r: -r[0])[:10]:
                print(f"   {self_us / 1000:8.1f} {cumulative_us / 1000:9.1f}  {name.strip()}")
        names = {r[2].strip(): r[1] for r in rows}
        loaded = [f"{h} ({names[h] / 1000:.0f} ms)" for h in HEAVY if names.get(h, 0) >= 1000]
        print(f"   imported from the watch list (≥ 1 ms): {', '.join(loaded) or 'none'}")

    out = DIR / f"results-{runs}.json"
    out.write_text(json.dumps(all_results, indent=2))
    print(f"\nresults written to {out}")


if __name__ == "__main__":
    main()
