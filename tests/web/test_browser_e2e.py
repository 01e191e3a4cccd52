"""The browser console end to end in a real headless Chromium (Playwright's sync API).

Everything is real: the console and the daemon run as `kepubot` subprocesses on one SQLite
file, the platforms are the sandbox's emulators over HTTP, and every step a person takes is
taken in the browser: an editor writes and submits a post with an image, two reviewers approve
it at the two levels (and the one-level-per-person rule is refused on the page), the daemon
publishes it, and a manager reads the report and downloads it as CSV.

Full-page screenshots of the main pages go to ``$KEPUBOT_SCREENSHOTS`` or else to
``test-artifacts/screenshots/`` at the repository's root.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import CHROMIUM_FLAGS, SAMPLES
from kepubot.sandbox.server import Sandbox
from platform_env import FAST_DAEMON, sandbox_request, weibo_wechat_channels

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect

CHROMIUM = shutil.which("chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (apt-get install chromium fonts-wqy-microhei)",
    ),
]

CHROMIUM_ARGS = ["--headless=new", *CHROMIUM_FLAGS]

REPO = Path(__file__).resolve().parents[2]
IMAGE = SAMPLES / "media" / "handwashing.png"

WEIBO_TOKEN = "weibo-token-BROWSER-1"
WECHAT_APPID = "wx00000000browser1"
WECHAT_SECRET = "wechat-secret-BROWSER-2"
PASSWORDS = {
    "zhang": "zhang-writes-2024",
    "li": "li-reviews-first",
    "wang": "wang-reviews-last",
    "boss": "boss-reads-reports",
}
CHANNELS = ("weibo-main", "wechat-main")

TITLE = "勤洗手：七步洗手法的科学依据"
BODY = textwrap.dedent(
    """
    ## 为什么要洗手

    用**流动水**和肥皂洗手，揉搓时间不少于 20 秒。

    - 掌心相对揉搓
    - 手指交叉揉搓
    """
).strip()
SUMMARY = "正确洗手能有效去除手上的病原体。"
LINK = "https://kepu.example.org/articles/handwashing"
TAGS = "健康 洗手"

TERMINAL = {"published", "failed", "cancelled", "needs_attention"}

# A collection point every second for two minutes: `run --once` collects too (while the
# sandbox's counts are still zero), so `metrics collect` needs a point of its own after the
# sandbox's clock has been moved on.
CADENCE = json.dumps([f"{s}s" for s in range(1, 121)])


def config_text(base: str) -> str:
    return (
        '[kepubot]\ndatabase = "kepubot.db"\ntimezone = "Asia/Shanghai"\n'
        + FAST_DAEMON
        + textwrap.dedent(
            f"""
            [metrics]
            cadence = {CADENCE}
            daily_days = 0

            [review]
            levels = ["初审", "终审"]

            [users.zhang]
            roles = ["editor"]
            [users.li]
            roles = ["reviewer"]
            [users.wang]
            roles = ["reviewer"]
            [users.boss]
            roles = ["manager"]
            """
        )
        + weibo_wechat_channels(base, WECHAT_APPID)
    )


@dataclass
class Console:
    root: Path
    sandbox_url: str
    url: str = ""
    logs: list[Path] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.root / "kepubot.toml"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in ("KEPUBOT_CONFIG", "KEPUBOT_USER", "KEPUBOT_CRASH_AT", "KEPUBOT_AUDIT_KEY"):
            env.pop(name, None)
        env.update(
            KEPUBOT_WEIBO_TOKEN=WEIBO_TOKEN,
            KEPUBOT_WECHAT_SECRET=WECHAT_SECRET,
            KEPUBOT_LOG_LEVEL="info",
        )
        return env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "kepubot", "--config", str(self.config), *args]

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        log = self.root / f"cli-{len(self.logs)}-{args[0]}.log"
        self.logs.append(log)
        with log.open("w") as handle:
            done = subprocess.run(
                self.argv(*args),
                cwd=self.root,
                env=self.env(),
                input=stdin,
                stdout=subprocess.PIPE,
                stderr=handle,
                text=True,
                timeout=120,
                check=False,
            )
        assert done.returncode == 0, f"kepubot {' '.join(args)}: {done.returncode}\n{log_text(log)}"
        return done

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.root / "kepubot.db")

    def delivery_states(self) -> dict[str, int]:
        with self.db() as conn:
            rows = conn.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            return dict(rows.fetchall())

    def log_text(self) -> str:
        return "\n".join(log_text(path) for path in self.logs)


def log_text(path: Path) -> str:
    return f"--- {path.name}\n{path.read_text(errors='replace')}" if path.exists() else ""


def start_console(console: Console) -> subprocess.Popen[str]:
    """`kepubot web --port 0` as a subprocess; its URL is read from the line it prints."""
    log = console.root / "web.log"
    console.logs.append(log)
    env = console.env()
    env.pop("PYTHONUNBUFFERED", None)  # the line must arrive through a block-buffered pipe
    process = subprocess.Popen(
        console.argv("web", "--port", "0"),
        cwd=console.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        found = re.search(r"kepubot console on (http://127\.0\.0\.1:\d+)/ ", line)
        if found:
            console.url = found.group(1)
            return process
    process.kill()
    process.wait(timeout=10)
    raise AssertionError(f"the console printed no URL: {seen!r}\n{log_text(log)}")


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    sandbox = Sandbox()
    base = sandbox.start()
    process = None
    try:
        sandbox_request(
            f"{base}/_sandbox/secrets",
            {"weibo_tokens": [WEIBO_TOKEN], "wechat": {WECHAT_APPID: WECHAT_SECRET}},
        )
        sandbox_request(
            f"{base}/_sandbox/settings",
            {"publish_polls_before_done": 1, "wechat_publishes_per_minute": 100},
        )
        root = tmp_path / "ws"
        root.mkdir()
        (root / "kepubot.toml").write_text(config_text(base), encoding="utf-8")
        env = Console(root, base)
        for name, password in PASSWORDS.items():
            done = env.cli(
                "--as", name, "user", "passwd", name, "--password-stdin", stdin=password + "\n"
            )
            assert f"password set for {name}" in done.stdout
        process = start_console(env)
        yield env
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        sandbox.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900},
                locale="zh-CN",
                accept_downloads=True,
            )
            context.set_default_timeout(10_000)
            yield context.new_page()
            context.close()
        finally:
            browser.close()


@pytest.fixture
def shots() -> Iterator[Any]:
    folder = Path(os.environ.get("KEPUBOT_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def shoot(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        path.unlink(missing_ok=True)
        page.screenshot(path=str(path), full_page=True)
        assert path.is_file() and path.stat().st_size > 0, path
        taken.append(path)
        return path

    yield shoot
    for path in taken:
        assert path.is_file() and path.stat().st_size > 0, path


def sign_in(page: Any, console: Console, name: str) -> None:
    page.goto(f"{console.url}/login")
    page.fill('input[name="username"]', name)
    page.fill('input[name="password"]', PASSWORDS[name])
    page.click('main form button[type="submit"]')
    expect(page.locator("header .user")).to_have_attribute("data-user", name)


def sign_out(page: Any, console: Console) -> None:
    page.locator("header form").get_by_role("button", name="退出").click()
    expect(page).to_have_url(f"{console.url}/login")
    expect(page.locator("header .user")).to_have_count(0)


def settle(console: Console, timeout: float = 45) -> dict[str, int]:
    """`kepubot run --once` until every delivery is published (or otherwise settled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = console.delivery_states()
        if states and set(states) <= TERMINAL:
            return states
        console.cli("run", "--once")
        time.sleep(0.3)
    raise AssertionError(f"not settled: {console.delivery_states()}\n{console.log_text()}")


def test_compose_review_publish_and_report_in_a_real_browser(
    console: Console, page: Any, shots: Any
) -> None:
    url = console.url

    # --- the editor writes the post and submits it -----------------------------------------
    page.goto(f"{url}/posts")
    expect(page).to_have_url(re.compile(r"/login\?next=/posts$"))
    expect(page.locator("h1")).to_have_text("登录")
    shots(page, "01-login")
    sign_in(page, console, "zhang")
    expect(page).to_have_url(f"{url}/posts")

    page.get_by_role("link", name="写稿").click()
    expect(page).to_have_url(f"{url}/posts/new")
    form = page.locator("#compose-form")
    form.locator('input[name="title"]').fill(TITLE)
    form.locator('textarea[name="body"]').fill(BODY)
    form.locator('input[name="summary"]').fill(SUMMARY)
    form.locator('input[name="link"]').fill(LINK)
    form.locator('input[name="tags"]').fill(TAGS)
    form.locator('input[name="images"]').set_input_files(str(IMAGE))
    for name in CHANNELS:
        form.locator(f'input[name="channels"][value="{name}"]').check()

    preview = page.locator("#live-preview")
    expect(preview).to_have_attribute("data-ready", re.compile(r"^\d+$"))
    expect(preview.locator(".channel-preview")).to_have_count(len(CHANNELS))
    expect(preview.locator(".body-preview h2")).to_have_text("为什么要洗手")
    expect(preview.locator(".body-preview strong")).to_have_text("流动水")
    weibo = preview.locator('.channel-preview[data-channel="weibo-main"]')
    expect(weibo.locator(".sent-text")).to_contain_text(LINK)
    expect(weibo).not_to_have_class(re.compile(r"has-problems"))
    expect(preview.locator('.channel-preview[data-channel="wechat-main"]')).to_contain_text(TITLE)
    shots(page, "03-compose-live-preview")

    page.locator('button[name="submit_now"]').click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(url)}/posts/\d+$"))
    post_id = int(page.url.rsplit("/", 1)[1])
    post_url = f"{url}/posts/{post_id}"
    expect(page.locator("h1")).to_have_text(f"#{post_id} {TITLE}")
    expect(page.locator("#post-state")).to_contain_text("审核中")
    expect(page.locator("#post-state")).to_contain_text("初审")
    thumb = page.locator(".thumbs img")
    expect(thumb).to_have_count(1)
    assert thumb.evaluate("img => img.complete && img.naturalWidth") > 0  # /media/ served it
    shots(page, "04-post-in-review")

    page.get_by_role("link", name="稿件").first.click()
    row = page.locator(f'#post-list tr[data-post="{post_id}"]')
    expect(row).to_contain_text(TITLE)
    expect(row).to_contain_text("审核中")
    shots(page, "02-posts")
    sign_out(page, console)

    # --- review: li approves level 1, is refused level 2; wang approves level 2 ----------
    sign_in(page, console, "li")
    page.get_by_role("link", name="审核").click()
    expect(page).to_have_url(f"{url}/review")
    queued = page.locator(f'section[data-level="1"] tr[data-post="{post_id}"]')
    expect(queued).to_contain_text(TITLE)
    shots(page, "05-review-queue")
    queued.locator('input[name="comment"]').fill("事实核对无误")
    queued.get_by_role("button", name="通过").click()
    expect(page).to_have_url(f"{url}/review")
    expect(page.locator(".flash.ok")).to_have_text("完成。")
    expect(page.locator(f'section[data-level="1"] tr[data-post="{post_id}"]')).to_have_count(0)
    waiting = page.locator(f'section[data-level="2"] tr[data-post="{post_id}"]')
    expect(waiting).to_contain_text("不可审核")
    expect(waiting.get_by_role("button", name="通过")).to_have_count(0)

    page.goto(post_url)
    expect(page.locator("#post-state")).to_contain_text("终审")
    refusal = page.locator("#review-refusal")
    expect(refusal).to_contain_text("li 已在「初审」通过过它")
    expect(refusal).to_contain_text("同一人只能审核一篇稿件的一个级别")
    page.locator('#review-box input[name="comment"]').fill("再批一次")
    with page.expect_response(
        lambda r: r.url.endswith(f"/posts/{post_id}/approve") and r.request.method == "POST"
    ) as answer:
        page.locator("#approve-post").click()
    assert answer.value.status == 403
    expect(page.locator("#error-message")).to_contain_text("同一人只能审核一篇稿件的一个级别")
    expect(page.locator("h1")).to_contain_text("没有权限")
    shots(page, "12-review-refused")
    page.goto(post_url)
    expect(page.locator("#post-state")).to_contain_text("终审")  # nothing changed
    sign_out(page, console)

    sign_in(page, console, "wang")
    page.goto(post_url)
    expect(page.locator("#review-refusal")).to_have_count(0)
    page.locator('#review-box input[name="comment"]').fill("同意发布")
    page.locator("#approve-post").click()
    expect(page).to_have_url(post_url)
    expect(page.locator("#post-state")).to_have_text("已通过")
    reviews = page.locator("#reviews tbody tr")
    expect(reviews).to_have_count(2)
    expect(reviews.nth(0)).to_contain_text("事实核对无误")
    expect(reviews.nth(1)).to_contain_text("同意发布")
    rows = page.locator("#post-deliveries tbody tr[data-delivery]")
    expect(rows).to_have_count(len(CHANNELS))
    for name in CHANNELS:
        expect(page.locator("#post-deliveries tbody")).to_contain_text(name)
    sign_out(page, console)

    # --- the daemon publishes; metrics are collected ------------------------------------
    assert settle(console) == {"published": len(CHANNELS)}
    sandbox_request(
        f"{console.sandbox_url}/_sandbox/clock", {"advance": 3600}
    )  # likes grow per hour
    time.sleep(1.1)  # the next collection point passes
    console.cli("metrics", "collect")
    with console.db() as conn:
        likes = conn.execute(
            "SELECT m.likes FROM metrics_latest m JOIN deliveries d ON d.id = m.delivery_id"
            " WHERE d.channel = 'weibo-main'"
        ).fetchall()
    assert len(likes) == 1 and likes[0][0] > 0, likes  # an hour of the sandbox's growth
    with console.db() as conn:
        (total_likes,) = conn.execute("SELECT SUM(likes) FROM metrics_latest").fetchone()

    # --- the editor sees the published deliveries, calendar and audit trail --------------
    sign_in(page, console, "zhang")
    page.goto(post_url)
    expect(page.locator("#post-state")).to_have_text("已通过")  # a post has no published state
    for name in CHANNELS:
        delivered = page.locator("#post-deliveries tbody tr", has_text=name)
        expect(delivered).to_contain_text("已发布")
        link = delivered.locator("a[href]")
        expect(link).to_have_count(1)
        assert re.match(r"https?://", link.get_attribute("href") or ""), link.get_attribute("href")
    shots(page, "06-post-published")

    page.get_by_role("link", name="审计记录").click()
    expect(page).to_have_url(f"{post_url}/audit")
    audit = page.locator("#audit-rows tbody")
    for who in ("zhang", "li", "wang"):
        expect(audit).to_contain_text(who)
    assert page.locator("#audit-rows tbody tr").count() >= 5
    shots(page, "07-audit")

    page.get_by_role("link", name="日历").click()
    expect(page).to_have_url(f"{url}/calendar")
    events = page.locator(f'#calendar a.event[href="/posts/{post_id}"]')
    expect(events).to_have_count(len(CHANNELS))
    expect(events.first).to_contain_text("已发布")
    shots(page, "08-calendar-week")
    page.goto(f"{url}/calendar?view=month")
    expect(page.locator("#calendar.month")).to_be_visible()
    expect(page.locator(f'#calendar a.event[href="/posts/{post_id}"]')).to_have_count(len(CHANNELS))
    shots(page, "09-calendar-month")

    page.get_by_role("link", name="发布任务").click()
    expect(page).to_have_url(f"{url}/deliveries")
    listed = page.locator("#delivery-list tbody tr[data-delivery]")
    expect(listed).to_have_count(len(CHANNELS))
    for i in range(len(CHANNELS)):
        expect(listed.nth(i)).to_contain_text("已发布")
    shots(page, "10-deliveries")
    sign_out(page, console)

    # --- the manager reads the report and downloads it ----------------------------------
    sign_in(page, console, "boss")
    page.get_by_role("link", name="报表").click()
    expect(page).to_have_url(f"{url}/reports")
    report = page.locator("#report")
    expect(report).to_contain_text(TITLE)
    deliveries_card = report.locator(".card", has=page.locator(".k", has_text="发布次数"))
    expect(deliveries_card.locator(".v")).to_have_text(str(len(CHANNELS)))
    posts_card = report.locator(".card", has=page.locator(".k", has_text="发布稿件数"))
    expect(posts_card.locator(".v")).to_have_text("1")
    likes_card = report.locator(".card", has=page.locator(".k", has_text="点赞"))
    expect(likes_card.locator(".v")).to_have_text(str(total_likes))
    shots(page, "11-reports")
    with page.expect_download() as download:
        page.locator("#download-csv").click()
    assert download.value.suggested_filename.endswith(".csv")
    saved = console.root / "report.csv"
    download.value.save_as(saved)
    csv_text = saved.read_text(encoding="utf-8-sig")
    assert TITLE in csv_text
    sign_out(page, console)
