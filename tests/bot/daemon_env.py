"""A workspace for end-to-end daemon tests: a real database file, the sandbox's real HTTP
server on a free port, and `kepubot run` as real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends import connect_db

from kepubot.app import App
from kepubot.config import load_config
from kepubot.sandbox.server import Sandbox
from kepubot.services.posts import PostInput, approve, create_posts, submit
from kepubot.timeutil import utcnow
from platform_env import sandbox_request

CMS_SECRET = "cms-secret-VALUE-7777"
WECOM_KEY = "wecom-key-VALUE-8888"

TERMINAL = ("published", "failed", "cancelled", "needs_attention", "retracted")


def config_text(base: str, daemon: dict[str, Any]) -> str:
    settings = {
        "poll_seconds": 0.2,
        "workers": 4,
        "lease_seconds": 5,
        "reconcile_after_seconds": 0.3,
        "backoff_base_seconds": 0.2,
        "backoff_cap_seconds": 1,
        "shutdown_seconds": 5,
        "max_attempts": 20,
        "breaker_open_seconds": 1,
        **daemon,
    }
    daemon_lines = "\n".join(f"{k} = {json.dumps(v)}" for k, v in settings.items())
    return textwrap.dedent(
        """
        [kepubot]
        database = "kepubot.db"

        [daemon]
        {daemon_lines}

        [users.ed]
        roles = ["editor"]
        [users.rev]
        roles = ["reviewer"]

        [channels.cms]
        type = "webhook"
        url = "{base}/webhook/cms"
        lookup_url = "{base}/webhook/cms/lookup"
        secret = "${{KEPUBOT_TEST_CMS_SECRET}}"
        timeout_seconds = 1

        [channels.plain]
        type = "webhook"
        url = "{base}/webhook/plain"
        timeout_seconds = 1

        [channels.news-feed]
        type = "feed"
        output_dir = "public/feeds"
        site_url = "https://kepu.example.org"
        title = "科普资讯"
        max_items = 1000
        min_gap_minutes = 0

        [channels.staff]
        type = "wecom"
        webhook_key = "${{KEPUBOT_TEST_WECOM_KEY}}"
        api_base = "{base}"
        rate_limit = "600/minute"
        timeout_seconds = 1
        """
    ).format(base=base, daemon_lines=daemon_lines)


@dataclass
class DaemonEnv:
    root: Path
    sandbox: Sandbox
    base: str
    logs: list[Path] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "kepubot.toml"

    @property
    def db(self) -> Path:
        return self.root / "kepubot.db"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KEPUBOT_TEST_CMS_SECRET=CMS_SECRET,
            KEPUBOT_TEST_WECOM_KEY=WECOM_KEY,
            KEPUBOT_LOG_LEVEL=extra.pop("KEPUBOT_LOG_LEVEL", "info"),
        )
        env.pop("KEPUBOT_CRASH_AT", None)
        env.update(extra)
        return env

    def app(self) -> App:
        os.environ["KEPUBOT_TEST_CMS_SECRET"] = CMS_SECRET
        os.environ["KEPUBOT_TEST_WECOM_KEY"] = WECOM_KEY
        return App(load_config(self.config))

    def queue(self, count: int, channels: list[str], *, title: str = "科普") -> list[int]:
        """Write, submit and approve ``count`` posts (one review level), due now."""
        app = self.app()
        now = utcnow()
        items = [
            (
                PostInput(
                    title=f"{title} {i}",
                    body=f"第 {i} 篇正文。",
                    link=f"https://kepu.example.org/a/{i}",
                    channels=channels,
                ),
                f"test {i}",
            )
            for i in range(count)
        ]
        ids = create_posts(app, "ed", items, now=now)
        submit(app, "ed", ids, now=now)
        approve(app, "rev", ids, now=now)
        app.close()
        return ids

    def _log(self, name: str) -> Path:
        path = self.root / f"{name}-{len(self.logs)}.log"
        self.logs.append(path)
        return path

    def run_once(self, **env: str) -> subprocess.CompletedProcess[str]:
        log = self._log("once")
        with log.open("w") as handle:
            return subprocess.run(
                # --lang en: the messages the tests read, in English (docs/architecture.md §15.5)
                [
                    *(sys.executable, "-m", "kepubot", "--config", str(self.config)),
                    *("--lang", "en", "run", "--once"),
                ],
                cwd=self.root,
                env=self.env(**env),
                stdout=subprocess.PIPE,
                stderr=handle,
                text=True,
                timeout=120,
                check=False,
            )

    def start(self, **env: str) -> subprocess.Popen[str]:
        log = self._log("daemon")
        return subprocess.Popen(
            [sys.executable, "-m", "kepubot", "--config", str(self.config), "--lang", "en", "run"],
            cwd=self.root,
            env=self.env(**env),
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
            text=True,
        )

    def stop(self, process: subprocess.Popen[str], timeout: float = 20) -> int:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.wait(timeout=timeout)

    def states(self) -> dict[str, int]:
        conn = connect_db(self.db)
        try:
            return dict(
                conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall()
            )
        finally:
            conn.close()

    def settled(self) -> bool:
        states = self.states()
        return sum(states.values()) > 0 and all(s in TERMINAL for s in states)

    def settle(self, timeout: float = 60, **env: str) -> dict[str, int]:
        """Run `run --once` until every delivery is terminal (or needs attention)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.settled():
                return self.states()
            self.run_once(**env)
            time.sleep(0.35)
        raise AssertionError(f"not settled after {timeout} s: {self.states()}")

    def wait_for(self, predicate: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out; deliveries: {self.states()}")

    # sandbox control
    def ledger(self, route: str | None = None) -> dict[str, list[dict[str, Any]]]:
        suffix = f"?route={route}" if route else ""
        return sandbox_request(f"{self.base}/_sandbox/ledger{suffix}")

    def requests_seen(self) -> list[dict[str, Any]]:
        return sandbox_request(f"{self.base}/_sandbox/requests")

    def faults(self, rules: list[dict[str, Any]], seed: int = 7) -> None:
        sandbox_request(f"{self.base}/_sandbox/faults", {"seed": seed, "rules": rules})

    def clear_faults(self) -> None:
        sandbox_request(f"{self.base}/_sandbox/faults", method="DELETE")

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs if p.exists())


def make_env(tmp_path: Path, **daemon: Any) -> DaemonEnv:
    sandbox = Sandbox()
    base = sandbox.start()
    sandbox_request(
        f"{base}/_sandbox/secrets", {"webhook": {"cms": CMS_SECRET}, "wecom_keys": [WECOM_KEY]}
    )
    # this test robot is allowed what its channel's rate_limit says (600/minute)
    sandbox_request(f"{base}/_sandbox/limits", {"wecom": 600})
    root = tmp_path / "ws"
    root.mkdir()
    (root / "kepubot.toml").write_text(config_text(base, daemon), encoding="utf-8")
    env = DaemonEnv(root, sandbox, base)
    app = env.app()
    app.store.migrate()  # create and migrate before any daemon starts
    app.close()
    return env


def feed_ids(env: DaemonEnv) -> list[str]:
    path = env.root / "public" / "feeds" / "feed.json"
    if not path.exists():
        return []
    return [item["id"] for item in json.loads(path.read_text(encoding="utf-8"))["items"]]
