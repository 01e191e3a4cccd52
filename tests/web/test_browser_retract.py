"""The retract action in a real browser (issue 13 §6): the final level's reviewer opens a
published post, gives a reason, ticks the confirmation, accepts the dialog; the daemon then
deletes the status on the sandbox's Weibo once and the page reads 已撤回."""

from __future__ import annotations

import time
from typing import Any

from test_browser_e2e import (  # noqa: F401 (console and page are fixtures)
    Console,
    add_post,
    console,
    expect,
    page,
    pytestmark,
    sign_in,
)

from platform_env import sandbox_request


def _run_until(console: Console, wanted: set[str], timeout: float = 45) -> dict[str, int]:  # noqa: F811
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = console.delivery_states()
        if states and set(states) <= wanted:
            return states
        console.cli("run", "--once")
        time.sleep(0.3)
    raise AssertionError(f"not settled: {console.delivery_states()}\n{console.log_text()}")


def test_retract_in_a_real_browser(console: Console, page: Any) -> None:  # noqa: F811
    post_id = add_post(console, "--channel", "weibo-main", title="口罩的正确戴法")
    console.cli("--as", "zhang", "post", "submit", str(post_id))
    console.cli("--as", "li", "post", "approve", str(post_id))
    console.cli("--as", "wang", "post", "approve", str(post_id))
    assert _run_until(console, {"published"}) == {"published": 1}

    sign_in(page, console, "zhang")  # the author, an editor: no retract action
    page.goto(f"{console.url}/posts/{post_id}")
    expect(page.locator("#retract-post")).to_have_count(0)
    page.context.clear_cookies()

    sign_in(page, console, "wang")  # 终审
    page.goto(f"{console.url}/posts/{post_id}")
    form = page.locator("#retract-form")
    form.locator('input[name="reason"]').fill("数据有误，已核实")
    form.locator('input[name="confirm"]').check()
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#retract-post").click()
    expect(page.locator("#post-retraction")).to_have_text("撤回中")

    assert _run_until(console, {"retracted"}) == {"retracted": 1}
    page.reload()
    expect(page.locator("#post-retraction")).to_have_text("已撤回")
    ledger = sandbox_request(f"{console.sandbox_url}/_sandbox/ledger?route=weibo")
    assert len(ledger["deleted"]) == 1 and ledger["duplicates"] == []
