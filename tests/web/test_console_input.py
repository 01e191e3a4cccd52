"""Issue 11 items 5, 7 and 8 through the console: the compose form refuses hostile links and
control characters with the service layer's rules, and report downloads keep formula-like
titles as text."""

from __future__ import annotations

from datetime import timedelta

from test_console import Console, _publish_with_metrics, console  # noqa: F401 — the fixture

from conftest import snapshot
from kepubot.timeutil import utcnow

HOSTILE_TITLE = '=HYPERLINK("http://x","click")'


def test_compose_refuses_a_link_with_quotes_and_angle_brackets(console: Console) -> None:  # noqa: F811
    ws = console.workspace
    client = console.client("zhang")
    before = snapshot(ws.db)
    response = console.save(
        client,
        "/posts/new",
        {
            "title": "标题",
            "body": "正文",
            "link": 'https://kepu.example.org/a"><script>alert(1)</script>',
            "channels": ["news-feed"],
        },
    )
    assert response.status_code == 400
    assert "链接不能包含" in response.text  # the service layer's refusal, in Chinese
    assert "<script>alert(1)" not in response.text  # shown escaped, never as markup
    assert snapshot(ws.db) == before


def test_compose_refuses_control_characters_and_strips_zero_width(console: Console) -> None:  # noqa: F811
    ws = console.workspace
    client = console.client("zhang")
    before = snapshot(ws.db)
    response = console.save(
        client,
        "/posts/new",
        {"title": "标\u202e题", "body": "正文\x1b[2J", "channels": ["news-feed"]},
    )
    assert response.status_code == 400
    assert "U+202E" in response.text and "U+001B" in response.text
    assert "不允许，请删除" in response.text
    assert snapshot(ws.db) == before
    saved = console.save(
        client,
        "/posts/new",
        {"title": "洗\u200b手", "body": "正文\r\n第二行", "channels": ["news-feed"]},
    )
    assert saved.status_code in (302, 303), saved.text
    app = console.app()
    try:
        row = app.store.conn().execute("SELECT title, body FROM posts ORDER BY id DESC").fetchone()
    finally:
        app.close()
    assert (row["title"], row["body"]) == ("洗手", "正文\n第二行")


def test_report_downloads_keep_formula_titles_as_text(console: Console) -> None:  # noqa: F811
    import csv
    import io
    import zipfile

    from openpyxl import load_workbook

    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed", title=HOSTILE_TITLE)
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    _publish_with_metrics(console, post_id)
    boss = console.client("boss")
    today = utcnow().astimezone(console.app().tz).date()
    period = f"since={today - timedelta(days=7)}&until={today}"
    # the CSV download is a zip of one CSV per section (issue 16): the title is in the two
    # top-post sections, as text (a leading quote), and no cell of any file starts a formula
    archive = zipfile.ZipFile(io.BytesIO(boss.get(f"/reports/download?format=csv&{period}").data))
    titled = []
    for name in archive.namelist():
        if not name.endswith(".csv"):
            continue
        rows = list(csv.reader(io.StringIO(archive.read(name).decode("utf-8-sig"))))
        values = [value for row in rows for value in row]
        assert not [v for v in values if v.startswith(("=", "+", "@"))], name
        if "'" + HOSTILE_TITLE in values:
            titled.append(name)
        assert HOSTILE_TITLE not in values, name
    assert sorted(titled) == ["03-top_posts.csv", "04-top_engagement.csv"]
    # one section on its own, as ?section= asks for it, keeps the same protection
    one = boss.get(f"/reports/download?format=csv&section=top_posts&{period}")
    assert one.status_code == 200 and one.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(one.data.decode("utf-8-sig"))))
    assert "'" + HOSTILE_TITLE in [value for row in rows for value in row]
    assert HOSTILE_TITLE not in [value for row in rows for value in row]
    book = load_workbook(io.BytesIO(boss.get(f"/reports/download?format=xlsx&{period}").data))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]
    assert [c.data_type for c in cells if c.value == HOSTILE_TITLE] == ["s", "s"]
