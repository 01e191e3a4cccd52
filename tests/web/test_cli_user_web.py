"""`kepubot user passwd|list` and `kepubot web` as a real server process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

from conftest import Workspace, snapshot
from kepubot.cli import cli


def passwd(ws: Workspace, name: str, password: str, actor: str | None = None) -> object:
    """``name`` sets their own password (or ``actor`` does)."""
    return ws.runner.invoke(
        cli,
        [
            *("--config", str(ws.config), "--lang", "en", "--as", actor or name),
            *("user", "passwd", name, "--password-stdin"),
        ],
        input=password + "\n",
    )


def test_passwd_refuses_unknown_users_and_short_passwords(workspace: Workspace) -> None:
    workspace.ok("post", "list")  # create the database
    before = snapshot(workspace.db)
    for name, password, message in [
        ("nobody", "long-enough-1", "not configured in [users]"),
        ("zhang", "x7q", "at least 8 characters"),
        ("zhang", " padded-password ", "white space"),
    ]:
        result = passwd(workspace, name, password)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert "Traceback" not in result.stderr and password.strip() not in result.stderr
    assert snapshot(workspace.db) == before


def test_passwd_sets_a_hash_and_list_shows_it(workspace: Workspace) -> None:
    result = passwd(workspace, "zhang", "a-good-password")
    assert result.exit_code == 0 and "password set for zhang" in result.stdout
    assert "a-good-password" not in result.output
    users = {u["name"]: u for u in json.loads(workspace.ok("user", "list", "--json"))}
    assert users["zhang"]["password_set"] is True and users["li"]["password_set"] is False
    assert users["wang"]["roles"] == ["reviewer", "manager"]
    table = workspace.ok("user", "list")
    assert re.search(r"zhang\s+editor\s+set", table)
    audit = workspace.ok("audit", "--json")
    assert "user.password_set" in audit and "a-good-password" not in audit


def test_web_serves_the_console_over_http(workspace: Workspace) -> None:
    assert passwd(workspace, "boss", "manager-password").exit_code == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "kepubot", "--config", str(workspace.config), "web", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + (process.stderr.read() if process.poll() is not None else "")
        base = f"http://127.0.0.1:{match.group(1)}"
        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{base}/login", timeout=10).read().decode()
        token = re.search(r'name="csrf-token" content="([^"]+)"', page)
        assert token is not None
        form = urllib.parse.urlencode(
            {"user": "boss", "password": "manager-password", "csrf_token": token.group(1)}
        ).encode()
        reports = opener.open(f"{base}/login", data=form, timeout=10)
        assert reports.status == 200 and reports.url.endswith("/posts")
        report = opener.open(f"{base}/reports", timeout=10).read().decode()
        # a fresh install has no figures: the page says so instead of drawing empty axes
        # (the charts of a report with figures: tests/web/test_console.py, tests/reports/)
        assert 'id="charts-empty"' in report and "本期没有采集到阅读或互动数据" in report
        assert "<svg" not in report
        try:
            opener.open(f"{base}/review", timeout=10)
            raise AssertionError("a manager opened the review queue")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_passwd_reads_a_piped_password_without_the_flag(workspace: Workspace) -> None:
    """A provisioning script pipes the password (once, or twice as a person would type it)."""
    from kepubot.app import App
    from kepubot.config import load_config
    from kepubot.services.accounts import authenticate
    from kepubot.timeutil import utcnow

    for name, piped in (("li", "reviewer-pass-1\n"), ("wang", "manager-pass-2\nmanager-pass-2\n")):
        command = [sys.executable, "-m", "kepubot", "--config", str(workspace.config)]
        command += ["--lang", "en", "--as", name]
        done = subprocess.run(
            [*command, "user", "passwd", name],
            input=piped,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert piped.split()[0] not in done.stdout + done.stderr
    app = App(load_config(workspace.config))
    now = utcnow()
    assert authenticate(app, "li", "reviewer-pass-1", address="t", now=now) is not None
    assert authenticate(app, "wang", "manager-pass-2", address="t", now=now) is not None
    app.close()
