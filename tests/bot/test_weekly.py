"""The weekly report: written once per week by whichever daemon gets there first, with a
summary posted to the configured robot channel."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from kepubot.app import App
from kepubot.bot.dispatch import Engine
from kepubot.bot.weekly import last_occurrence, period_for, run_weekly
from kepubot.config import load_config
from kepubot.sandbox.server import Sandbox


def test_last_occurrence_and_period() -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    tuesday = datetime(2026, 12, 1, 10, 0, tzinfo=tz)  # a Tuesday
    monday_9 = last_occurrence("MON 09:00", tuesday)
    assert monday_9 == datetime(2026, 11, 30, 9, 0, tzinfo=tz)
    assert period_for(monday_9) == (datetime(2026, 11, 23).date(), datetime(2026, 11, 29).date())
    early_monday = datetime(2026, 11, 30, 8, 0, tzinfo=tz)
    assert last_occurrence("MON 09:00", early_monday) == datetime(2026, 11, 23, 9, 0, tzinfo=tz)


@pytest.fixture
def sandbox():
    box = Sandbox()
    box.start()
    yield box
    box.stop()


def test_weekly_report_written_once_and_announced(
    tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEPUBOT_TEST_ROBOT_KEY", "robot-key-123")
    # the emulated WeCom accepts only registered robot keys
    requests.post(
        f"{sandbox.base_url}/_sandbox/secrets", json={"wecom_keys": ["robot-key-123"]}, timeout=5
    ).raise_for_status()
    (tmp_path / "kepubot.toml").write_text(
        f"""
[reports]
weekly = "MON 09:00"
output_dir = "weekly"
channels = ["staff"]
[channels.staff]
type = "wecom"
webhook_key = "${{KEPUBOT_TEST_ROBOT_KEY}}"
api_base = "{sandbox.base_url}"
""",
        encoding="utf-8",
    )
    app = App(load_config(tmp_path / "kepubot.toml"))
    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 10:00 in Shanghai
    first = Engine(app, worker="a", clock=lambda: now)
    second = Engine(app, worker="b", clock=lambda: now)
    path = run_weekly(first)
    assert path == tmp_path / "weekly" / "report-2026-11-23-2026-11-29.html"
    assert path.exists() and path.with_suffix(".xlsx").exists()
    assert run_weekly(second) is None  # the other daemon does not write it again
    assert run_weekly(first) is None
    ledger = requests.get(f"{sandbox.base_url}/_sandbox/ledger?route=wecom", timeout=5).json()
    assert len(ledger["accepted"]) == 1
    message = ledger["accepted"][0]["body"]
    assert (
        message["msgtype"] == "markdown"
        and "科普传播周报 2026-11-23 ~ 2026-11-29" in message["markdown"]["content"]
    )
    assert str(path) in message["markdown"]["content"]
    first.close()
    second.close()
    app.close()
    assert "robot-key-123" not in json.dumps(os.listdir(tmp_path))
