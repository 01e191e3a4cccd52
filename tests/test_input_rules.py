"""Issue 11 items 7 and 8: links must be http(s) URLs without quotes, angle brackets or
whitespace, and text may not hold control or text-direction characters — refused with one
`error:` line naming the field and position, at every entry point (post add, post edit,
CSV and Markdown import, per-channel variants; the console is in tests/web)."""

from __future__ import annotations

import json

import pytest
from backends import connect_db, on_postgresql

from conftest import Workspace
from kepubot.errors import InvalidInput
from kepubot.services.validate import check_link, text_problems

HOSTILE_LINKS = [
    'https://kepu.example.org/a"><script>alert(1)</script>',
    "https://kepu.example.org/a<b",
    "https://kepu.example.org/a b",
    "https://kepu.example.org/a'onmouseover=alert(1)",
    "javascript:alert(1)",
    "https:///no-host",
    "ftp://kepu.example.org/a",
    "kepu.example.org/a",
]


def add(ws: Workspace, *extra: str, title: str = "标题", body: str = "正文") -> list[str]:
    return [
        "post", "add", "--title", title, "--body", body, "--channel", "news-feed", *extra,
    ]  # fmt: skip


def titles(ws: Workspace) -> list[str]:
    return [p["title"] for p in json.loads(ws.ok("post", "list", "--json"))]


# --- the rules themselves --------------------------------------------------------------------


@pytest.mark.parametrize("link", HOSTILE_LINKS)
def test_check_link_refuses(link: str) -> None:
    with pytest.raises(InvalidInput):
        check_link(link, "--link")


@pytest.mark.parametrize(
    "link",
    [
        "https://kepu.example.org/articles/0001",
        "http://127.0.0.1:8080/a?x=1&y=2#frag",
        "https://科普.中国/文章/1",
        "https://kepu.example.org/a%22b",
    ],
)
def test_check_link_accepts(link: str) -> None:
    assert check_link(f"  {link} ", "--link") == link


def test_text_problems_name_the_character_and_position() -> None:
    (problem,) = text_problems("ab\x07c", "--title")
    assert problem.startswith("--title: U+0007 BEL at character 3 ")
    (problem,) = text_problems("第一行\n第二\u202e行", "--body")
    assert "U+202E RIGHT-TO-LEFT OVERRIDE at character 7 (line 2, column 3)" in problem
    assert text_problems("tab\there\nnew line", "--body") == []
    assert len(text_problems("\x00" * 50, "--body")) == 6  # five, then how many more


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize("link", HOSTILE_LINKS[:4])
def test_post_add_and_edit_refuse_a_hostile_link(workspace: Workspace, link: str) -> None:
    err = workspace.refused(*add(workspace, "--link", link), user="zhang", contains="--link")
    assert len(err.strip().splitlines()) == 1
    post_id = workspace.add_post("--channel", "news-feed")
    workspace.refused("post", "edit", str(post_id), "--link", link, user="zhang", contains="--link")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("响铃\x07标题", "U+0007 BEL at character 3"),
        ("\x1b[31m红色", "U+001B ESC at character 1"),
        ("abc\u202etxt.exe", "U+202E RIGHT-TO-LEFT OVERRIDE at character 4"),
        ("隔离\u2066x\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE at character 3"),
        ("c1\x9bcontrol", "U+009B"),
    ],
)
def test_control_and_bidi_characters_are_refused(
    workspace: Workspace, text: str, needle: str
) -> None:
    workspace.refused(*add(workspace, title=text), user="zhang", contains=f"--title: {needle}")
    workspace.refused(*add(workspace, body=text), user="zhang", contains=f"--body: {needle}")
    workspace.refused(
        *add(workspace, "--summary", text), user="zhang", contains=f"--summary: {needle}"
    )
    workspace.refused(*add(workspace, "--tag", text), user="zhang", contains=f"--tag: {needle}")
    post_id = workspace.add_post("--channel", "news-feed")
    workspace.refused("post", "edit", str(post_id), "--title", text, user="zhang", contains=needle)


def test_nul_in_a_body_file_is_refused(workspace: Workspace) -> None:
    body = workspace.root / "body.md"
    body.write_bytes("正文\x00后面".encode())
    workspace.refused(
        "post", "add", "--title", "t", "--body-file", str(body), "--channel", "news-feed",
        user="zhang", contains="U+0000 NUL at character 3",
    )  # fmt: skip


def test_every_problem_is_one_line(workspace: Workspace) -> None:
    err = workspace.refused(
        *add(workspace, "--link", "https://x.org/a b", "--summary", "s\x07", title="t\x1b"),
        user="zhang",
    )
    lines = err.strip().splitlines()
    assert len(lines) == 3, err
    assert [line.split(":")[1].strip() for line in lines] == ["--title", "--summary", "--link"]


def test_zero_width_characters_are_stripped_from_titles_and_tags(workspace: Workspace) -> None:
    out = workspace.ok(
        *add(workspace, "--tag", "健\u200b康", "--json", title="\ufeff洗\u200b手\u200d\u2060"),
        user="zhang",
    )
    post_id = json.loads(out)["id"]
    shown = json.loads(workspace.ok("post", "show", str(post_id), "--json"))
    assert shown["title"] == "洗手"
    assert shown["tags"] == ["健康"]


# --- import -------------------------------------------------------------------------------


def test_csv_import_refuses_links_and_controls_naming_row_and_column(
    workspace: Workspace,
) -> None:
    path = workspace.root / "posts.csv"
    path.write_text(
        "title,body,channels,link\n"
        "ok,正文,news-feed,https://kepu.example.org/1\n"
        '"bad""link",正文,news-feed,"https://kepu.example.org/a""><script>"\n'
        "bell\x07,正文,news-feed,\n",
        encoding="utf-8",
    )
    err = workspace.refused("post", "import", str(path), user="zhang")
    assert f"{path} row 2 (line 3), column link: a link may not hold '\"'" in err
    assert f"{path} row 3 (line 4), column title: U+0007 BEL at character 5" in err
    assert titles(workspace) == []


def test_markdown_import_checks_links_of_variants_too(workspace: Workspace) -> None:
    path = workspace.root / "a.md"
    path.write_text(
        "+++\n"
        'title = "好标题"\n'
        'channels = ["news-feed"]\n'
        'link = "https://kepu.example.org/1"\n'
        "[variants.news-feed]\n"
        'link = "https://kepu.example.org/x<script>"\n'
        "+++\n"
        "正文\n",
        encoding="utf-8",
    )
    err = workspace.refused("post", "import", str(path), user="zhang")
    assert f"{path} line 5, variants variants.news-feed.link: a link may not hold '<'" in err
    path.write_text(
        '+++\ntitle = "好"\nchannels = ["news-feed"]\n[variants.news-feed]\ntitle = "变\u202e体"\n'
        "+++\n正文\n",
        encoding="utf-8",
    )
    workspace.refused(
        "post", "import", str(path), user="zhang",
        contains="variants.news-feed.title: U+202E RIGHT-TO-LEFT OVERRIDE at character 2",
    )  # fmt: skip


def test_windows_line_ends_import_as_plain_newlines(workspace: Workspace) -> None:
    md = workspace.root / "win.md"
    md.write_bytes(
        '+++\r\ntitle = "窗口"\r\nchannels = ["news-feed"]\r\n+++\r\n第一段\r\n\r\n第二段\r\n'.encode()
    )
    csv_file = workspace.root / "win.csv"
    csv_file.write_bytes('title,body,channels\r\n表格,"一行\r\n二行",news-feed\r\n'.encode())
    workspace.ok("post", "import", str(md), user="zhang")
    workspace.ok("post", "import", str(csv_file), user="zhang")
    bodies = {
        p["title"]: json.loads(workspace.ok("post", "show", str(p["id"]), "--json"))["body"]
        for p in json.loads(workspace.ok("post", "list", "--json"))
    }
    assert bodies == {"窗口": "第一段\n\n第二段", "表格": "一行\n二行"}


def test_post_show_and_list_escape_control_characters_stored_earlier(
    workspace: Workspace,
) -> None:
    """A post written before these rules (or edited in the database) cannot drive the
    terminal: `post show` and `post list` print refused characters as \\uXXXX."""

    post_id = workspace.add_post("--channel", "news-feed")
    # PostgreSQL text cannot hold NUL at all (not even by hand); SOH stands in for it there
    nul = "\x01" if on_postgresql() else "\x00"
    conn = connect_db(workspace.db)
    with conn:
        conn.execute(
            "UPDATE posts SET title = ?, body = ? WHERE id = ?",
            ("响铃\x07\x1b[2J标题\u202e", f"正文{nul}\r\n下一行", post_id),
        )
    conn.close()
    shown = workspace.ok("post", "show", str(post_id))
    listed = workspace.ok("post", "list")
    for out in (shown, listed):
        assert not [c for c in out if c in f"{nul}\x07\x1b\u202e\r"], repr(out)
        assert "响铃\\u0007\\u001b[2J标题\\u202e" in out
    assert f"正文\\u{ord(nul):04x}\n下一行" in shown


def test_every_problem_of_a_post_is_its_own_line(workspace: Workspace) -> None:
    """Issue 11 item 17: an empty title, an unknown channel, a bell in the summary and a bad
    link are four problems: four `error:` lines, each naming its field."""
    err = workspace.refused(
        "post", "add", "--title", " ", "--body", "正文", "--summary", "摘要\x07",
        "--link", "https://x.org/<", "--channel", "no-such", user="zhang",
    )  # fmt: skip
    lines = err.strip().splitlines()
    assert len(lines) == 4, err
    assert lines[0].startswith("error: --summary: U+0007 BEL")
    assert lines[1].startswith("error: --link: a link may not hold '<'")
    assert lines[2] == "error: --title: the title is empty; give a title"
    assert lines[3].startswith("error: --channel 'no-such': no such channel")


def test_a_post_stored_with_a_hostile_link_or_control_characters_is_never_approved(
    workspace: Workspace,
) -> None:
    """A post written before these rules (or changed in the database) cannot be submitted
    or approved: the stored values are checked again, each problem on its own line."""

    post_id = workspace.add_post("--channel", "news-feed")
    approved = workspace.add_post("--channel", "news-feed", title="另一篇")
    workspace.ok("post", "submit", str(approved), user="zhang")
    conn = connect_db(workspace.db)
    with conn:
        for pid in (post_id, approved):
            conn.execute(
                "UPDATE posts SET title = ?, link = ? WHERE id = ?",
                ("标题\x1b[2J", 'https://kepu.example.org/a"><script>', pid),
            )
    conn.close()
    err = workspace.refused("post", "submit", str(post_id), user="zhang")
    assert f"post {post_id} cannot be submitted: title: U+001B ESC at character 3" in err
    assert f"post {post_id} cannot be submitted: link: a link may not hold '\"'" in err
    err = workspace.refused("post", "approve", str(approved), user="li")
    assert f"post {approved} cannot be approved: link: a link may not hold" in err
