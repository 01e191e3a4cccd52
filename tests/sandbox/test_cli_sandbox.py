"""`kepubot sandbox --port P` serves until SIGTERM and prints its base URL first."""

from __future__ import annotations

import signal
import subprocess
import sys

import requests


def test_kepubot_sandbox_command_serves_and_stops() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "kepubot", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        base = process.stdout.readline().strip()
        assert base.startswith("http://127.0.0.1:")
        index = requests.get(f"{base}/_sandbox/", timeout=5)
        assert index.status_code == 200
        refused = requests.post(f"{base}/2/statuses/share.json", data={"status": "x"}, timeout=5)
        assert refused.json()["error_code"] == 21301  # no access_token: Weibo's own error shape
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    assert code == 0
