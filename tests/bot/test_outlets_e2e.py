"""Assisted, print and screen channels end to end (issue 14): real database, `kepubot run
--once` as subprocesses (one killed mid-send), the CLI confirming a task exactly once,
figures imported from a Toutiao export, and a retraction on each."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from backends import connect_db

from daemon_env import DaemonEnv, make_env
from kepubot.services.retraction import retract_post
from kepubot.timeutil import utcnow

FIXTURE = Path(__file__).parent.parent / "fixtures" / "toutiao-export.csv"

CHANNELS = """
[users.ops]
roles = ["operator"]
[users.pub]
roles = ["editor"]
name = "发布员"

[channels.tt]
type = "assisted"
platform = "toutiao"
output_dir = "packs"
assignees = ["pub"]
confirm_within_hours = 1
min_gap_minutes = 0

[channels.paper]
type = "print"
output_dir = "paper"
issue_days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
issue_time = "00:00"
min_gap_minutes = 0

[channels.kiosk]
type = "screen"
output_dir = "kiosk"
min_gap_minutes = 0
"""


def env_with_outlets(tmp_path: Path) -> DaemonEnv:
    env = make_env(tmp_path)
    with env.config.open("a", encoding="utf-8") as handle:
        handle.write(textwrap.dedent(CHANNELS))
    return env


def cli(
    env: DaemonEnv, user: str, *args: str, lang: str | None = "en"
) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process; messages in English unless ``lang`` says otherwise (None:
    the config's [kepubot] language decides)."""
    chosen = ["--lang", lang] if lang else []
    return subprocess.run(
        [
            *(sys.executable, "-m", "kepubot", "--config", str(env.config)),
            *(*chosen, "--as", user, *args),
        ],
        cwd=env.root,
        env=env.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rows(env: DaemonEnv) -> dict[str, tuple[int, str, str, str]]:
    conn = connect_db(env.db)
    try:
        return {
            r[1]: (r[0], r[2], r[3], r[4] or "")
            for r in conn.execute(
                "SELECT id, channel, kind, state, progress FROM deliveries ORDER BY id"
            )
        }
    finally:
        conn.close()


def run_until(env: DaemonEnv, done, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        env.run_once()
        time.sleep(0.3)
    raise AssertionError(f"not reached: {rows(env)}\n{env.log_text()}")


def test_assisted_print_and_screen_exactly_once_confirmed_imported_retracted(
    tmp_path: Path,
) -> None:
    env = env_with_outlets(tmp_path)
    try:
        # the assisted post first, alone: the daemon dies after the pack was written and before
        # the outcome was recorded; the next daemon finds the pack instead of writing another
        (post_id,) = env.queue(1, ["tt"], title="七步洗手法")
        crashed = env.run_once(KEPUBOT_CRASH_AT="after-response")
        assert crashed.returncode == -9, env.log_text()
        assert rows(env)["tt"][2] == "sending"
        # reconciliation: unknown -> awaiting_person once find() sees the pack
        run_until(env, lambda: rows(env)["tt"][2] == "awaiting_person")
        delivery_id, _, _, progress = rows(env)["tt"]
        assert json.loads(progress)["awaiting_person"] is True
        packs = sorted(p.name for p in (env.root / "packs").iterdir())
        assert len([p for p in packs if p.endswith(".zip")]) == 1, packs
        assert [p for p in packs if p.startswith(".tmp-")] == []
        folder = next(env.root / "packs" / p for p in packs if not p.endswith(".zip"))
        assert (folder / "title.txt").read_text(encoding="utf-8").strip() == "七步洗手法 0"

        conn = connect_db(env.db)
        keys = [r[0] for r in conn.execute("SELECT key FROM alerts")]
        conn.close()
        assert f"assisted-task:{delivery_id}" in keys  # the assignee was told, once

        # someone neither operator nor assignee may not confirm; the assignee may, once
        refused = cli(
            env, "ed", "delivery", "confirm", str(delivery_id), "--url", "https://x.example/1"
        )
        assert refused.returncode == 2 and "assignees" in refused.stderr
        url = "https://www.toutiao.com/article/7350000000000000001/"
        done = cli(env, "pub", "delivery", "confirm", str(delivery_id), "--url", url)
        assert done.returncode == 0, done.stderr
        again = cli(env, "pub", "delivery", "confirm", str(delivery_id), "--url", url)
        assert again.returncode == 2 and "already confirmed" in again.stderr
        assert "Traceback" not in again.stderr
        conn = connect_db(env.db)
        confirmations = conn.execute(
            "SELECT COUNT(*) FROM audit WHERE action = 'delivery.confirmed_by_person'"
        ).fetchone()[0]
        state, remote = conn.execute(
            "SELECT state, remote_url FROM deliveries WHERE id = ?", (delivery_id,)
        ).fetchone()
        conn.close()
        assert (confirmations, state, remote) == (1, "published", url)

        # figures from Toutiao's export: matched by link; the other rows are listed
        imported = cli(env, "ops", "metrics", "import", str(FIXTURE), "--channel", "tt")
        assert imported.returncode == 0, imported.stderr
        assert "imported 1 rows" in imported.stdout and "unmatched: row 3" in imported.stdout
        conn = connect_db(env.db)
        latest = conn.execute(
            "SELECT views, likes, source FROM metrics_latest WHERE delivery_id = ?", (delivery_id,)
        ).fetchone()
        conn.close()
        assert tuple(latest) == (12345, 321, "imported")
        # reports show the assisted outlet beside the others, marking where figures came from
        env.config.write_text(
            env.config.read_text(encoding="utf-8") + '[users.boss]\nroles = ["manager"]\n',
            encoding="utf-8",
        )
        shown = cli(env, "boss", "report", "--format", "csv", "--section", "channels", lang=None)
        assert shown.returncode == 0, shown.stderr
        assert "tt（数据：导入）" in shown.stdout and "12345" in shown.stdout

        # the print and screen channels
        # the print and screen channels, the daemon again killed mid-send first
        (second,) = env.queue(1, ["paper", "kiosk"], title="开窗通风")
        crashed = env.run_once(KEPUBOT_CRASH_AT="after-response")
        assert crashed.returncode == -9, env.log_text()
        run_until(
            env,
            lambda: rows(env)["paper"][2] == "published" and rows(env)["kiosk"][2] == "published",
        )
        docx = list((env.root / "paper").glob("paper-*.docx"))
        assert len(docx) == 1 and docx[0].with_suffix(".txt").is_file()
        data = (env.root / "kiosk" / "data.js").read_text(encoding="utf-8")
        assert data.count("开窗通风 0") == 1
        filed = json.loads((env.root / "paper" / ".kepubot-print.json").read_text("utf-8"))
        items = [i for issue in filed["issues"].values() for i in issue["items"].values()]
        assert [i["post_id"] for i in items] == [second]  # filed once
        from docx import Document

        headlines = [
            p.text for p in Document(str(docx[0])).paragraphs if p.style.name == "Heading 1"
        ]
        assert headlines == ["开窗通风 0"]

        # retraction: the screen removes the slide itself; the others are a person's task
        app = env.app()
        retract_post(app, "rev", post_id, reason="数据有误", now=utcnow())
        retract_post(app, "rev", second, reason="数据有误", now=utcnow())
        app.close()
        run_until(
            env,
            lambda: (
                rows(env)["kiosk"][1:3] == ("retract", "retracted")
                and rows(env)["tt"][2] == "needs_attention"
                and rows(env)["paper"][2] == "needs_attention"
            ),
        )
        assert "开窗通风 0" not in (env.root / "kiosk" / "data.js").read_text(encoding="utf-8")
        gone = cli(env, "ops", "delivery", "resolve", str(delivery_id), "--retracted")
        assert gone.returncode == 0, gone.stderr
        assert rows(env)["tt"][1:3] == ("retract", "retracted")
    finally:
        env.sandbox.stop()


def test_metrics_import_is_all_or_nothing(tmp_path: Path) -> None:
    env = env_with_outlets(tmp_path)
    try:
        bad = env.root / "bad.csv"
        bad.write_text(
            "标题,发布时间,阅读量\n七步洗手法 0,2026-12-01 10:00,abc\n", encoding="utf-8"
        )
        result = cli(env, "ops", "metrics", "import", str(bad), "--channel", "tt")
        assert result.returncode == 2
        assert "error: bad.csv: row 2, column 阅读量: 'abc' is not a number" in result.stderr
        assert "Traceback" not in result.stderr
        conn = connect_db(env.db)
        assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 0
        conn.close()
        missing = cli(
            env, "ops", "metrics", "import", str(env.root / "none.csv"), "--channel", "tt"
        )
        assert missing.returncode == 2 and missing.stderr.startswith("error: ")
    finally:
        env.sandbox.stop()
