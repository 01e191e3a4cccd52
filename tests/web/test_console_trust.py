"""Console findings of issue 11: sign-in failures render as HTML pages; a stored time the
console cannot show is shown raw instead of breaking the page."""

from __future__ import annotations

from html.parser import HTMLParser

from backends import connect_db
from test_console import PASSWORD, Console, console  # noqa: F401 — the fixture


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


def _is_rendered_html(response: object) -> None:
    assert response.mimetype == "text/html", response.headers  # type: ignore[attr-defined]
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"  # type: ignore[attr-defined]
    parser = _Tags()
    parser.feed(response.text)  # type: ignore[attr-defined]
    assert "form" in parser.tags and "input" in parser.tags


def test_a_wrong_password_is_an_html_page(console: Console) -> None:  # noqa: F811
    client = console.client()
    wrong = console.sign_in(client, "zhang", "not-the-password")
    assert wrong.status_code == 401
    _is_rendered_html(wrong)
    assert "用户名或密码错误" in wrong.text
    assert "&lt;form" not in wrong.text


def test_a_lockout_is_an_html_page(console: Console) -> None:  # noqa: F811
    client = console.client()
    for _ in range(5):
        assert console.sign_in(client, "li", "guess-guess").status_code == 401
    blocked = console.sign_in(client, "li", PASSWORD)
    assert blocked.status_code == 429
    _is_rendered_html(blocked)
    assert "登录失败次数过多" in blocked.text


def _approved(console: Console) -> int:  # noqa: F811
    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed", "--channel", "weibo-main")
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


def test_pages_show_a_stored_time_they_cannot_convert_raw(console: Console) -> None:  # noqa: F811
    """9999-12-31 23:59:59 UTC is past year 9999 in Asia/Shanghai: shown raw, never a 500."""
    post_id = _approved(console)
    far = "9999-12-31T23:59:59.000Z"
    conn = connect_db(console.workspace.db)
    with conn:
        conn.execute("UPDATE posts SET scheduled_at = ? WHERE id = ?", (far, post_id))
        conn.execute("UPDATE deliveries SET due_at = ? WHERE post_id = ?", (far, post_id))
    conn.close()
    for user in ("zhang", "ops", "wang", "root"):
        client = console.client(user)
        for path in (
            "/",
            "/posts",
            f"/posts/{post_id}",
            f"/posts/{post_id}/audit",
            "/deliveries",
            "/calendar",
            "/calendar?view=month&date=2100-12-01",
            "/review",
        ):
            response = client.get(path, follow_redirects=True)
            # a page the role may not see is a 403, never a 500
            assert response.status_code in (200, 403), (user, path, response.status_code)
            if user == "root":
                assert response.status_code == 200, (path, response.status_code)
        assert "9999-12-31T23:59:59" in client.get(f"/posts/{post_id}").text
    editor = console.client("root")
    assert editor.get(f"/posts/{post_id}/edit").status_code == 200


def test_console_refuses_a_time_out_of_range(console: Console) -> None:  # noqa: F811
    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed")
    client = console.client("zhang")
    before = ws.ok("post", "show", str(post_id), "--json")
    for at in ("9999-12-31T23:59", "2101-01-01T00:00", "1969-12-31T23:59"):
        response = console.post(client, f"/posts/{post_id}/schedule", {"when": "at", "at": at})
        assert response.status_code == 400, (at, response.status_code)
        assert response.mimetype == "text/html"
        assert "2100-12-31" in response.text
        saved = console.save(
            client,
            "/posts/new",
            {"title": "远期", "body": "正文", "channels": "news-feed", "when": "at", "at": at},
        )
        assert saved.status_code == 400, (at, saved.status_code)
        assert "2100-12-31" in saved.text
    assert ws.ok("post", "show", str(post_id), "--json") == before
    assert '"id": 2' not in ws.ok("post", "list", "--json")
