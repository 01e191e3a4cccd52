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
from backends import connect_db

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
                self.argv("--lang", "en", *args),  # messages the test reads, in English
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
        return connect_db(self.root / "kepubot.db")

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
    expect(weibo.locator(".wb-text")).to_contain_text(LINK)  # the status as Weibo shows it
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
    expect(page.locator(".flash.ok")).to_have_text("已通过初审，进入终审。")
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
    expect(page.locator("#post-state")).to_have_text("已发布")  # a channel published it
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
    # one card per post per day, its channels as labels
    events = page.locator(f'#calendar .event.card[data-post="{post_id}"]')
    expect(events).to_have_count(1)
    expect(events.locator(".label.d-published")).to_have_count(len(CHANNELS))
    expect(events.first).to_contain_text("已发布")
    shots(page, "08-calendar-week")
    page.goto(f"{url}/calendar?view=month")
    expect(page.locator("#calendar.month")).to_be_visible()
    expect(page.locator(f'#calendar .event.card[data-post="{post_id}"]')).to_have_count(1)
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
    # one CSV per section, in a zip (issue 16)
    assert download.value.suggested_filename.endswith(".zip")
    saved = console.root / "report.zip"
    download.value.save_as(saved)
    import zipfile

    with zipfile.ZipFile(saved) as archive:
        csv_text = archive.read("03-top_posts.csv").decode("utf-8-sig")
    assert TITLE in csv_text
    sign_out(page, console)


# --- issue 16: the calendar by mouse, the phone layout, screenshots at both sizes -----------

DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 390, "height": 844}
NO_SIDEWAYS = "() => [document.documentElement.scrollWidth, window.innerWidth]"


def add_post(console: Console, *extra: str, title: str, user: str = "zhang") -> int:
    done = console.cli(
        *("--as", user, "post", "add", "--title", title, "--body", BODY),
        *("--summary", SUMMARY, "--link", LINK, "--image", str(IMAGE), "--tag", "健康"),
        *extra,
    )
    return int(done.stdout.strip())


def scheduled_at(console: Console, post_id: int) -> str:
    with console.db() as conn:
        (value,) = conn.execute(
            "SELECT scheduled_at FROM posts WHERE id = ?", (post_id,)
        ).fetchone()
    return str(value)


def drag(page: Any, source: Any, target: Any) -> None:
    """Press the mouse on ``source``, move it over ``target`` in steps, release it."""
    source.scroll_into_view_if_needed()
    box = source.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 8)
    page.mouse.down()
    target.scroll_into_view_if_needed()
    goal = target.bounding_box()
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=12)
    page.mouse.up()


def test_calendar_drag_and_phone_layout_in_a_real_browser(
    console: Console, page: Any, shots: Any
) -> None:
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    url = console.url
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    start, target = today + timedelta(days=1), today + timedelta(days=3)
    planned = add_post(
        console,
        *("--channel", "weibo-main", "--channel", "wechat-main", "--at", f"{start} 10:00"),
        title="日历拖动：冬季流感预防",
    )
    # something in every list: a post in review, a published one with its links
    in_review = add_post(console, "--channel", "weibo-main", title="审核队列里的稿件")
    console.cli("--as", "zhang", "post", "submit", str(in_review))
    published = add_post(
        console, "--channel", "weibo-main", "--channel", "wechat-main", title="已发布：七步洗手法"
    )
    console.cli("--as", "zhang", "post", "submit", str(published))
    console.cli("--as", "li", "post", "approve", str(published))
    console.cli("--as", "wang", "post", "approve", str(published))
    assert settle(console) == {"published": len(CHANNELS)}

    page.set_viewport_size(DESKTOP)
    sign_in(page, console, "zhang")

    # --- drag a planned post to another day with the mouse -------------------------------
    # the month grid when both days are in it, else the agenda (14 days from the first)
    view = "month" if (start.year, start.month) == (target.year, target.month) else "agenda"
    page.goto(f"{url}/calendar?view={view}&date={start}")
    card = page.locator(f'#calendar .event.card[data-post="{planned}"]')
    expect(card).to_have_attribute("draggable", "true")
    expect(card.locator(".label")).to_have_count(2)
    drop = page.locator(f'#calendar [data-date="{target}"]')
    drag(page, card, drop)
    moved = page.locator(f'#calendar [data-date="{target}"] .event.card[data-post="{planned}"]')
    expect(moved).to_have_count(1)  # the page reloaded with the card on its new day
    left = page.locator(f'#calendar [data-date="{start}"] [data-post="{planned}"]')
    expect(left).to_have_count(0)
    ten = datetime.combine(target, datetime.min.time(), ZoneInfo("Asia/Shanghai"))
    ten = (ten + timedelta(hours=10)).astimezone(ZoneInfo("UTC"))
    assert scheduled_at(console, planned).startswith(ten.strftime("%Y-%m-%dT%H:%M"))

    # --- a refused drop (a past day) says why, on the page, and changes nothing ----------
    yesterday = today - timedelta(days=1)
    page.goto(f"{url}/calendar?view=agenda&date={yesterday}")
    card = page.locator(f'#calendar .event.card[data-post="{planned}"]')
    before = scheduled_at(console, planned)
    drag(page, card, page.locator(f'#calendar [data-date="{yesterday}"]'))
    message = page.locator("#calendar-message")
    expect(message).to_be_visible()
    expect(message).to_contain_text("已经过去")
    assert scheduled_at(console, planned) == before
    shots(page, "20-calendar-refused-drop")

    # --- the keyboard / no-script way: the form on the card ------------------------------
    page.goto(f"{url}/calendar?date={target}")
    card = page.locator(f'#calendar .event.card[data-post="{planned}"]')
    card.locator("details.move summary").focus()
    page.keyboard.press("Enter")
    card.locator('input[name="time"]').fill("15:30")
    card.locator('.move-form button[type="submit"]').click()
    expect(page.locator(".flash.ok")).to_contain_text(f"稿件 {planned} 已改到 {target} 15:30")
    expect(page.locator(f'#calendar .event.card[data-post="{planned}"]')).to_have_attribute(
        "data-time", "15:30"
    )

    # --- the week view: drop on a time of day --------------------------------------------
    page.goto(f"{url}/calendar?date={target}")
    card = page.locator(f'#calendar .event.card[data-post="{planned}"]')
    slot = page.locator(f'#calendar [data-date="{target}"] .slot').first
    expect(slot).to_be_hidden()  # the slots show only while a card is dragged
    wanted = slot.get_attribute("data-time")
    box = card.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 8)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 20, box["y"] + 30, steps=5)
    expect(slot).to_be_visible()
    goal = slot.bounding_box()
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=8)
    page.mouse.up()
    expect(page.locator(".flash.ok")).to_contain_text(f"稿件 {planned} 已改到 {target} {wanted}")
    expect(page.locator(f'#calendar .event.card[data-post="{planned}"]')).to_have_attribute(
        "data-time", str(wanted)
    )

    # --- every page at 1366×768 and 390×844; phones never scroll sideways -------------
    zhang_pages = {
        "posts": "/posts",
        "compose": "/posts/new",
        "post-planned": f"/posts/{planned}",
        "post-published": f"/posts/{published}",
        "edit": f"/posts/{planned}/edit",
        "audit": f"/posts/{published}/audit",
        "calendar-week": f"/calendar?date={target}",
        "calendar-month": f"/calendar?view=month&date={target}",
        "calendar-agenda": f"/calendar?view=agenda&date={today}",
        "deliveries": "/deliveries",
    }
    # the pages the issue names must fit a phone; the others are checked too
    must_fit = {
        *("posts", "review", "deliveries", "calendar-week", "calendar-month"),
        *("calendar-agenda", "compose", "post-planned", "post-published", "edit", "audit"),
    }
    overflow: dict[str, list[int]] = {}

    def visit(size_name: str, size: dict[str, int], pages: dict[str, str]) -> None:
        page.set_viewport_size(size)
        for name, path in pages.items():
            page.goto(f"{url}{path}")
            expect(page.locator("main h1")).to_be_visible()
            shots(page, f"{size_name}-{name}")
            if size is PHONE:
                widths = page.evaluate(NO_SIDEWAYS)
                if widths[0] > widths[1]:
                    overflow[name] = widths

    visit("desktop", DESKTOP, zhang_pages)
    visit("phone", PHONE, zhang_pages)

    # the phone's menu: folded until 菜单 is pressed
    nav = page.locator("#main-nav")
    expect(nav).to_be_hidden()
    page.locator("label.menu-button").click()
    expect(nav).to_be_visible()
    shots(page, "phone-menu-open")
    # compose on a phone: one column, the preview behind its tab
    page.goto(f"{url}/posts/{planned}/edit")
    expect(page.locator("#compose-form")).to_be_visible()
    expect(page.locator("#live-preview")).to_be_hidden()
    page.locator('label[for="tab-preview"]').click()
    expect(page.locator("#live-preview")).to_be_visible()
    expect(page.locator("#compose-form")).to_be_hidden()
    phone_weibo = page.locator('#live-preview .channel-preview[data-channel="weibo-main"]')
    expect(phone_weibo.locator(".wb-card")).to_be_visible()
    shots(page, "phone-compose-preview-tab")

    # a channel's own version, typed next to its preview, shows in that preview at once
    page.set_viewport_size(DESKTOP)
    page.goto(f"{url}/posts/{planned}/edit")
    preview = page.locator("#live-preview")
    expect(preview).to_have_attribute("data-ready", re.compile(r"^\d+$"))
    weibo = preview.locator('.channel-preview[data-channel="weibo-main"]')
    weibo.locator("details.variant summary").click()
    weibo.locator('input[name="variant_title:weibo-main"]').fill("微博专用标题")
    expect(weibo.locator(".wb-text")).to_contain_text("【微博专用标题】")
    wechat = preview.locator('.channel-preview[data-channel="wechat-main"]')
    expect(wechat.locator(".wx-title")).to_contain_text("日历拖动")  # the post's own title
    shots(page, "desktop-compose-variant")
    page.locator('button[name="save"]').click()
    expect(page).to_have_url(f"{url}/posts/{planned}")
    saved = page.locator('.channel-preview[data-channel="weibo-main"] .wb-text')
    expect(saved).to_contain_text("【微博专用标题】")
    sign_out(page, console)

    sign_in(page, console, "li")
    visit("desktop", DESKTOP, {"review": "/review"})
    visit("phone", PHONE, {"review": "/review"})
    page.set_viewport_size(DESKTOP)
    sign_out(page, console)
    sign_in(page, console, "boss")
    visit("desktop", DESKTOP, {"reports": "/reports"})
    visit("phone", PHONE, {"reports": "/reports"})
    page.locator("label.menu-button").click()
    sign_out(page, console)
    visit("desktop", DESKTOP, {"login": "/login"})
    visit("phone", PHONE, {"login": "/login"})

    assert not {k: v for k, v in overflow.items() if k in must_fit}, overflow


# --- issue 16: bulk approve from the review queue, images placed in the body ----------------


def test_bulk_approve_and_inserting_an_image_in_a_real_browser(
    console: Console, page: Any, shots: Any
) -> None:
    import base64

    from crafted_images import real_png

    url = console.url
    sign_in(page, console, "zhang")
    page.goto(f"{url}/posts/new")
    form = page.locator("#compose-form")
    body = form.locator('textarea[name="body"]')
    form.locator('input[name="title"]').fill("图文：七步洗手法")
    form.locator('input[name="link"]').fill(LINK)
    form.locator('input[name="channels"][value="weibo-main"]').check()
    # a picture the body names but nobody attached: shown before submit
    body.fill("开头\n\n![缺图](没有这张.png)")
    preview = page.locator("#live-preview")
    expect(preview.locator("#missing-images")).to_contain_text("没有这张.png")
    body.fill("第一段。\n\n第二段。")
    expect(preview.locator("#missing-images")).to_have_count(0)

    # a chosen file previews at once (an object URL) and its button inserts it at the cursor
    form.locator('input[name="images"]').set_input_files(str(IMAGE))
    chosen = page.locator("#new-images img")
    expect(chosen).to_have_count(1)
    assert chosen.get_attribute("src").startswith("blob:")
    assert chosen.evaluate("img => img.complete && img.naturalWidth") > 0
    body.evaluate("area => area.setSelectionRange(4, 4)")  # after 第一段。
    page.locator("#new-images").get_by_role("button", name="插入正文").click()
    expect(body).to_have_value("第一段。\n\n![handwashing](handwashing.png)\n\n第二段。")

    # a dropped picture uploads (the media store checks it) and inserts itself
    picture = base64.b64encode(real_png(48, 32)).decode()
    body.evaluate("area => area.setSelectionRange(area.value.length, area.value.length)")
    page.evaluate(
        """([data]) => {
          const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
          const drop = new DataTransfer();
          drop.items.add(new File([bytes], "image.png", {type: "image/png"}));
          document.querySelector('#compose-form textarea[name="body"]').dispatchEvent(
            new DragEvent("drop", {dataTransfer: drop, bubbles: true, cancelable: true}));
        }""",
        [picture],
    )
    expect(body).to_have_value(re.compile(r"!\[pasted-[0-9a-f]{8}\]\(pasted-[0-9a-f]{8}\.png\)$"))
    expect(page.locator('#uploaded-images input[name="uploaded"]')).to_have_count(1)
    expect(preview.locator("#missing-images")).to_have_count(0)
    expect(preview.locator(".body-preview img")).to_have_count(2)
    for img in preview.locator(".body-preview img").all():  # the unsaved one from its blob: URL
        expect(img).to_have_js_property("complete", True)
        assert img.evaluate("img => img.naturalWidth") > 0, img.get_attribute("src")
    shots(page, "16-compose-images-in-body")
    page.locator('button[name="submit_now"]').click()
    expect(page).to_have_url(re.compile(rf"^{re.escape(url)}/posts/\d+$"))
    expect(page.locator(".flash.ok").first).to_contain_text("已提交初审")
    expect(page.locator("#post-body img")).to_have_count(2)
    for img in page.locator("#post-body img").all():
        assert img.evaluate("img => img.complete && img.naturalWidth") > 0

    # two more posts in review; li ticks both and approves them at once
    ids = [add_post(console, "--channel", "weibo-main", title=f"批量审核 {n}") for n in (1, 2)]
    for post_id in ids:
        console.cli("--as", "zhang", "post", "submit", str(post_id))
    sign_out(page, console)
    sign_in(page, console, "li")
    page.goto(f"{url}/review")
    level_one = page.locator('section[data-level="1"]')
    for post_id in ids:
        level_one.locator(f'tr[data-post="{post_id}"] input[name="ids"]').check()
    page.locator("#bulk-action").select_option("approve")
    shots(page, "17-review-bulk")
    page.locator("#bulk-go").click()
    expect(page).to_have_url(f"{url}/review")
    expect(page.locator(".flash.ok")).to_contain_text("已通过 2 篇稿件")
    for post_id in ids:
        expect(page.locator(f'section[data-level="2"] tr[data-post="{post_id}"]')).to_have_count(1)
    with console.db() as conn:
        levels = conn.execute(
            f"SELECT review_level FROM posts WHERE id IN ({ids[0]}, {ids[1]})"
        ).fetchall()
    assert [row[0] for row in levels] == [2, 2]
