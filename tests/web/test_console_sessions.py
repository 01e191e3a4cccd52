"""Issue 11 items 9, 10, 11 and 19: HEAD is a GET, every other unsafe method needs the CSRF
token, a sign-out ends the session on the server, the cookie key is long enough, and the
command line's role rules are the console's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from backends import connect_db
from test_console import PASSWORD, Console, _console, submitted_post, token_of

from conftest import Workspace, snapshot
from kepubot.cli import cli
from kepubot.config import load_config
from kepubot.errors import ConfigError
from kepubot.timeutil import utcnow
from kepubot.web.app import create_app


@pytest.fixture(name="console")
def console_fixture(workspace: Workspace) -> Console:
    return _console(workspace)


def _count(db, sql: str, *args: object) -> int:
    conn = connect_db(db)
    try:
        return int(conn.execute(sql, args).fetchone()[0])
    finally:
        conn.close()


# --- item 9: HEAD runs as GET, CSRF on every method but GET, HEAD and OPTIONS ------------------


def test_head_with_a_form_body_changes_nothing(console: Console) -> None:
    ws = console.workspace
    post_id = submitted_post(ws)
    client = console.client("zhang")
    before = snapshot(ws.db)
    new = client.head(
        "/posts/new",
        data={"title": "HEAD 建的稿", "body": "正文", "channels": "news-feed", "when": "now"},
    )
    assert new.status_code == 200 and new.data == b""
    edit = client.head(
        f"/posts/{post_id}/edit", data={"title": "HEAD 改的标题", "channels_field": "1"}
    )
    assert edit.status_code == 200 and edit.data == b""
    assert snapshot(ws.db) == before
    assert "HEAD" not in ws.ok("post", "list")


def test_head_login_neither_signs_in_nor_counts_as_a_failure(console: Console) -> None:
    ws = console.workspace
    client = console.client()
    # HEAD with the right password: no sign-in
    response = client.head("/login", data={"username": "zhang", "password": PASSWORD})
    assert response.status_code == 200
    assert client.get("/posts").status_code == 302
    # many HEADs with a wrong password: no failure counted, the real sign-in still works
    for _ in range(8):
        assert (
            client.head("/login", data={"username": "li", "password": "wrong-guess"}).status_code
            == 200
        )
    assert _count(ws.db, "SELECT COUNT(*) FROM sign_in_failures") == 0
    assert console.sign_in(console.client(), "li").status_code == 302


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_need_the_csrf_token(console: Console, method: str) -> None:
    client = console.client("zhang")
    before = snapshot(console.workspace.db)
    response = client.open("/posts/new", method=method, data={"title": "x"})
    assert response.status_code == 400
    assert "安全令牌" in response.text
    # with the token a method the route does not take is a 405, still nothing changed
    token = token_of(client.get("/posts").text)
    response = client.open("/posts/new", method=method, data={"title": "x", "csrf_token": token})
    assert response.status_code == 405
    assert snapshot(console.workspace.db) == before


def test_options_is_answered_without_a_token_and_changes_nothing(console: Console) -> None:
    client = console.client("zhang")
    before = snapshot(console.workspace.db)
    response = client.options("/posts/new", data={"title": "x", "body": "y"})
    assert response.status_code == 200
    assert "POST" in response.headers["Allow"]
    assert snapshot(console.workspace.db) == before


# --- item 10: sessions end on the server ------------------------------------------------------


def test_a_copied_cookie_is_worthless_after_sign_out(console: Console) -> None:
    client = console.client("zhang")
    cookie = client.get_cookie("kepubot_session")
    assert cookie is not None
    copy = console.flask.test_client()
    copy.set_cookie("kepubot_session", cookie.value)
    assert copy.get("/posts").status_code == 200
    assert console.post(client, "/logout", {}).status_code == 302
    assert copy.get("/posts").status_code == 302  # the copy no longer signs anyone in
    assert console.post(copy, "/posts/1/cancel", {}).status_code in (400, 401)
    assert "user.signed_out" in console.workspace.ok("audit", "--json")


def test_admin_signs_a_user_out_everywhere_from_the_console(console: Console) -> None:
    ws = console.workspace
    first, second = console.client("zhang"), console.client("zhang")
    other = console.client("li")
    admin = console.client("root")
    page = admin.get("/users")
    assert page.status_code == 200 and 'data-user="zhang"' in page.text
    assert "全部退出登录" in page.text
    response = console.post(admin, "/users/zhang/signout", {}, follow_redirects=True)
    assert response.status_code == 200 and "结束 2 个会话" in response.text
    assert first.get("/posts").status_code == 302
    assert second.get("/posts").status_code == 302
    assert other.get("/posts").status_code == 200  # only zhang's sessions ended
    assert admin.get("/posts").status_code == 200
    assert "user.signed_out_everywhere" in ws.ok("audit", "--json")
    # zhang signs in again as usual
    assert console.sign_in(console.client(), "zhang").status_code == 302


def test_only_admins_sign_others_out_in_the_console(console: Console) -> None:
    victim = console.client("li")
    editor = console.client("zhang")
    assert editor.get("/users").status_code == 403
    before = snapshot(console.workspace.db)
    assert console.post(editor, "/users/li/signout", {}).status_code == 403
    assert snapshot(console.workspace.db) == before
    assert victim.get("/posts").status_code == 200
    admin = console.client("root")
    assert console.post(admin, "/users/nobody/signout", {}).status_code == 404


def test_user_signout_command_ends_every_session(console: Console) -> None:
    ws = console.workspace
    client = console.client("wang")
    assert client.get("/posts").status_code == 200
    # not an admin: refused, the session lives on
    ws.refused("user", "signout", "wang", user="zhang", contains="admin")
    assert client.get("/posts").status_code == 200
    out = ws.ok("user", "signout", "wang", user="root")
    assert "wang" in out and "1" in out
    assert client.get("/posts").status_code == 302
    # a user may end their own sessions
    mine = console.client("li")
    ws.ok("user", "signout", "li", user="li")
    assert mine.get("/posts").status_code == 302
    ws.refused("user", "signout", "nobody", user="root", contains="not configured")


def test_a_new_password_set_by_an_admin_ends_sessions(console: Console) -> None:
    client = console.client("chen")
    result = console.workspace.runner.invoke(
        cli,
        [
            *("--config", str(console.workspace.config), "--as", "root"),
            *("user", "passwd", "chen", "--password-stdin"),
        ],
        input="brand-new-password\n",
    )
    assert result.exit_code == 0, result.output
    assert client.get("/posts").status_code == 302


def test_a_shorter_session_hours_applies_to_running_sessions(console: Console) -> None:
    client = console.client("zhang")
    cookie = client.get_cookie("kepubot_session")
    assert cookie is not None
    ws = console.workspace
    ws.config.write_text(
        ws.config.read_text(encoding="utf-8") + "\n[web]\nsession_hours = 1\n", encoding="utf-8"
    )
    later = create_app(load_config(ws.config), clock=lambda: utcnow() + timedelta(hours=2))
    stale = later.test_client()
    stale.set_cookie("kepubot_session", cookie.value)
    assert stale.get("/posts").status_code == 302


def test_sessions_are_stored_only_as_hashes(console: Console) -> None:
    client = console.client("zhang")
    cookie = client.get_cookie("kepubot_session")
    assert cookie is not None
    conn = connect_db(console.workspace.db)
    rows = conn.execute('SELECT token_hash, "user" FROM console_sessions').fetchall()
    conn.close()
    assert ("zhang" in {r[1] for r in rows}) and all(len(r[0]) == 64 for r in rows)
    from itsdangerous import URLSafeTimedSerializer

    # the token inside the signed cookie is not what the database holds
    data = URLSafeTimedSerializer(
        console.flask.secret_key,
        salt="cookie-session",
        signer_kwargs={"key_derivation": "hmac", "digest_method": "sha1"},
    ).loads(cookie.value)
    assert data["sid"] not in {r[0] for r in rows}


# --- item 11: the cookie key is at least 32 bytes ----------------------------------------------


def _with_secret(ws: Workspace, value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEPUBOT_WEB_SECRET", value)
    ws.config.write_text(
        ws.config.read_text(encoding="utf-8").replace(
            "[users.zhang]", '[web]\nsecret_key = "${KEPUBOT_WEB_SECRET}"\n\n[users.zhang]'
        ),
        encoding="utf-8",
    )


def test_a_short_secret_key_is_a_config_error(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    _with_secret(workspace, "x", monkeypatch)
    with pytest.raises(ConfigError, match=r"web\.secret_key has 1 bytes; it needs at least 32"):
        create_app(load_config(workspace.config))
    result = workspace.run("web", "--port", "0")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "web.secret_key" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_long_secret_key_and_the_generated_key_file_are_accepted(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "k" * 32
    _with_secret(workspace, key, monkeypatch)
    assert create_app(load_config(workspace.config)).secret_key == key.encode()


def test_the_generated_key_file_holds_32_bytes(workspace: Workspace) -> None:
    flask = create_app(load_config(workspace.config))
    assert isinstance(flask.secret_key, bytes) and len(flask.secret_key) >= 32
    # a key file cut short by hand is refused, naming the file
    (workspace.root / "web_secret.key").write_text("ab" * 16, encoding="ascii")
    with pytest.raises(ConfigError, match=r"web_secret\.key holds a 16-byte key"):
        create_app(load_config(workspace.config))


# --- item 19: the command line's role rules are the console's ---------------------------------


def test_report_needs_the_manager_role_on_the_command_line(workspace: Workspace) -> None:
    workspace.ok("post", "list")
    workspace.refused("report", user="zhang", contains="reading reports needs the manager role")
    workspace.refused("report", user="nobody", contains="not configured")
    assert "总计" in workspace.ok("report", user="boss") or workspace.ok("report", user="boss")
    workspace.ok("report", "--format", "json", user="wang")


def test_passwd_for_another_user_needs_admin(workspace: Workspace) -> None:
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8") + '\n[users.root]\nroles = ["admin"]\n',
        encoding="utf-8",
    )
    workspace.ok("post", "list")

    def passwd(actor: str, name: str) -> object:
        return workspace.runner.invoke(
            cli,
            [
                *("--config", str(workspace.config), "--lang", "en", "--as", actor),
                *("user", "passwd", name, "--password-stdin"),
            ],
            input="a-good-password\n",
        )

    before = snapshot(workspace.db)
    for actor, message in (
        ("zhang", "needs the admin role"),
        ("boss", "needs the admin role"),
        ("nobody", "'nobody' is not configured"),
    ):
        result = passwd(actor, "li")
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith("error: ") and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert snapshot(workspace.db) == before
    assert passwd("zhang", "zhang").exit_code == 0  # their own
    assert passwd("root", "li").exit_code == 0  # an admin, for anyone
    users = {u["name"]: u["password_set"] for u in _users(workspace)}
    assert users["zhang"] and users["li"] and not users["wang"]


def _users(ws: Workspace) -> list[dict[str, object]]:
    import json

    return json.loads(ws.ok("user", "list", "--json"))
