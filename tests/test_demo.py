"""`kepubot demo` runs the whole flow on a fresh folder with no credentials."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kepubot.demo import DEMO_SECRETS


def test_demo_publishes_everything_exactly_once(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "kepubot", "demo", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published 64 of 64 deliveries" in done.stdout
    assert "duplicates 0" in done.stdout
    assert "audit chain: intact" in done.stdout
    assert (folder / "public" / "feeds" / "feed.xml").exists()
    status = subprocess.run(
        [
            sys.executable,
            "-m",
            "kepubot",
            "--config",
            str(folder / "kepubot.toml"),
            "status",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**dict.fromkeys(DEMO_SECRETS, "x"), "PATH": "/usr/bin:/bin"},
    )
    assert status.returncode == 0, status.stderr
    assert '"published": 64' in status.stdout
    for name in ("weibo", "wechat", "douyin", "webhook", "wecom"):
        assert f"{name} " in done.stdout.split("sandbox received:")[1]
