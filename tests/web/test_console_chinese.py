"""Chinese everywhere a person reads (issue 16): audit events as sentences in the configured
zone, roles by their Chinese names on 403 pages and in the header."""

from __future__ import annotations

import re

from test_console import Console, _console

from conftest import Workspace


def test_the_audit_page_reads_as_sentences(workspace: Workspace) -> None:
    # li has a display name: the sentence uses it
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8").replace(
            '[users.li]\nroles = ["reviewer"]', '[users.li]\nroles = ["reviewer"]\nname = "李审核"'
        ),
        encoding="utf-8",
    )
    console: Console = _console(workspace)
    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed")
    ws.ok("post", "submit", str(post_id), user="zhang")
    ws.ok("post", "approve", str(post_id), user="li")
    ws.ok("post", "reject", str(post_id), "--reason", "数据来源缺失", user="wang")
    page = console.client("zhang").get(f"/posts/{post_id}/audit").text
    said = [re.sub(r"<[^>]+>", "", s) for s in re.findall(r'<span class="said">(.*?)</span>', page)]
    # "李审核 于 12-05 17:38 通过初审", the time in Asia/Shanghai
    assert any(re.fullmatch(r"李审核 于 \d\d-\d\d \d\d:\d\d 通过初审", s) for s in said), said
    assert any(
        re.fullmatch(r"wang 于 \d\d-\d\d \d\d:\d\d 在复审退回：数据来源缺失", s) for s in said
    )
    assert any("提交审核（第 1 轮）" in s for s in said), said
    english = console.client("zhang").get(f"/posts/{post_id}/audit?lang=en").text
    assert re.search(r"李审核 passed it at 初审 at \d\d-\d\d \d\d:\d\d", english)


def test_a_403_page_names_the_roles_in_chinese(workspace: Workspace) -> None:
    console: Console = _console(workspace)
    zhang = console.client("zhang")
    page = zhang.get("/users")
    assert page.status_code == 403
    assert "需要「管理员」角色" in page.text and "zhang 的角色是：编辑" in page.text
    assert "admin" not in re.sub(r"<[^>]+>", "", page.text.split("<main")[1])
    header = console.client("wang").get("/posts").text
    assert "（主管、审核员）" in header or "（审核员、主管）" in header
