"""The review form's content hash in a real headless Chromium (issue 13 §1): a reviewer opens
the post, the author changes it meanwhile, and the reviewer's approval is refused on a clear
page with nothing written; the page opened again approves what is there now."""

from __future__ import annotations

import json
from typing import Any

from test_browser_e2e import (  # noqa: F401 — the fixtures
    BODY,
    CHANNELS,
    IMAGE,
    LINK,
    SUMMARY,
    TITLE,
    Console,
    console,
    expect,
    page,
    pytestmark,
    sign_in,
)


def test_an_edit_while_the_reviewer_reads_refuses_the_approval_in_the_browser(
    console: Console,  # noqa: F811
    page: Any,  # noqa: F811
) -> None:
    channels = [arg for name in CHANNELS for arg in ("--channel", name)]
    done = console.cli(
        *("--as", "zhang", "post", "add", "--title", TITLE, "--body", BODY),
        *("--summary", SUMMARY, "--link", LINK, "--image", str(IMAGE), *channels),
    )
    post_id = int(done.stdout.strip())
    console.cli("--as", "zhang", "post", "submit", str(post_id))

    def shown() -> dict:
        return json.loads(console.cli("post", "show", str(post_id), "--json").stdout)

    sign_in(page, console, "li")
    post_url = f"{console.url}/posts/{post_id}"
    page.goto(post_url)
    form = page.locator("#review-box form").first
    expect(form.locator('input[name="content_hash"]')).to_have_value(shown()["content_hash"])
    expect(form.locator('input[name="level"]')).to_have_value("1")
    page.locator('#review-box input[name="comment"]').fill("看过了，没问题")

    # the author changes the body while the page is open
    console.cli("--as", "zhang", "post", "edit", str(post_id), "--body", BODY + "\n\n补充一段。")
    with page.expect_response(
        lambda r: r.url.endswith(f"/posts/{post_id}/approve") and r.request.method == "POST"
    ) as answer:
        page.locator("#approve-post").click()
    assert answer.value.status == 403
    message = page.locator("#error-message")
    expect(message).to_contain_text(f"稿件 {post_id} 在你打开之后被修改了")
    expect(message).to_contain_text("zhang 于")
    expect(message).to_contain_text("本次没有通过任何内容")
    assert shown()["reviews"] == []  # nothing was written

    page.goto(post_url)
    expect(
        page.locator("#review-box form").first.locator('input[name="content_hash"]')
    ).to_have_value(shown()["content_hash"])
    page.locator("#approve-post").click()
    expect(page).to_have_url(post_url)
    expect(page.locator("#post-state")).to_contain_text("终审")
    (review,) = shown()["reviews"]
    assert review["reviewer"] == "li" and review["level_name"] == "初审"
