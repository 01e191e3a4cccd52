"""The assisted task page in headless Chromium (issue 14): a person signs in, copies the
title with its button (small JS, no inline script), downloads the pack and confirms with the
published URL; the task leaves the list. A screenshot goes to ``$KEPUBOT_SCREENSHOTS`` or
``test-artifacts/screenshots/``."""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_browser_e2e import CHROMIUM, CHROMIUM_ARGS, REPO, Console, start_console

from conftest import SAMPLES

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is needed")
expect = sync_api.expect
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed"),
]
PASSWORD = "publisher-2024-pass"

CONFIG = textwrap.dedent(
    """
    [kepubot]
    database = "kepubot.db"
    [review]
    levels = ["终审"]
    [users.ed]
    roles = ["editor"]
    [users.rev]
    roles = ["reviewer"]
    [users.pub]
    roles = ["editor"]
    name = "小王"
    [channels.tt]
    type = "assisted"
    platform = "toutiao"
    output_dir = "packs"
    assignees = ["pub"]
    min_gap_minutes = 0
    """
)


@pytest.fixture
def task_console(tmp_path: Path) -> Iterator[tuple[Console, int]]:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "kepubot.toml").write_text(CONFIG, encoding="utf-8")
    console = Console(root, "")
    console.cli("--as", "pub", "user", "passwd", "pub", "--password-stdin", stdin=PASSWORD + "\n")
    added = console.cli(
        *("--as", "ed", "post", "add", "--title", "勤洗手：七步洗手法的科学依据"),
        *("--body", "用流动水和肥皂洗手。\n\n揉搓不少于20秒。", "--summary", "正确洗手"),
        *("--link", "https://kepu.example.org/articles/0001"),
        *("--image", str(SAMPLES / "media" / "handwashing.png"), "--channel", "tt"),
    )
    post_id = added.stdout.strip()
    console.cli("--as", "ed", "post", "submit", post_id)
    console.cli("--as", "rev", "post", "approve", post_id)
    console.cli("--as", "rev", "run", "--once")
    with console.db() as conn:
        (delivery_id,) = conn.execute("SELECT id FROM deliveries").fetchone()
    process = start_console(console)
    try:
        yield console, int(delivery_id)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def test_task_page_copy_download_confirm(task_console: tuple[Console, int]) -> None:
    console, delivery_id = task_console
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(
                viewport={"width": 1280, "height": 900}, locale="zh-CN", accept_downloads=True
            )
            context.set_default_timeout(10_000)
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=console.url)
            page: Any = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{console.url}/login")
            page.fill('input[name="username"]', "pub")
            page.fill('input[name="password"]', PASSWORD)
            page.click('main form button[type="submit"]')
            expect(page.locator("header .user")).to_have_attribute("data-user", "pub")

            page.goto(f"{console.url}/tasks")
            page.locator(f'tr[data-task="{delivery_id}"] a').first.click()
            expect(page.locator("#task-state")).to_contain_text("待人工发布")
            expect(page.locator("#part-title")).to_have_value("勤洗手：七步洗手法的科学依据")
            button = page.locator('button[data-copy="part-title"]')
            button.click()
            expect(button).to_have_text("已复制")
            # the clipboard holds exactly the part (127.0.0.1 is a secure context)
            copied = page.evaluate("() => navigator.clipboard.readText()")
            assert copied == "勤洗手：七步洗手法的科学依据"
            # the body for Toutiao's rich-text editor: copied as formatted text (HTML + plain)
            rich = page.locator('button[data-copy-rich="part-body-rich"]')
            rich.click()
            expect(rich).to_have_text("已复制")  # after the clipboard took it
            kinds = page.evaluate(
                "async () => (await navigator.clipboard.read())[0].types.slice().sort()"
            )
            assert kinds == ["text/html", "text/plain"]
            html = page.evaluate(
                "async () => await (await (await navigator.clipboard.read())[0]"
                ".getType('text/html')).text()"
            )
            assert "<p>用流动水和肥皂洗手。</p>" in html
            with page.expect_download() as info:
                page.get_by_role("link", name="素材包（zip）").click()
            assert info.value.suggested_filename.endswith(".zip")
            shots = Path(
                os.environ.get("KEPUBOT_SCREENSHOTS") or REPO / "test-artifacts" / "screenshots"
            )
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "task-page.png"), full_page=True)

            url = "https://www.toutiao.com/article/7350000000000000001/"
            page.fill('#task-confirm input[name="url"]', url)
            page.locator("#task-confirm button[type=submit]").click()
            expect(page.locator("#task-published-url")).to_have_text(url)
            expect(page.locator("#task-metrics")).to_be_visible()
            page.goto(f"{console.url}/tasks")
            expect(page.locator(f'tr[data-task="{delivery_id}"]')).to_have_count(0)
            assert errors == []
        finally:
            browser.close()
    with console.db() as conn:
        state, remote = conn.execute("SELECT state, remote_url FROM deliveries").fetchone()
    assert (state, remote) == ("published", url)
