"""The console's part of 三校 and sources: findings in the live preview and on the review page,
one checkbox per finding at the final level, and the repeatable sources field."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from test_console import Console, _console

from conftest import Workspace

DATA = Path(__file__).resolve().parents[2] / "kepubot" / "data"
SLOPPY = "勤洗手能预防疾病,我们要再接再励。\n洗手時间不少于20秒。"
WHO = "https://www.who.int/zh/news-room/fact-sheets/detail/influenza-(seasonal)"


@pytest.fixture
def console(workspace: Workspace) -> Console:
    shutil.copy(DATA / "misused_words.txt", workspace.root / "misused_words.txt")
    config = workspace.config.read_text(encoding="utf-8").replace(
        "[review]\n",
        '[review]\nmisused_words = "misused_words.txt"\n'
        'sources_required_for_tags = ["健康"]\nauthoritative_domains = ["who.int"]\n',
        1,
    )
    workspace.config.write_text(config, encoding="utf-8")
    return _console(workspace)


def test_live_preview_lists_findings_with_line_and_column(console: Console) -> None:
    client = console.client("zhang")
    page = console.post(
        client,
        "/preview",
        {"title": "洗手", "body": SLOPPY, "channels": "news-feed", "channels_field": "1"},
    ).text
    assert 'id="proofreading"' in page
    assert "正文 1:9：半角标点「,」" in page
    assert "正文 1:13：易错词「再接再励」，建议改为「再接再厉」" in page
    assert 'data-line="2" data-column="3"' in page
    assert 'name="ack_finding"' not in page  # the author sees them; only the reviewer ticks


def test_final_reviewer_ticks_each_finding(console: Console) -> None:
    ws = console.workspace
    post_id = int(
        ws.ok(
            "post",
            "add",
            "--title",
            "洗手",
            "--body",
            SLOPPY,
            "--channel",
            "news-feed",
            user="zhang",
        ).strip()
    )
    ws.ok("post", "submit", str(post_id), user="zhang")
    ws.ok("post", "approve", str(post_id), user="li")
    ws.ok("post", "approve", str(post_id), user="wang")
    client = console.client("zhao")
    page = client.get(f"/posts/{post_id}").text
    keys = sorted(set(re.findall(r'name="ack_finding" value="([0-9a-f]+)"', page)))
    assert len(keys) == 3
    form = {"content_hash": _hash(ws, post_id), "level": "3"}
    # one left unticked: refused, nothing approved
    response = console.post(client, f"/posts/{post_id}/approve", {**form, "ack_finding": keys[:2]})
    assert response.status_code in (400, 403, 409), response.status_code
    assert _state(ws, post_id) == "in_review"
    assert "校对提示未确认：正文 2:3：繁简混用「時」，建议改为「时」" in response.text
    response = console.post(client, f"/posts/{post_id}/approve", {**form, "ack_finding": keys})
    assert response.status_code == 303, response.text
    assert _state(ws, post_id) == "approved"
    history = json.loads(ws.ok("audit", "--post", str(post_id), "--json"))
    final = next(row for row in history if row["action"] == "post.approved")
    assert len(final["detail"]["proofreading_acknowledged"]) == 3


def test_sources_field_saves_and_the_post_page_shows_them(console: Console) -> None:
    client = console.client("zhang")
    response = console.save(
        client,
        "/posts/new",
        {
            "title": "流感季如何保护自己",
            "body": "接种流感疫苗是预防流感最有效的手段。",
            "tags": "健康",
            "channels": "news-feed",
            "sources_field": "1",
            "sources": [f"世卫组织：季节性流感|{WHO}", "", "试验|doi:10.1056/NEJMoa2034577"],
            "submit_now": "1",
        },
    )
    assert response.status_code == 303, response.text
    post_id = int(response.headers["Location"].rstrip("/").rsplit("/", 1)[-1])
    shown = json.loads(console.workspace.ok("post", "show", str(post_id), "--json"))
    assert shown["sources"] == [
        {"title": "世卫组织：季节性流感", "url": WHO},
        {"title": "试验", "doi": "10.1056/NEJMoa2034577"},
    ]
    assert shown["state"] == "in_review"  # the authoritative source let it be submitted
    page = console.client("li").get(f"/posts/{post_id}").text
    assert 'id="post-sources"' in page and f'href="{WHO}"' in page
    assert 'href="https://doi.org/10.1056/NEJMoa2034577"' in page
    # a bad one is refused on the compose page, naming the field
    response = console.save(
        client,
        "/posts/new",
        {
            "title": "t",
            "body": "b",
            "channels": "news-feed",
            "sources_field": "1",
            "sources": ["没有分隔符"],
        },
    )
    assert response.status_code == 400 and "参考资料" in response.text


def _hash(ws: Workspace, post_id: int) -> str:
    return str(json.loads(ws.ok("post", "show", str(post_id), "--json"))["content_hash"])


def _state(ws: Workspace, post_id: int) -> str:
    return str(json.loads(ws.ok("post", "show", str(post_id), "--json"))["state"])


def test_refusals_read_in_chinese() -> None:
    from kepubot.web.messages import translate

    post = (
        "post 3 cannot be submitted: the tag 健康 needs at least one source from an"
        " authoritative domain or a DOI; it has no sources; add one with --source"
        " 标题|https://… (authoritative domains: see [review] authoritative_domains)"
    )
    assert translate(post, "zh").startswith("稿件 3 不能提交：标签「健康」需要至少一条")
    shape = (
        "参考资料 '没有分隔符': no '|' between the title and the link; write it as 标题|https://…"
    )
    assert "标题和链接之间缺少「|」" in translate(shape, "zh")
