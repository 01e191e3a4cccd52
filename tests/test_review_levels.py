"""Review levels with their own roles, and separation of duties per review round (issue 13
§2, docs/architecture.md §4.2)."""

from __future__ import annotations

import json

import pytest

from conftest import Workspace

EXPERT_LEVELS = '["初审", { name = "科学性审核", role = "expert" }, "终审"]'
EXPERTS = """
[users.dr_liu]
roles = ["expert"]
[users.dr_he]
roles = ["expert", "reviewer"]
[users.root]
roles = ["admin"]
"""


def with_levels(ws: Workspace, levels: str, extra: str = "") -> None:
    text = ws.config.read_text(encoding="utf-8")
    text = text.replace('levels = ["初审", "复审", "终审"]', f"levels = {levels}")
    ws.config.write_text(text + extra, encoding="utf-8")


def shown(ws: Workspace, post_id: int) -> dict:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))


def submitted(ws: Workspace, user: str = "zhang") -> int:
    post_id = ws.add_post("--channel", "news-feed", user=user)
    ws.ok("post", "submit", str(post_id), user=user)
    return post_id


def test_a_level_reviewed_by_its_own_role(workspace: Workspace) -> None:
    ws = workspace
    with_levels(ws, EXPERT_LEVELS, EXPERTS)
    post_id = submitted(ws)
    assert shown(ws, post_id)["review_levels"] == ["初审", "科学性审核", "终审"]
    # an expert does not review the reviewer's levels, nor a reviewer the expert's
    ws.refused("post", "approve", str(post_id), user="dr_liu", contains="needs the reviewer role")
    ws.ok("post", "approve", str(post_id), user="li")
    err = ws.refused("post", "approve", str(post_id), user="wang")
    assert f"post {post_id}: approved needs the expert role; wang does not have it" in err
    ws.refused("post", "reject", str(post_id), "--reason", "x", user="zhao", contains="expert")
    ws.ok("post", "approve", str(post_id), "--level", "科学性审核", user="dr_liu")
    ws.refused("post", "approve", str(post_id), user="dr_liu", contains="needs the reviewer role")
    ws.ok("post", "approve", str(post_id), user="wang")
    state = shown(ws, post_id)
    assert state["state"] == "approved"
    # an expert told about a post no longer in review hears that, not a role it lacks
    ws.refused(
        "post", "approve", str(post_id), user="dr_liu", contains="only posts in review can be"
    )
    assert [(r["level_name"], r["reviewer"]) for r in state["reviews"]] == [
        ("初审", "li"),
        ("科学性审核", "dr_liu"),
        ("终审", "wang"),
    ]


def test_admin_counts_as_the_custom_role_but_never_reviews_own_post(
    workspace: Workspace,
) -> None:
    ws = workspace
    with_levels(ws, EXPERT_LEVELS, EXPERTS)
    post_id = submitted(ws)
    ws.ok("post", "approve", str(post_id), user="li")
    ws.ok("post", "approve", str(post_id), user="root")
    assert shown(ws, post_id)["review_level"] == 3
    own = submitted(ws, user="root")
    ws.ok("post", "approve", str(own), user="li")
    ws.refused("post", "approve", str(own), user="root", contains="never reviews their own post")


def test_the_config_names_each_level_role(workspace: Workspace) -> None:
    from kepubot.config import load_config

    with_levels(workspace, EXPERT_LEVELS, EXPERTS)
    config = load_config(workspace.config)
    assert config.level_role(2) == "expert" and config.level_role(1) == "reviewer"
    assert config.review_roles == {"reviewer", "expert"}
    assert config.roles_of("dr_liu") == {"expert"}


def test_the_same_people_review_again_after_an_edit(workspace: Workspace) -> None:
    """A team of two reviewers and two levels: after an edit sends the approved post back to
    review, the same two approve it again, each at the other level this time."""
    ws = workspace
    with_levels(ws, '["初审", "终审"]')
    post_id = submitted(ws)
    ws.ok("post", "approve", str(post_id), user="li")
    # within one round one person approves one level
    ws.refused("post", "approve", str(post_id), user="li", contains="at most one level")
    ws.ok("post", "approve", str(post_id), user="wang")
    assert shown(ws, post_id)["state"] == "approved"
    ws.ok("post", "edit", str(post_id), "--body", "修订后的正文，洗手不少于20秒。", user="zhang")
    assert shown(ws, post_id)["state"] == "in_review"
    ws.ok("post", "approve", str(post_id), user="wang")
    ws.refused("post", "approve", str(post_id), user="wang", contains="at most one level")
    ws.ok("post", "approve", str(post_id), user="li")
    state = shown(ws, post_id)
    assert state["state"] == "approved"
    assert [(r["round"], r["level_name"], r["reviewer"]) for r in state["reviews"]] == [
        (1, "初审", "li"),
        (1, "终审", "wang"),
        (2, "初审", "wang"),
        (2, "终审", "li"),
    ]


@pytest.mark.parametrize(
    ("levels", "users", "expected"),
    [
        ('["初审", { name = "" }]', "", "review.levels.1.name: a review level's name must not"),
        (
            '[{ name = "科学性审核", role = "Expert!" }]',
            "",
            "review.levels.0.role: role 'Expert!' must be a lowercase identifier",
        ),
        (
            '[{ name = "初审", role = "editor" }]',
            "",
            "review.levels.0.role: role 'editor' cannot review a level",
        ),
        ('[{ role = "expert" }]', "", "review.levels.0.name: required setting is missing"),
        (
            '[{ name = "科学性审核", rol = "expert" }]',
            "",
            "unknown key 'rol' in [review.levels.0]; did you mean 'role'?",
        ),
        ('["初审", "初审"]', "", "review.levels: review level names must be distinct"),
        (
            '["初审", 5]',
            "",
            'review.levels.1: a review level is a name such as "初审" or a table such as'
            ' { name = "科学性审核", role = "expert" }',
        ),
        ("[]", "", "review.levels:"),
        (
            '["初审", { name = "科学性审核", role = "expert" }]',
            '[users.dr_liu]\nroles = ["expret"]\n',
            "users.dr_liu.roles: unknown role 'expret'; built-in roles are editor, reviewer,"
            " manager, operator, admin; custom roles are those of [review] levels (expert)",
        ),
        (
            '["初审", { name = "科学性审核", role = "expert" }]',
            "",
            "review.levels entry 2 (科学性审核): no user holds role 'expert' (nor admin)",
        ),
        (
            '["初审"]',
            '[users.dr_liu]\nroles = ["expert"]\n',
            "users.dr_liu.roles: unknown role 'expert'; built-in roles are editor, reviewer,"
            " manager, operator, admin; a custom role must be the role of a [review] levels entry",
        ),
    ],
)
def test_bad_level_entries_are_config_errors(
    workspace: Workspace, levels: str, users: str, expected: str
) -> None:
    with_levels(workspace, levels, users)
    result = workspace.run("post", "list", user="zhang")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("error: ") for line in lines), result.stderr
    assert any(expected in line for line in lines), result.stderr
    assert str(workspace.config) in result.stderr


def test_a_plain_list_of_names_keeps_working(workspace: Workspace) -> None:
    from kepubot.config import load_config

    config = load_config(workspace.config)
    assert config.review_levels == ["初审", "复审", "终审"]
    assert [config.level_role(n) for n in (1, 2, 3)] == ["reviewer"] * 3
