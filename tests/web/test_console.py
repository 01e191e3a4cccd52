"""The browser console at the HTTP level: every page, and every refusal (signed out, wrong
role, own post, one level per person, missing CSRF token, script in a post body)."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from backends import connect_db
from flask import Flask
from flask.testing import FlaskClient

from conftest import SAMPLES, SECRETS, Workspace, snapshot
from kepubot.app import App
from kepubot.cli import cli
from kepubot.config import load_config
from kepubot.queue import deliveries
from kepubot.timeutil import utcnow
from kepubot.web.app import create_app

PASSWORD = "correct-horse-9"
# an editor who is also a reviewer (own-post rule), and an admin
EXTRA_USERS = """
[users.liu]
roles = ["editor", "reviewer"]
[users.root]
roles = ["admin"]
"""
USERS = ("zhang", "chen", "li", "wang", "zhao", "ops", "boss", "liu", "root")
SCRIPT_BODY = (
    "正文开始 <script>alert('x')</script>\n\n"
    '<img src="x" onerror="alert(1)">\n\n'
    "[点我](javascript:alert(2)) 以及 <iframe src='https://evil.example'></iframe>"
)


def token_of(page: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


class Console:
    def __init__(self, workspace: Workspace, flask: Flask) -> None:
        self.workspace = workspace
        self.flask = flask

    def client(self, user: str | None = None) -> FlaskClient:
        client = self.flask.test_client()
        if user is not None:
            response = self.sign_in(client, user)
            assert response.status_code == 302, response.text
        return client

    def sign_in(self, client: FlaskClient, user: str, password: str = PASSWORD) -> Any:
        token = token_of(client.get("/login").text)
        return client.post(
            "/login", data={"username": user, "password": password, "csrf_token": token}
        )

    def post(self, client: FlaskClient, path: str, data: dict[str, Any], **kw: Any) -> Any:
        """POST a form with the session's CSRF token, as the page's form would."""
        token = token_of(client.get("/login", follow_redirects=True).text)
        return client.post(path, data={**data, "csrf_token": token}, **kw)

    def save(self, client: FlaskClient, path: str, fields: dict[str, Any]) -> Any:
        """Send the compose form as its page does: multipart, with its hidden channels
        field, and "as soon as approved" unless ``fields`` says when."""
        return self.post(
            client,
            path,
            {"channels_field": "1", "when": "now", **fields},
            content_type="multipart/form-data",
        )

    def app(self) -> App:
        return App(load_config(self.workspace.config))


@pytest.fixture
def console(workspace: Workspace) -> Console:
    return _console(workspace)


def _console(workspace: Workspace) -> Console:
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8") + EXTRA_USERS, encoding="utf-8"
    )
    for name in USERS:
        result = workspace.runner.invoke(
            cli,
            [
                *("--config", str(workspace.config), "--as", "root"),  # the admin sets them
                *("user", "passwd", name, "--password-stdin"),
            ],
            input=PASSWORD + "\n",
        )
        assert result.exit_code == 0, result.output
    return Console(workspace, create_app(load_config(workspace.config)))


def submitted_post(ws: Workspace, *channels: str, user: str = "zhang") -> int:
    args: list[str] = []
    for name in channels or ("news-feed", "weibo-main"):
        args += ["--channel", name]
    post_id = ws.add_post(*args, user=user)
    ws.ok("post", "submit", str(post_id), user=user)
    return post_id


def approved_post(ws: Workspace) -> int:
    post_id = submitted_post(ws)
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


# --- signing in ------------------------------------------------------------------------------

PAGES = [
    "/posts",
    "/posts/new",
    "/posts/1",
    "/posts/1/edit",
    "/posts/1/audit",
    "/review",
    "/calendar",
    "/deliveries",
    "/reports",
    "/reports/download?format=csv",
]
ACTIONS = [
    "/posts/new",
    "/posts/1/edit",
    "/posts/1/submit",
    "/posts/1/approve",
    "/posts/1/reject",
    "/posts/1/schedule",
    "/posts/1/cancel",
    "/preview",
    "/deliveries/1/retry",
    "/deliveries/1/resolve",
]


def test_signed_out_pages_go_to_sign_in_and_actions_are_refused(console: Console) -> None:
    post_id = submitted_post(console.workspace)
    assert post_id == 1
    client = console.client()
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path
    before = snapshot(console.workspace.db)
    for path in ACTIONS:
        response = console.post(client, path, {"comment": "x", "reason": "x"})
        assert response.status_code == 401, path
        assert "请先登录" in response.text
    assert snapshot(console.workspace.db) == before


def test_sign_in_cookie_is_signed_httponly_and_samesite(console: Console) -> None:
    client = console.client()
    response = console.sign_in(client, "zhang")
    assert response.status_code == 302 and response.headers["Location"] == "/posts"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert PASSWORD not in cookie
    # a forged cookie (changed user, same signature) is not a session
    value = cookie.split(";")[0].split("=", 1)[1]
    forged = value.replace(value.split(".")[0], value.split(".")[0][:-2] + "AA")
    other = console.flask.test_client()
    other.set_cookie("kepubot_session", forged)
    assert other.get("/posts").status_code == 302


def test_wrong_password_and_unknown_user_get_the_same_answer(console: Console) -> None:
    client = console.client()
    wrong = console.sign_in(client, "zhang", "not-the-password")
    unknown = console.sign_in(client, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
    assert client.get("/posts").status_code == 302


def test_sign_in_is_rate_limited_per_user_name(console: Console) -> None:
    client = console.client()
    for _ in range(5):
        assert console.sign_in(client, "li", "guess-guess").status_code == 401
    blocked = console.sign_in(client, "li", PASSWORD)  # even the right password, for now
    assert blocked.status_code == 429
    assert "登录失败次数过多" in blocked.text
    assert int(blocked.headers["Retry-After"]) > 0
    # another user is not locked out by li's failures
    assert console.sign_in(console.client(), "wang").status_code == 302
    # after the window the right password works again
    later = create_app(
        load_config(console.workspace.config), clock=lambda: utcnow() + timedelta(minutes=16)
    )
    fresh = Console(console.workspace, later).client()
    assert Console(console.workspace, later).sign_in(fresh, "li").status_code == 302


def test_a_new_password_ends_old_sessions(console: Console) -> None:
    client = console.client("zhang")
    assert client.get("/posts").status_code == 200
    result = console.workspace.runner.invoke(
        cli,
        [
            *("--config", str(console.workspace.config), "--as", "zhang"),
            *("user", "passwd", "zhang", "--password-stdin"),
        ],
        input="another-password-2\n",
    )
    assert result.exit_code == 0
    assert client.get("/posts").status_code == 302


def test_sign_out_needs_csrf_and_ends_the_session(console: Console) -> None:
    client = console.client("zhang")
    assert client.post("/logout").status_code == 400  # no token: refused
    assert client.get("/posts").status_code == 200
    assert console.post(client, "/logout", {}).status_code == 302
    assert client.get("/posts").status_code == 302


def test_passwords_are_stored_only_as_scrypt_hashes(console: Console) -> None:
    raw = b"".join(p.read_bytes() for p in console.workspace.root.glob("kepubot.db*"))
    assert PASSWORD.encode() not in raw
    conn = connect_db(console.workspace.db)
    hashes = [row[0] for row in conn.execute("SELECT hash FROM user_passwords")]
    conn.close()
    assert len(hashes) == len(USERS) and all(h.startswith("scrypt$16384$8$1$") for h in hashes)
    assert len(set(hashes)) == len(hashes)  # salted


def test_redirect_after_sign_in_stays_on_this_site(console: Console) -> None:
    client = console.client()
    token = token_of(client.get("/login").text)
    response = client.post(
        "/login",
        data={
            "user": "zhang",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["Location"] == "/posts"


# --- CSRF --------------------------------------------------------------------------------------


def test_every_action_without_a_csrf_token_is_refused_and_changes_nothing(
    console: Console,
) -> None:
    submitted_post(console.workspace)
    client = console.client("root")
    before = snapshot(console.workspace.db)
    for path in [*ACTIONS, "/login", "/logout"]:
        for data in ({}, {"csrf_token": "forged-token"}):
            response = client.post(path, data={**data, "comment": "x", "reason": "x"})
            assert response.status_code == 400, path
            assert "安全令牌" in response.text
    assert snapshot(console.workspace.db) == before
    # a token from another session does not work either
    other = console.client("root")
    foreign = token_of(other.get("/posts").text)
    assert client.post("/posts/1/cancel", data={"csrf_token": foreign}).status_code == 400


# --- roles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("li", "/posts/new"),  # reviewer cannot write
        ("boss", "/posts/new"),
        ("zhang", "/review"),  # editor cannot review
        ("ops", "/review"),
        ("zhang", "/reports"),  # only managers read reports
        ("li", "/reports"),
        ("ops", "/reports/download?format=xlsx"),
    ],
)
def test_pages_check_the_role(console: Console, user: str, path: str) -> None:
    response = console.client(user).get(path)
    assert response.status_code == 403
    assert "没有权限" in response.text


def test_actions_check_the_role_on_the_server(console: Console) -> None:
    ws = console.workspace
    post_id = submitted_post(ws)
    clients = {user: console.client(user) for user in ("chen", "boss", "li", "zhang")}
    before = snapshot(ws.db)
    # an editor forging the approve form, a manager trying to reject, a reviewer editing
    cases = [
        ("chen", f"/posts/{post_id}/approve", {"comment": "ok"}),
        ("boss", f"/posts/{post_id}/reject", {"reason": "no"}),
        ("li", f"/posts/{post_id}/edit", {"title": "x", "body": "y", "channels_field": "1"}),
        ("li", f"/posts/{post_id}/cancel", {}),
        ("chen", f"/posts/{post_id}/cancel", {}),  # not the author
        ("zhang", "/deliveries/1/retry", {}),
        ("boss", "/deliveries/1/resolve", {"outcome": "not_published"}),
    ]
    for user, path, data in cases:
        response = console.post(clients[user], path, data)
        assert response.status_code == 403, (user, path, response.text)
    assert snapshot(ws.db) == before


def test_the_author_never_reviews_their_own_post(console: Console) -> None:
    ws = console.workspace
    post_id = submitted_post(ws, user="liu")  # liu is editor and reviewer
    client = console.client("liu")
    page = client.get(f"/posts/{post_id}").text
    assert 'id="review-refusal"' in page and "作者不能审核自己的稿件" in page
    queue = client.get("/review").text
    assert f'data-post="{post_id}"' in queue and "作者不能审核自己的稿件" in queue
    before = snapshot(ws.db)
    response = console.post(client, f"/posts/{post_id}/approve", {"comment": "自己批准"})
    assert response.status_code == 403
    assert "作者不能审核自己的稿件" in response.text
    assert snapshot(ws.db) == before
    assert "never reviews their own post" in client.get(f"/posts/{post_id}?lang=en").text


def test_one_person_approves_one_level(console: Console) -> None:
    ws = console.workspace
    post_id = submitted_post(ws)
    li = console.client("li")
    assert console.post(li, f"/posts/{post_id}/approve", {"comment": "初审通过"}).status_code == 303
    page = li.get(f"/posts/{post_id}").text
    assert "li 已在「初审」通过过它；同一人只能审核一篇稿件的一个级别" in page
    before = snapshot(ws.db)
    response = console.post(li, f"/posts/{post_id}/approve", {"comment": "again"})
    assert response.status_code == 403
    assert "同一人只能审核一篇稿件的一个级别" in response.text
    li.get("/posts?lang=en")
    response = console.post(li, f"/posts/{post_id}/approve", {"comment": "again"})
    assert "one person approves at most one level" in response.text
    assert snapshot(ws.db) == before


# --- script in a post body ---------------------------------------------------------------------


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def _no_script(page: str) -> None:
    """Parse the page as a browser would: the only script is the console's own file, no
    element carries an event handler, no link runs JavaScript, no frame is embedded."""
    parser = _Elements()
    parser.feed(page)
    scripts = [attrs.get("src") for tag, attrs in parser.found if tag == "script"]
    # the console's own files only (the calendar page adds its drag-and-drop script)
    assert scripts in ([], ["/static/app.js"], ["/static/app.js", "/static/calendar.js"]), scripts
    for tag, attrs in parser.found:
        assert tag not in ("iframe", "object", "embed"), tag
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            assert not (value or "").strip().lower().startswith("javascript:"), (tag, name)


def test_script_in_a_post_body_never_reaches_a_page(console: Console) -> None:
    ws = console.workspace
    post_id = int(
        ws.ok(
            "post",
            "add",
            "--title",
            "<script>alert('title')</script>标题",
            "--body",
            SCRIPT_BODY,
            "--summary",
            "<b onmouseover=alert(3)>摘要</b>",
            "--channel",
            "news-feed",
            user="zhang",
        ).strip()
    )
    client = console.client("zhang")
    for path in (
        f"/posts/{post_id}",
        "/posts",
        f"/posts/{post_id}/edit",
        f"/posts/{post_id}/audit",
        "/calendar",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        _no_script(response.text)
    page = client.get(f"/posts/{post_id}").text
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;标题" in page  # shown as text
    assert "正文开始" in page
    preview = console.post(
        client,
        "/preview",
        {"title": "t", "body": SCRIPT_BODY, "channels": ["news-feed", "weibo-main"]},
    )
    assert preview.status_code == 200
    _no_script(preview.text)
    assert "正文开始" in preview.text
    # the Content-Security-Policy allows no inline script even if one slipped through
    csp = client.get(f"/posts/{post_id}").headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    )


# --- the pages -----------------------------------------------------------------------------------


def test_compose_with_an_image_then_submit(console: Console) -> None:
    ws = console.workspace
    client = console.client("zhang")
    page = client.get("/posts/new")
    assert page.status_code == 200 and 'name="images"' in page.text
    image = (SAMPLES / "media" / "handwashing.png").read_bytes()
    response = console.save(
        client,
        "/posts/new",
        {
            "title": "冬季流感预防小贴士",
            "body": "## 接种疫苗\n\n每年接种流感疫苗是**最有效**的预防方法。",
            "summary": "流感季节如何保护自己和家人",
            "link": "https://kepu.example.org/articles/flu",
            "tags": "健康，流感 冬季",
            "channels": ["weibo-main", "news-feed"],
            "when": "next",
            "images": (io.BytesIO(image), "洗手步骤.png"),
            "submit_now": "1",
        },
    )
    assert response.status_code in (302, 303), response.text
    post_id = int(response.headers["Location"].rsplit("/", 1)[1])
    shown = ws.ok("post", "show", str(post_id), "--json")
    assert '"state": "in_review"' in shown
    assert '"健康"' in shown and '"流感"' in shown and '"冬季"' in shown
    assert '"next_slot": true' in shown
    assert ('"kind": "image"' in shown and "洗手步骤.png" in shown) or "png" in shown
    assert '"source": "web"' in ws.ok("audit", "--post", str(post_id), "--json")
    page = client.get(f"/posts/{post_id}").text
    assert "审核中" in page and "/media/" in page
    # previews name media by their file names: the Weibo card's first image, the feed item
    assert "<figcaption>洗手步骤.png</figcaption>" in page and "媒体：洗手步骤.png" in page
    media_path = re.search(r'src="(/media/[^"]+)"', page)
    assert media_path is not None
    image_response = client.get(media_path.group(1))
    assert image_response.status_code == 200 and image_response.data == image
    assert client.get("/media/../../kepubot.db").status_code == 404
    assert client.get("/media/ab/notahash.png").status_code == 404


def test_compose_with_bad_input_keeps_what_was_typed(console: Console) -> None:
    ws = console.workspace
    client = console.client("zhang")
    before = snapshot(ws.db)
    response = console.save(
        client,
        "/posts/new",
        {
            "title": "保留我输入的标题",
            "body": "正文内容很重要",
            "link": "not a url",
            "channels": ["news-feed"],
        },
    )
    assert response.status_code == 400
    # the refusal in Chinese (kepubot/web/messages.py), naming the value typed
    assert "not a url" in response.text and "：不是 http(s) 网址；请填写完整地址" in response.text
    assert "not an http(s) URL" not in response.text
    assert "保留我输入的标题" in response.text and "正文内容很重要" in response.text
    assert snapshot(ws.db) == before
    no_channel = console.save(
        client,
        "/posts/new",
        {"title": "t", "body": "b"},
    )
    assert no_channel.status_code == 400 and "no target channel" in no_channel.text
    past = console.save(
        client,
        "/posts/new",
        {
            "title": "t",
            "body": "b",
            "channels": ["news-feed"],
            "when": "at",
            "at": "2001-01-01T08:00",
        },
    )
    assert past.status_code == 400
    assert snapshot(ws.db) == before


def test_edit_changes_the_post_and_a_submitted_problem_is_shown(console: Console) -> None:
    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed")
    client = console.client("zhang")
    form = client.get(f"/posts/{post_id}/edit").text
    assert "勤洗手" in form
    response = console.save(
        client,
        f"/posts/{post_id}/edit",
        {
            "title": "勤洗手（修订）",
            "body": "这是最佳的洗手方法。",  # 最佳 is on the sensitive-word list
            "summary": "s",
            "link": "https://kepu.example.org/articles/0001",
            "tags": "",
            "channels": ["news-feed"],
        },
    )
    assert response.status_code == 303
    page = client.get(f"/posts/{post_id}").text
    assert "勤洗手（修订）" in page
    assert "敏感词「最佳」：正文第 1 行第 3 列" in page  # shown before submitting
    submit = console.post(client, f"/posts/{post_id}/submit", {})
    assert submit.status_code == 403 and "不能提交：敏感词「最佳」" in submit.text
    assert '"state": "draft"' in ws.ok("post", "show", str(post_id), "--json")


def test_live_preview_shows_each_channel_and_its_problems(console: Console) -> None:
    client = console.client("zhang")
    response = console.post(
        client,
        "/preview",
        {
            "title": "标题",
            "body": "第一段**加粗**",
            "link": "",
            "channels": ["weibo-main", "news-feed", "no-such-channel"],
        },
    )
    assert response.status_code == 200
    assert "<strong>加粗</strong>" in response.text
    assert 'data-channel="weibo-main"' in response.text
    assert 'data-channel="news-feed"' in response.text
    assert "no-such-channel" not in response.text
    assert "kepu.example.org" in response.text  # weibo needs a link on its safe domain
    assert console.post(console.client("li"), "/preview", {"body": "x"}).status_code == 403


def test_posts_list_filters_and_search(console: Console) -> None:
    ws = console.workspace
    first = ws.add_post("--channel", "news-feed", "--tag", "健康", title="流感疫苗问答")
    second = ws.add_post(
        "--channel", "weibo-main", "--tag", "天文", title="今晚看流星雨", user="chen"
    )
    ws.ok("post", "submit", str(second), user="chen")
    client = console.client("boss")

    def ids(query: str) -> set[int]:
        response = client.get(f"/posts?{query}")
        assert response.status_code == 200, query
        return {int(x) for x in re.findall(r'data-post="(\d+)"', response.text)}

    assert ids("") == {first, second}
    assert ids("state=in_review") == {second}
    assert ids("state=draft") == {first}
    assert ids("channel=weibo-main") == {second}
    assert ids("author=chen") == {second}
    assert ids("tag=健康") == {first}
    assert ids("q=流星") == {second}
    assert ids("q=%25") == set()  # LIKE wildcards are literal
    today = utcnow().astimezone(console.app().tz).date()
    assert ids(f"since={today}&until={today}") == {first, second}
    assert ids(f"until={today - timedelta(days=1)}") == set()
    bad = client.get("/posts?since=yesterday")
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text
    assert client.get("/posts?state=bogus").status_code == 400


def test_review_queue_per_level_approve_and_reject(console: Console) -> None:
    ws = console.workspace
    first = submitted_post(ws)
    second = submitted_post(ws, "news-feed")
    li = console.client("li")
    queue = li.get("/review").text
    level_one = queue.split('data-level="2"')[0]
    assert f'data-post="{first}"' in level_one and f'data-post="{second}"' in level_one
    assert "初审" in queue and "复审" in queue and "终审" in queue
    response = console.post(
        li, f"/posts/{first}/approve", {"comment": "事实核对无误", "back": "/review"}
    )
    assert response.status_code == 303 and response.headers["Location"] == "/review"
    queue = li.get("/review").text
    level_two = queue.split('data-level="2"')[1].split('data-level="3"')[0]
    assert f'data-post="{first}"' in level_two
    # reject needs a reason
    assert console.post(li, f"/posts/{second}/reject", {"reason": " "}).status_code == 400
    assert (
        console.post(li, f"/posts/{second}/reject", {"reason": "数据来源缺失"}).status_code == 303
    )
    shown = ws.ok("post", "show", str(second), "--json")
    assert '"state": "rejected"' in shown and "数据来源缺失" in shown
    for reviewer in ("wang", "zhao"):
        assert (
            console.post(console.client(reviewer), f"/posts/{first}/approve", {}).status_code == 303
        )
    page = console.client("zhang").get(f"/posts/{first}").text
    assert "已通过" in page and "事实核对无误" in page
    assert "news-feed" in page and "排队中" in page  # deliveries queued


def test_schedule_and_cancel_from_the_post_page(console: Console) -> None:
    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed")
    client = console.client("zhang")
    tomorrow = (utcnow().astimezone(console.app().tz) + timedelta(days=1)).strftime(
        "%Y-%m-%dT09:30"
    )
    assert (
        console.post(
            client, f"/posts/{post_id}/schedule", {"when": "at", "at": tomorrow}
        ).status_code
        == 303
    )
    assert tomorrow.replace("T", " ") in ws.ok("post", "show", str(post_id))
    calendar = client.get(f"/calendar?date={tomorrow[:10]}").text
    assert f"/posts/{post_id}" in calendar and "计划" in calendar
    assert console.post(client, f"/posts/{post_id}/cancel", {}).status_code == 303
    assert '"state": "cancelled"' in ws.ok("post", "show", str(post_id), "--json")
    assert console.post(client, f"/posts/{post_id}/nonsense", {}).status_code == 404


def _fail_one_delivery(console: Console, post_id: int) -> int:
    app = console.app()
    now = utcnow()
    delivery = deliveries.claim_next(app.store.conn(), worker="test", now=now, lease_seconds=60)
    assert delivery is not None and delivery.post_id == post_id
    deliveries.begin_send(
        app.store.conn(), delivery=delivery, worker="test", now=now, lease_seconds=60
    )
    deliveries.record_failed(
        app.store.conn(),
        delivery=delivery,
        worker="test",
        now=now,
        error_kind="permanent",
        error="weibo 20019: repeated content",
    )
    app.close()
    return delivery.id


def test_deliveries_page_and_operator_retry(console: Console) -> None:
    post_id = approved_post(console.workspace)
    delivery_id = _fail_one_delivery(console, post_id)
    ops = console.client("ops")
    page = ops.get("/deliveries?state=failed").text
    assert f'data-delivery="{delivery_id}"' in page and "weibo 20019" in page
    assert "重新排队" in page
    assert "重新排队" not in console.client("boss").get("/deliveries").text  # not an operator
    assert console.post(ops, f"/deliveries/{delivery_id}/retry", {}).status_code == 303
    shown = console.workspace.ok("delivery", "list", "--json")
    assert '"state": "queued"' in shown
    again = console.post(ops, f"/deliveries/{delivery_id}/retry", {})
    assert again.status_code == 403 and "只有失败的任务可以重新排队" in again.text
    assert ops.get("/deliveries?state=nonsense").status_code == 400


def test_operator_resolves_a_delivery_that_needs_attention(console: Console) -> None:
    post_id = approved_post(console.workspace)
    app = console.app()
    now = utcnow()
    delivery = deliveries.claim_next(app.store.conn(), worker="test", now=now, lease_seconds=60)
    assert delivery is not None and delivery.post_id == post_id
    deliveries.begin_send(
        app.store.conn(), delivery=delivery, worker="test", now=now, lease_seconds=60
    )
    deliveries.record_unknown(
        app.store.conn(), delivery=delivery, worker="test", now=now, error="timeout"
    )
    deliveries.record_reconciled(
        app.store.conn(), delivery_id=delivery.id, actor="test", now=now, found=None, decided=False
    )
    app.close()
    ops = console.client("ops")
    assert "需人工处理" in ops.get("/deliveries").text
    missing = console.post(ops, f"/deliveries/{delivery.id}/resolve", {"outcome": "published"})
    assert missing.status_code == 400
    url = "https://weibo.com/1234567890/Abcdefg"
    done = console.post(
        ops, f"/deliveries/{delivery.id}/resolve", {"outcome": "published", "published": url}
    )
    assert done.status_code == 303
    assert url in ops.get(f"/posts/{post_id}").text


def test_calendar_week_and_month(console: Console) -> None:
    post_id = approved_post(console.workspace)
    client = console.client("li")
    today = utcnow().astimezone(console.app().tz).date()
    week = client.get("/calendar")
    assert week.status_code == 200
    assert f'data-day="{today}"' in week.text and f"/posts/{post_id}" in week.text
    assert week.text.count("data-day=") == 7
    month = client.get(f"/calendar?view=month&date={today}")
    assert month.status_code == 200 and month.text.count("data-day=") >= 28
    assert "news-feed" in month.text
    only = client.get("/calendar?channel=weibo-main").text
    assert "weibo-main" in only
    assert client.get("/calendar?view=year").status_code == 400


def _publish_with_metrics(console: Console, post_id: int) -> None:
    app = console.app()
    now = utcnow()
    while delivery := deliveries.claim_next(
        app.store.conn(), worker="t", now=now, lease_seconds=60
    ):
        deliveries.begin_send(
            app.store.conn(), delivery=delivery, worker="t", now=now, lease_seconds=60
        )
        deliveries.record_published(
            app.store.conn(),
            delivery=delivery,
            worker="t",
            now=now,
            remote_id=f"r{delivery.id}",
            remote_url=f"https://example.org/p/{delivery.id}",
        )
    from kepubot.models import MetricSnapshot
    from kepubot.queue import metrics

    for d in deliveries.for_post(app.store.conn(), post_id):
        metrics.store(
            app.store.conn(),
            d.id,
            MetricSnapshot(views=1000, likes=50, comments=5, shares=3, favorites=2),
            now=now,
            next_at=None,
            step=1,
        )
    app.close()


def test_reports_page_and_downloads(console: Console) -> None:
    post_id = approved_post(console.workspace)
    _publish_with_metrics(console, post_id)
    boss = console.client("boss")
    page = boss.get("/reports")
    assert page.status_code == 200
    assert "勤洗手" in page.text and "<svg" in page.text
    today = utcnow().astimezone(console.app().tz).date()
    since = today - timedelta(days=30)
    picked = boss.get(f"/reports?since={since}&until={today}&channel=news-feed").text
    assert str(since) in picked and "news-feed" in picked
    csv = boss.get(f"/reports/download?format=csv&section=top_posts&since={since}&until={today}")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    assert csv.data.startswith(b"\xef\xbb\xbf") and "勤洗手".encode() in csv.data
    assert "attachment" in csv.headers["Content-Disposition"]
    # without a section: a zip, one CSV per section (issue 16)
    bundle = boss.get(f"/reports/download?format=csv&since={since}&until={today}")
    assert bundle.mimetype == "application/zip" and bundle.data[:2] == b"PK"
    assert ".zip" in bundle.headers["Content-Disposition"]
    xlsx = boss.get("/reports/download?format=xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"
    html = boss.get("/reports/download?format=html")
    assert html.status_code == 200 and html.data.startswith(b"<!DOCTYPE html>")
    assert boss.get("/reports/download?format=pdf").status_code == 400
    assert boss.get("/reports?since=last-week").status_code == 400
    english = boss.get("/reports?lang=en").text
    assert "Engagement" in english or "engagement" in english


def test_audit_trail_of_a_post(console: Console) -> None:
    post_id = approved_post(console.workspace)
    page = console.client("zhang").get(f"/posts/{post_id}/audit")
    assert page.status_code == 200
    for action in ("post.created", "post.submitted", "post.approved_level", "post.approved"):
        assert action in page.text
    assert console.client("zhang").get("/posts/999/audit").status_code == 404


def test_english_on_request_chinese_by_default(console: Console) -> None:
    client = console.client("zhang")
    assert "稿件" in client.get("/posts").text
    english = client.get("/posts?lang=en").text
    assert "Posts" in english and "Sign out" in english
    assert "Sign out" in client.get("/calendar").text  # the choice sticks to the session


def test_no_secret_is_rendered_on_any_page(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the robot and webhook channels too: a WeCom key and a signing secret
    monkeypatch.setenv("KEPUBOT_TEST_CMS_SECRET", "cms-signing-SECRET-6666")
    monkeypatch.setenv("KEPUBOT_TEST_WECOM_KEY", "wecom-key-SECRET-7777")
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8")
        + """
[channels.cms]
type = "webhook"
url = "https://cms.example.org/hook"
secret = "${KEPUBOT_TEST_CMS_SECRET}"

[channels.staff]
type = "wecom"
webhook_key = "${KEPUBOT_TEST_WECOM_KEY}"
""",
        encoding="utf-8",
    )
    console = _console(workspace)
    secrets = [*SECRETS.values(), "cms-signing-SECRET-6666", "wecom-key-SECRET-7777"]
    post_id = approved_post(console.workspace)
    ws = console.workspace
    everywhere = ws.add_post("--channel", "cms", "--channel", "staff", "--channel", "news-feed")
    _publish_with_metrics(console, post_id)
    pages = [
        "/posts",
        f"/posts/{post_id}",
        f"/posts/{post_id}/audit",
        "/calendar",
        "/calendar?view=month",
        "/deliveries",
        "/reports",
        "/reports/download?format=csv",
        "/reports/download?format=html",
        "/review",
        "/posts/new",
    ]
    pages += [f"/posts/{everywhere}", f"/posts/{everywhere}/edit"]
    client = console.client("root")
    preview = console.post(
        client, "/preview", {"title": "t", "body": "b", "channels": ["cms", "staff", "weibo-main"]}
    )
    assert preview.status_code == 200 and 'data-channel="staff"' in preview.text
    for value in secrets:
        assert value.encode() not in preview.data
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        for value in secrets:
            assert value.encode() not in response.data, (path, value)
        assert PASSWORD.encode() not in response.data
    key_file = Path(console.workspace.root / "web_secret.key")
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert key_file.read_text().strip().encode() not in client.get("/posts").data


def test_security_headers(console: Console) -> None:
    response = console.client("zhang").get("/posts")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_post_is_a_clear_404(console: Console) -> None:
    response = console.client("zhang").get("/posts/4242")
    assert response.status_code == 404
    assert "稿件 4242 不存在" in response.text
    assert "Traceback" not in response.text


def test_edit_to_as_soon_as_approved_drops_an_earlier_time(console: Console) -> None:
    ws = console.workspace
    post_id = ws.add_post("--channel", "news-feed", "--next-slot")
    client = console.client("zhang")
    form = client.get(f"/posts/{post_id}/edit").text
    assert 'value="next" checked' in form
    fields = {
        "title": "勤洗手",
        "body": "用流动水和肥皂洗手。",
        "summary": "",
        "link": "https://kepu.example.org/articles/0001",
        "tags": "",
        "channels": ["news-feed"],
        "when": "now",  # as soon as approved: the earlier next-slot choice goes
    }
    response = console.save(client, f"/posts/{post_id}/edit", fields)
    assert response.status_code == 303
    shown = ws.ok("post", "show", str(post_id), "--json")
    assert '"next_slot": false' in shown and '"scheduled_at": null' in shown


def test_passwords_never_reach_the_logs(console: Console, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    client = console.client()
    console.sign_in(client, "zhang", "wrong-secret-guess")
    console.sign_in(client, "zhang")
    console.post(client, "/posts/1/approve", {"comment": "x"})  # refused: not yours to approve
    assert caplog.records  # the console logged something
    for text in (PASSWORD, "wrong-secret-guess"):
        assert text not in caplog.text


def test_language_switch_links_stay_on_the_page_or_go_to_the_list(console: Console) -> None:
    post_id = submitted_post(console.workspace)
    client = console.client("li")
    page = client.get(f"/posts/{post_id}?x=1").text
    assert f'href="/posts/{post_id}?x=1&amp;lang=en"' in page
    console.post(client, f"/posts/{post_id}/approve", {})
    refused = console.post(client, f"/posts/{post_id}/approve", {})
    assert refused.status_code == 403
    assert 'href="/posts?lang=en"' in refused.text  # not the form's address


def test_an_upload_name_cannot_leave_the_upload_folder(console: Console) -> None:
    ws = console.workspace
    client = console.client("zhang")
    image = (SAMPLES / "media" / "handwashing.png").read_bytes()
    response = console.save(
        client,
        "/posts/new",
        {
            "title": "t",
            "body": "b",
            "channels": ["news-feed"],
            "images": (io.BytesIO(image), "../../../escape\\..\\evil.png"),
        },
    )
    assert response.status_code == 303, response.text
    post_id = int(response.headers["Location"].rsplit("/", 1)[1])
    shown = ws.ok("post", "show", str(post_id), "--json")
    names = re.findall(r'"name": "([^"]*)"', shown)
    assert len(names) == 1 and names[0].endswith("evil.png") and "/" not in names[0], names
    assert not list(ws.root.parent.glob("**/escape*"))


def test_a_sign_in_lasts_session_hours(console: Console) -> None:
    client = console.client("zhang")
    assert client.get("/posts").status_code == 200
    # the same cookie presented to the console 13 hours later (session_hours = 12)
    later = create_app(
        load_config(console.workspace.config), clock=lambda: utcnow() + timedelta(hours=13)
    )
    cookie = client.get_cookie("kepubot_session")
    assert cookie is not None
    stale = later.test_client()
    stale.set_cookie("kepubot_session", cookie.value)
    assert stale.get("/posts").status_code == 302
    fresh = console.flask.test_client()
    fresh.set_cookie("kepubot_session", cookie.value)
    assert fresh.get("/posts").status_code == 200


def test_tag_filter_follows_edits_and_combines_with_channel(console: Console) -> None:
    ws = console.workspace
    first = ws.add_post("--channel", "news-feed", "--tag", "健康", title="流感疫苗问答")
    second = ws.add_post("--channel", "weibo-main", "--tag", "健康", title="洗手")
    client = console.client("zhang")

    def ids(query: str) -> set[int]:
        page = client.get(f"/posts?{query}").text
        return {int(x) for x in re.findall(r'data-post="(\d+)"', page)}

    assert ids("tag=健康") == {first, second}
    assert ids("tag=健康&channel=weibo-main") == {second}
    assert ids("tag=健康&state=draft") == {first, second}
    ws.ok("post", "edit", str(first), "--tag", "疫苗", user="zhang")
    assert ids("tag=健康") == {second}
    assert ids("tag=疫苗") == {first}


def test_a_crowded_calendar_counts_per_day_instead_of_cutting_the_list(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kepubot.web.pages import planning

    approved_post(console.workspace)
    approved_post(console.workspace)
    client = console.client("li")
    listed = client.get("/calendar").text
    # one card per post per day, its channels as labels (issue 16), not one per delivery
    assert 'id="calendar-summary"' not in listed and listed.count('class="event card') == 2
    assert listed.count('class="label d-queued"') == 4
    monkeypatch.setattr(planning, "CALENDAR_LIST_LIMIT", 3)
    counted = client.get("/calendar").text
    assert 'id="calendar-summary"' in counted and "本期共 4 条发布任务" in counted
    cells = re.findall(r"(news-feed|weibo-main) · 排队中 <b>(\d+)</b>", counted)
    assert sorted(cells) == [("news-feed", "2"), ("weibo-main", "2")]


def test_console_extras_review_badge_my_posts_counts_and_removing_images(
    console: Console,
) -> None:
    ws = console.workspace
    post_id = submitted_post(ws)
    reviewer = console.client("li").get("/posts").text
    assert re.search(r'id="review-count">1<', reviewer)
    editor = console.client("zhang")
    assert 'href="/posts?author=zhang"' in editor.get("/posts").text
    counts = console.client("ops").get("/deliveries").text
    assert 'id="delivery-counts"' in counts and "需人工处理 0" in counts
    draft = ws.add_post("--channel", "news-feed")
    form = editor.get(f"/posts/{draft}/edit").text
    assert 'name="remove_images"' in form
    response = console.save(
        editor,
        f"/posts/{draft}/edit",
        {
            "title": "勤洗手",
            "body": "b",
            "link": "https://kepu.example.org/articles/0001",
            "channels": ["news-feed"],
            "remove_images": "1",
        },
    )
    assert response.status_code == 303
    shown = ws.ok("post", "show", str(draft), "--json")
    assert '"kind": "image"' not in shown and '"kind": "cover"' in shown
    assert post_id != draft


def test_absurd_numbers_in_addresses_are_clear_answers(console: Console) -> None:
    client = console.client("ops")
    huge = "9" * 30
    assert client.get(f"/posts/{huge}").status_code == 404
    assert client.get(f"/posts/{huge}/audit").status_code == 404
    assert client.get(f"/posts?page={huge}").status_code == 200
    assert client.get(f"/deliveries?page={huge}").status_code == 200
    assert console.post(client, f"/deliveries/{huge}/retry", {}).status_code == 404
    editor = console.client("zhang")
    assert console.post(editor, "/preview", {"post_id": huge, "body": "x"}).status_code == 200


def test_dates_at_the_ends_of_the_calendar_are_clear_answers(console: Console) -> None:
    boss = console.client("boss")
    for query in ("since=0001-01-01&until=0001-01-03", "since=9999-12-20&until=9999-12-31"):
        response = boss.get(f"/reports?{query}")
        assert response.status_code in (200, 400), (query, response.status_code)
    for query in ("date=0001-01-01", "date=9999-12-31", "view=month&date=9999-12-31"):
        response = boss.get(f"/calendar?{query}")
        assert response.status_code in (200, 400), (query, response.status_code)
    assert boss.get("/posts?since=0001-01-01&until=9999-12-31").status_code in (200, 400)


def test_behind_a_trusted_proxy_sign_in_limits_count_the_client(workspace: Workspace) -> None:
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8") + "\n[web]\ntrusted_proxies = 1\n",
        encoding="utf-8",
    )
    console = _console(workspace)
    for i in range(20):  # one client guessing many names from behind the proxy
        client = console.flask.test_client()
        token = token_of(client.get("/login").text)
        client.post(
            "/login",
            data={"username": f"guess{i}", "password": "x", "csrf_token": token},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
    other = console.flask.test_client()
    token = token_of(other.get("/login").text)
    fine = other.post(
        "/login",
        data={"username": "zhang", "password": PASSWORD, "csrf_token": token},
        headers={"X-Forwarded-For": "198.51.100.9"},
    )
    assert fine.status_code == 302  # another client behind the same proxy is not locked out
    blocked = console.flask.test_client()
    token = token_of(blocked.get("/login").text)
    refused = blocked.post(
        "/login",
        data={"username": "zhang", "password": PASSWORD, "csrf_token": token},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    assert refused.status_code == 429


def test_deliveries_page_shows_the_daemons_breakers_and_oldest_overdue(
    console: Console,
) -> None:
    from kepubot.queue import limits, ops

    post_id = approved_post(console.workspace)
    ops_client = console.client("ops")
    page = ops_client.get("/deliveries").text
    assert 'id="no-daemon"' in page  # nobody runs `kepubot run`: say so
    app = console.app()
    now = utcnow()
    ops.heartbeat(app.store.conn(), worker="host:1", host="host", pid=1, now=now, stopped=False)
    limits.record_failure(
        app.store.conn(), "weibo-main", now, kind="rate_limited", reason="429", wait_seconds=120
    )
    app.close()

    def page_at(seconds: float) -> str:
        at = create_app(
            load_config(console.workspace.config), clock=lambda: now + timedelta(seconds=seconds)
        )
        return Console(console.workspace, at).client("ops").get("/deliveries").text

    soon = page_at(10)
    assert 'id="no-daemon"' not in soon and "host:1" in soon  # its heartbeat is fresh
    assert "渠道 weibo-main 已暂停（熔断）" in soon and "429" in soon
    late = page_at(600)
    assert 'id="no-daemon"' in late  # the heartbeat went stale
    assert f"/posts/{post_id}" in late and "分钟" in late  # the oldest overdue delivery
