"""The console's review form is bound to what the reviewer saw (issue 13 §1), levels with
their own roles (§2) and warning words accepted with a reason (§4)."""

from __future__ import annotations

import json
import re
import shutil
from importlib.resources import files
from pathlib import Path

import pytest
from test_console import PASSWORD, Console, _console, submitted_post

from conftest import Workspace, snapshot
from kepubot.cli import cli
from kepubot.config import load_config
from kepubot.web.app import create_app


@pytest.fixture
def console(workspace: Workspace) -> Console:
    return _console(workspace)


def form_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to ``action`` on ``page``."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    assert match, f"no form for {action}"
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', match.group(0)))


def shown(console: Console, post_id: int) -> dict:
    return json.loads(console.workspace.ok("post", "show", str(post_id), "--json"))


def test_the_form_carries_hash_and_level_and_an_edit_meanwhile_refuses(
    console: Console,
) -> None:
    ws = console.workspace
    post_id = submitted_post(ws)
    li = console.client("li")
    page = li.get(f"/posts/{post_id}").text
    fields = form_fields(page, f"/posts/{post_id}/approve")
    assert fields["content_hash"] == shown(console, post_id)["content_hash"]
    assert fields["level"] == "1"
    assert form_fields(page, f"/posts/{post_id}/reject")["content_hash"] == fields["content_hash"]
    # the author changes the post while the reviewer reads it
    ws.ok("post", "edit", str(post_id), "--body", "作者改过的正文。", user="zhang")
    before = snapshot(ws.db)
    response = console.post(li, f"/posts/{post_id}/approve", {**fields, "comment": "looked fine"})
    assert response.status_code == 403
    assert f"稿件 {post_id} 在你打开之后被修改了" in response.text
    assert "zhang 于" in response.text and "本次没有通过任何内容" in response.text
    assert snapshot(ws.db) == before
    response = console.post(li, f"/posts/{post_id}/reject", {**fields, "reason": "数据不对"})
    assert response.status_code == 403 and "本次没有退回任何内容" in response.text
    assert snapshot(ws.db) == before
    # the page opened again approves what is there now
    fresh = form_fields(li.get(f"/posts/{post_id}").text, f"/posts/{post_id}/approve")
    assert console.post(li, f"/posts/{post_id}/approve", fresh).status_code == 303
    assert shown(console, post_id)["review_level"] == 2


def test_two_reviewers_from_the_first_level_queue_one_is_refused(console: Console) -> None:
    """Both open the 初审 queue; the second approval is refused, not recorded as 复审."""
    ws = console.workspace
    post_id = submitted_post(ws)
    li, wang = console.client("li"), console.client("wang")
    forms = [
        form_fields(client.get("/review").text, f"/posts/{post_id}/approve")
        for client in (li, wang)
    ]
    assert all(f["level"] == "1" for f in forms)
    assert console.post(li, f"/posts/{post_id}/approve", forms[0]).status_code == 303
    before = snapshot(ws.db)
    response = console.post(wang, f"/posts/{post_id}/approve", forms[1])
    assert response.status_code == 403
    assert f"稿件 {post_id} 已不在「初审」，而在「复审」（「初审」已由 li 于" in response.text
    assert snapshot(ws.db) == before
    assert [r["reviewer"] for r in shown(console, post_id)["reviews"]] == ["li"]
    # in English on request
    response = console.post(wang, f"/posts/{post_id}/approve?lang=en", forms[1])
    assert "is no longer at level 初审 but at 复审" in response.text


def test_warning_words_are_accepted_with_the_checkbox_and_a_reason(console: Console) -> None:
    ws = console.workspace
    shutil.copy(
        Path(str(files("kepubot") / "data" / "sensitive_words.txt")),
        ws.root / "sensitive_words.txt",
    )
    post_id = ws.add_post("--channel", "news-feed", "--body", "洗手第一步：打湿双手。")
    flask = create_app(load_config(ws.config))  # reads the new list
    fresh = Console(ws, flask)
    # the author submits from the console: it goes through, with the warning shown
    zhang = fresh.client("zhang")
    response = fresh.post(zhang, f"/posts/{post_id}/submit", {}, follow_redirects=True)
    assert response.status_code == 200
    assert "提示词「第一」：正文第 1 行第 3 列（可以提交；审核人须写明理由后接受）" in response.text
    assert shown(fresh, post_id)["state"] == "in_review"
    li = fresh.client("li")
    page = li.get(f"/posts/{post_id}").text
    assert 'id="warning-words"' in page and "提示词「第一」：正文第 1 行第 3 列" in page
    fields = form_fields(page, f"/posts/{post_id}/approve")
    response = fresh.post(li, f"/posts/{post_id}/approve", fields)
    assert (
        response.status_code == 403
        and "提示词「第一」（正文第 1 行第 3 列）尚未接受" in response.text
    )
    response = fresh.post(li, f"/posts/{post_id}/approve", {**fields, "accept_warnings": "1"})
    assert response.status_code == 403 and "请写明接受提示词的理由" in response.text
    response = fresh.post(
        li,
        f"/posts/{post_id}/approve",
        {**fields, "accept_warnings": "1", "accept_reason": "序数，不是广告用语"},
    )
    assert response.status_code == 303
    page = fresh.client("wang").get(f"/posts/{post_id}").text
    assert 'id="warning-words"' not in page  # accepted in this round
    assert 'id="accepted-words"' in page and "序数，不是广告用语" in page
    audit = li.get(f"/posts/{post_id}/audit").text
    assert "post.word_accepted" in audit and "序数，不是广告用语" in audit


def test_an_expert_level_in_the_console(console: Console) -> None:
    ws = console.workspace
    text = ws.config.read_text(encoding="utf-8").replace(
        'levels = ["初审", "复审", "终审"]',
        'levels = ["初审", { name = "科学性审核", role = "expert" }, "终审"]',
    )
    ws.config.write_text(text + '\n[users.dr_liu]\nroles = ["expert"]\n', encoding="utf-8")
    result = ws.runner.invoke(
        cli,
        [
            "--config",
            str(ws.config),
            "--as",
            "root",
            "user",
            "passwd",
            "dr_liu",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    fresh = Console(ws, create_app(load_config(ws.config)))
    post_id = submitted_post(ws)
    ws.ok("post", "approve", str(post_id), user="li")
    expert = fresh.client("dr_liu")
    queue = expert.get("/review")
    assert queue.status_code == 200 and f'data-post="{post_id}"' in queue.text
    page = expert.get(f"/posts/{post_id}").text
    fields = form_fields(page, f"/posts/{post_id}/approve")
    assert fields["level"] == "2"
    # a reviewer is not the expert
    wang = fresh.client("wang")
    response = fresh.post(wang, f"/posts/{post_id}/approve", fields)
    assert (
        response.status_code == 403
        and "审核这一级需要 expert 角色，wang 没有该角色" in response.text
    )
    assert fresh.post(expert, f"/posts/{post_id}/approve", fields).status_code == 303
    assert shown(fresh, post_id)["review_level"] == 3
