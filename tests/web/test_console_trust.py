"""Console findings of issue 11: sign-in failures render as HTML pages; a stored time the
console cannot show is shown raw instead of breaking the page."""

from __future__ import annotations

from html.parser import HTMLParser

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
