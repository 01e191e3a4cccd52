"""Shared fixtures: every test works in its own folder with its own config and database."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import backends
import pytest
from click.testing import CliRunner, Result

from kepubot.cli import cli

FIXTURES = Path(__file__).parent / "fixtures"
# Headless Chromium on a machine without network access: without the background-networking
# flags it keeps trying (and failing) to reach Google's hosts.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SAMPLES = FIXTURES / "samples"

SECRETS = {
    "KEPUBOT_WEIBO_TOKEN": "weibo-token-SECRET-1111",
    "KEPUBOT_WECHAT_SECRET": "wechat-secret-SECRET-2222",
    "KEPUBOT_DOUYIN_SECRET": "douyin-secret-SECRET-3333",
    "KEPUBOT_DOUYIN_TOKEN": "douyin-token-SECRET-4444",
    "KEPUBOT_DOUYIN_REFRESH": "douyin-refresh-SECRET-5555",
}

# docs/architecture.md §7, plus users for every role the tests need.
CONFIG = textwrap.dedent(
    """
    [kepubot]
    database = "kepubot.db"
    timezone = "Asia/Shanghai"

    [daemon]
    poll_seconds = 1
    workers = 8
    lease_seconds = 300
    max_attempts = 8

    [review]
    levels = ["初审", "复审", "终审"]
    sensitive_words = "sensitive_words.txt"

    [users.zhang]
    roles = ["editor"]
    [users.chen]
    roles = ["editor"]
    [users.li]
    roles = ["reviewer"]
    [users.wang]
    roles = ["reviewer", "manager"]
    [users.zhao]
    roles = ["reviewer"]
    [users.ops]
    roles = ["operator"]
    [users.boss]
    roles = ["manager"]

    [channels.weibo-main]
    type = "weibo"
    access_token = "${KEPUBOT_WEIBO_TOKEN}"
    link_domain = "kepu.example.org"
    rip = "203.0.113.7"
    api_base = "https://api.weibo.com"
    rate_limit = "30/hour"
    posting_times = ["08:30", "12:00", "20:00"]
    timeout_seconds = 30

    [channels.wechat-main]
    type = "wechat"
    app_id = "wx0123456789abcdef"
    app_secret = "${KEPUBOT_WECHAT_SECRET}"
    mode = "freepublish"
    api_base = "https://api.weixin.qq.com"

    [channels.douyin-main]
    type = "douyin"
    client_key = "awkey"
    client_secret = "${KEPUBOT_DOUYIN_SECRET}"
    open_id = "open-id-1"
    access_token = "${KEPUBOT_DOUYIN_TOKEN}"
    refresh_token = "${KEPUBOT_DOUYIN_REFRESH}"
    api_base = "https://open.douyin.com"

    [channels.news-feed]
    type = "feed"
    output_dir = "public/feeds"
    site_url = "https://kepu.example.org"
    title = "科普资讯"
    formats = ["rss", "atom", "json"]
    """
)


def pytest_addoption(parser: pytest.Parser) -> None:
    backends.addoption(parser)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    backends.generate(metafunc)


def pytest_sessionfinish(session: pytest.Session) -> None:
    backends.finish()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    backends.summary(terminalreporter)


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``sqlite`` or ``postgresql``: database tests run on both (tests/backends.py)."""
    yield from backends.backend_fixture(request, monkeypatch)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("KEPUBOT_CONFIG", "KEPUBOT_USER", "KEPUBOT_LOG_LEVEL", "KEPUBOT_AUDIT_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)


def snapshot(db: Path) -> list[str]:
    """Every row of every table, to prove a refused command changed nothing (either backend)."""
    return backends.dump(db)


@dataclass
class Workspace:
    root: Path
    runner: CliRunner

    @property
    def config(self) -> Path:
        return self.root / "kepubot.toml"

    @property
    def db(self) -> Path:
        return self.root / "kepubot.db"

    def run(self, *args: str, user: str | None = None, lang: str | None = "en") -> Result:
        """Run the CLI in-process. Messages are asked for in English (``--lang en``), which
        the assertions read; ``lang="zh"`` asks for Chinese, ``lang=None`` leaves the choice to
        the config's [kepubot] language (Chinese by default). A ``--lang`` in ``args`` comes
        later and wins."""
        argv = ["--config", str(self.config)]
        if lang:
            argv += ["--lang", lang]
        if user:
            argv += ["--as", user]
        return self.runner.invoke(cli, [*argv, *args], catch_exceptions=False)

    def ok(self, *args: str, user: str | None = None, lang: str | None = "en") -> str:
        result = self.run(*args, user=user, lang=lang)
        assert result.exit_code == 0, f"{args} -> {result.exit_code}: {result.stderr}"
        return result.stdout

    def refused(
        self, *args: str, user: str | None = None, contains: str = "", lang: str | None = "en"
    ) -> str:
        """Run a command that must be refused: exit 2, one 'error:' line per problem, no
        traceback, and the database exactly as before."""
        before = snapshot(self.db)
        result = self.run(*args, user=user, lang=lang)
        after = snapshot(self.db)
        assert result.exit_code == 2, (
            f"{args} -> {result.exit_code}: {result.stdout}{result.stderr}"
        )
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), result.stderr
        assert before == after, "a refused command changed the database"
        if contains:
            assert contains in result.stderr, result.stderr
        return result.stderr

    def add_post(
        self, *extra: str, user: str = "zhang", title: str = "勤洗手：七步洗手法的科学依据"
    ) -> int:
        out = self.ok(
            "post",
            "add",
            "--title",
            title,
            "--body",
            "用流动水和肥皂洗手，揉搓时间不少于20秒。",
            "--summary",
            "正确洗手能有效去除手上的病原体。",
            "--link",
            "https://kepu.example.org/articles/0001",
            "--image",
            str(SAMPLES / "media" / "handwashing.png"),
            "--cover",
            str(SAMPLES / "media" / "cover-wide.png"),
            *extra,
            user=user,
        )
        return int(out.strip())


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    (tmp_path / "kepubot.toml").write_text(CONFIG, encoding="utf-8")
    shutil.copy(SAMPLES / "sensitive_words.txt", tmp_path / "sensitive_words.txt")
    return Workspace(tmp_path, CliRunner())
