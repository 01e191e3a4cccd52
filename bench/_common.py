"""Helpers shared by the benchmark scripts (not a benchmark itself).

Everything a benchmark writes goes under ``bench/out/`` (gitignored).
"""

from __future__ import annotations

import os
import platform
import random
import sqlite3
import statistics
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from kepubot.app import App
from kepubot.config import load_config

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
KEPUBOT = VENV / "bin" / "kepubot"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- measuring ---------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> tuple[float, float]:
    """(median, p90) of the samples."""
    return statistics.median(samples), percentile(samples, 90)


def time_calls(
    function: Callable[[], object],
    iterations: int,
    warmup: int = 3,
    budget: float = 10.0,
    min_samples: int = 20,
) -> list[float]:
    """Seconds per call, one sample per call, after ``warmup`` unrecorded calls.

    Stops early once ``budget`` seconds are spent and ``min_samples`` are taken, so a slow
    case cannot make a run take hours.
    """
    for _ in range(warmup):
        function()
    samples: list[float] = []
    clock = time.perf_counter
    deadline = clock() + budget
    for _ in range(iterations):
        start = clock()
        function()
        end = clock()
        samples.append(end - start)
        if end > deadline and len(samples) >= min_samples:
            break
    return samples


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without KEPUBOT_* settings, so only the workspace's config is used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEPUBOT_")}
    env.update(extra)
    return env


def run_wall(
    argv: Sequence[str | os.PathLike[str]], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, str]:
    """Wall seconds of one subprocess run; raises if it fails. Returns (seconds, stdout)."""
    start = time.perf_counter()
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(map(str, argv))} failed ({result.returncode}):\n{result.stderr}"
        )
    return elapsed, result.stdout


def kepubot_init(workspace: Path) -> Path:
    """``kepubot init`` in ``workspace`` (created); returns the config path."""
    workspace.mkdir(parents=True, exist_ok=True)
    config = workspace / "kepubot.toml"
    if not config.exists():
        run_wall([KEPUBOT, "init"], workspace)
    return config


def machine() -> str:
    cores = os.cpu_count()
    return (
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" {platform.system()} {platform.machine()}, {cores} cores"
    )


def code_version() -> str:
    """The commit measured, and whether kepubot/ had uncommitted changes at the time."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "kepubot"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "kepubot (no git)"
    return f"kepubot {head or '?'}" + (" + uncommitted changes in kepubot/" if dirty else "")


def header(title: str) -> None:
    print(f"== {title} ==")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"   {machine()}, {time.strftime('%Y-%m-%d %H:%M')}, load average {load}")
    print(f"   {code_version()}")


# --- test data ---------------------------------------------------------------------------

TOPICS = [
    "黑洞",
    "量子纠缠",
    "引力波",
    "基因编辑",
    "疫苗",
    "珊瑚礁",
    "火山",
    "台风",
    "暗物质",
    "人工智能",
    "睡眠",
    "肠道菌群",
    "恐龙",
    "极光",
    "可燃冰",
    "光合作用",
    "候鸟迁徙",
    "地震预警",
    "北斗导航",
    "月球背面",
]
TITLE_PATTERNS = [
    "{t}到底是什么？一文读懂",
    "关于{t}的五个误区",
    "科学家发现：{t}的新证据",
    "{t}与我们的日常生活",
    "从零开始了解{t}",
    "{t}：你可能不知道的冷知识",
    "为什么说{t}改变了世界",
    "图解{t}",
]
SENTENCES = [
    "研究人员在最新发表的论文中给出了详细的观测数据。",
    "这一现象早在上世纪就被提出，但直到近年才得到证实。",
    "简单来说，它和我们每天看到的现象遵循同样的物理规律。",
    "不过，目前仍有不少问题没有定论，需要更多实验来检验。",
    "专家提醒，网络上流传的一些说法并没有科学依据。",
    "如果把整个过程比作一次长途旅行，那么每一步都至关重要。",
    "数据显示，相关指标在过去十年中提高了将近三倍。",
    "这项技术已经在医疗、农业和环境监测等领域得到应用。",
    "换句话说，我们看到的只是冰山一角。",
    "读者朋友们，你们身边有没有类似的例子？欢迎在评论区留言。",
    "实验在零下一百九十六摄氏度的液氮环境中进行。",
    "据估计，全球约有三分之一的人口受到这一问题的影响。",
]


def title_for(rng: random.Random, index: int) -> str:
    topic = TOPICS[index % len(TOPICS)]
    return f"{rng.choice(TITLE_PATTERNS).format(t=topic)}（第{index}期）"


def body_for(rng: random.Random, sentences: int) -> str:
    """A Markdown body in paragraphs of a few sentences."""
    picked = [rng.choice(SENTENCES) for _ in range(sentences)]
    paragraphs = ["".join(picked[i : i + 3]) for i in range(0, len(picked), 3)]
    return "\n\n".join(paragraphs)


def write_png(path: Path, rgb: tuple[int, int, int], size: int = 16) -> Path:
    """A valid, solid-colour RGB PNG of ``size`` x ``size`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    row = b"\x00" + bytes(rgb) * size
    raw = row * size
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


# --- measuring SQL -------------------------------------------------------------------------


def app_for(db: Path, workspace: Path) -> App:
    """An App whose config is the `kepubot init` one, with the database pointed at ``db``."""
    template = (workspace / "kepubot.toml").read_text(encoding="utf-8")
    lines = [
        f'database = "{db}"' if line.startswith("database =") else line
        for line in template.splitlines()
    ]
    config = workspace / f"kepubot-{db.stem}.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return App(load_config(config))


def captured_sql(conn: sqlite3.Connection, function: Callable[[], object]) -> list[str]:
    """Every statement ``function`` runs, with its parameters bound (SQLite's expanded SQL)."""
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        function()
    finally:
        conn.set_trace_callback(None)
    return seen


def plan(conn: sqlite3.Connection, sql: str) -> list[str]:
    rows = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
    depth: dict[int, int] = {0: 0}
    lines = []
    for node, parent, _unused, detail in rows:
        depth[node] = depth.get(parent, 0) + 1
        lines.append("  " * (depth[node] - 1) + detail)
    return lines
