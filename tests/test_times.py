"""Far-away times (issue 11 item 2): every accepted time lies in 1970..2100 in the configured
zone, every listing survives a stored value it cannot show (shown raw), and migration 10
repairs the values an older version accepted."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from backends import connect_db

from conftest import Workspace
from kepubot.app import App
from kepubot.config import load_config
from kepubot.errors import InvalidInput
from kepubot.queue import audit
from kepubot.timeutil import parse_user_time, show

SHANGHAI = ZoneInfo("Asia/Shanghai")
FAR = ("9999-12-31T23:59:59+00:00", "9999-12-31T23:59:00-12:00", "2101-01-01 00:00")


def approved(ws: Workspace, *extra: str) -> int:
    post_id = ws.add_post("--channel", "news-feed", "--channel", "weibo-main", *extra)
    ws.ok("post", "submit", str(post_id), user="zhang")
    for reviewer in ("li", "wang", "zhao"):
        ws.ok("post", "approve", str(post_id), user=reviewer)
    return post_id


@pytest.mark.parametrize("at", FAR)
def test_schedule_refuses_a_time_out_of_range(workspace: Workspace, at: str) -> None:
    post_id = workspace.add_post("--channel", "news-feed")
    err = workspace.refused("post", "schedule", str(post_id), "--at", at, user="zhang")
    assert "out of range" in err and "2100-12-31" in err and "Asia/Shanghai" in err


@pytest.mark.parametrize("at", FAR)
def test_add_refuses_a_time_out_of_range(workspace: Workspace, at: str) -> None:
    workspace.ok("post", "list")  # the database exists: a refusal must leave it as it was
    workspace.refused(
        "post",
        "add",
        "--title",
        "远期",
        "--body",
        "正文",
        "--channel",
        "news-feed",
        "--at",
        at,
        user="zhang",
        contains="--at",
    )


def test_the_bounds_are_in_the_configured_zone() -> None:
    last = parse_user_time("2100-12-31 23:59:59", SHANGHAI)
    assert last == datetime(2100, 12, 31, 15, 59, 59, tzinfo=UTC)
    # the same instant written in UTC is still 2100 in Shanghai... until it is 2101 there
    parse_user_time("2100-12-31T15:59:59+00:00", SHANGHAI)
    with pytest.raises(InvalidInput, match="out of range"):
        parse_user_time("2100-12-31T16:00:00+00:00", SHANGHAI)
    with pytest.raises(InvalidInput, match="out of range"):
        parse_user_time("1969-12-31 23:59", SHANGHAI)
    with pytest.raises(InvalidInput, match="out of range"):
        parse_user_time("0001-01-01T00:00:00+14:00", SHANGHAI)  # overflows converting to UTC


def test_import_refuses_a_time_out_of_range_naming_file_and_row(
    workspace: Workspace, tmp_path: Path
) -> None:
    csv_file = tmp_path / "posts.csv"
    csv_file.write_text(
        "title,body,channels,at\n"
        "近期,正文一,news-feed,2030-01-01 08:00\n"
        "远期,正文二,news-feed,9999-12-31T23:59:00-12:00\n",
        encoding="utf-8",
    )
    err = workspace.refused("post", "import", str(csv_file), user="zhang")
    assert "posts.csv row 2 (line 3), column at" in err and "out of range" in err
    md = tmp_path / "far.md"
    md.write_text(
        '+++\ntitle = "远期"\nchannels = ["news-feed"]\nat = "9999-12-31 23:59"\n+++\n正文\n',
        encoding="utf-8",
    )
    err = workspace.refused("post", "import", str(md), user="zhang")
    assert "far.md line 4" in err and "out of range" in err


def _store(ws: Workspace, sql: str, *args: object) -> None:
    conn = connect_db(ws.db)
    try:
        with conn:
            conn.execute(sql, args)
    finally:
        conn.close()


@pytest.mark.parametrize("value", ["9999-12-31T23:59:59.000Z", "0001-01-01T00:00:00.000Z"])
def test_listings_show_a_stored_time_they_cannot_convert_raw(
    workspace: Workspace, value: str
) -> None:
    """A value written after migration 10 (by hand, or by an older kepubot): no traceback."""
    workspace.config.write_text(
        workspace.config.read_text(encoding="utf-8").replace(
            'timezone = "Asia/Shanghai"',
            'timezone = "Pacific/Kiritimati"'
            if value.startswith("9")
            else 'timezone = "Etc/GMT+12"',
        ),
        encoding="utf-8",
    )
    post_id = approved(workspace)
    _store(workspace, "UPDATE posts SET scheduled_at = ? WHERE id = ?", value, post_id)
    _store(workspace, "UPDATE deliveries SET due_at = ? WHERE post_id = ?", value, post_id)
    for args in (
        ("post", "list"),
        ("post", "list", "--json"),
        ("post", "show", str(post_id)),
        ("post", "show", str(post_id), "--json"),
        ("delivery", "list"),
        ("delivery", "list", "--json"),
        ("status",),
    ):
        out = workspace.ok(*args)
        if args[0] != "status":
            assert value[:19] in out, (args, out)  # as stored, in UTC
    shown = json.loads(workspace.ok("post", "show", str(post_id), "--json"))
    assert shown["scheduled_at"].startswith(value[:19])


def test_show_never_raises() -> None:
    assert show("9999-12-31T23:59:59.000Z", SHANGHAI) == "9999-12-31T23:59:59.000Z"
    assert show("not a time", SHANGHAI) == "not a time"
    assert show(datetime(9999, 12, 31, 20, tzinfo=UTC), SHANGHAI).startswith("9999-12-31T20")
    assert show("2026-12-01T00:30:00.000Z", SHANGHAI) == "2026-12-01 08:30:00"


def test_migration_10_holds_far_future_rows_and_audits_each(workspace: Workspace) -> None:
    post_id = approved(workspace)
    draft = workspace.add_post("--channel", "news-feed", title="草稿远期")
    _store(
        workspace,
        "UPDATE posts SET scheduled_at = ? WHERE id = ?",
        "9999-12-31T23:59:59.000Z",
        post_id,
    )
    _store(workspace, "UPDATE posts SET scheduled_at = ? WHERE id = ?", "garbage", draft)
    _store(
        workspace,
        "UPDATE deliveries SET due_at = ?, not_before = ? WHERE post_id = ? AND channel = ?",
        "9999-12-31T23:59:59.000Z",
        "9999-12-31T23:59:59.000Z",
        post_id,
        "weibo-main",
    )
    _store(
        workspace,
        "UPDATE deliveries SET due_at = ?, not_before = ? WHERE post_id = ? AND channel = ?",
        "0001-01-01T00:00:00.000Z",
        "0001-01-01T00:00:00.000Z",
        post_id,
        "news-feed",
    )
    # as an older kepubot left it: migration 10 not applied yet
    _store(workspace, "DELETE FROM schema_migrations WHERE version = 10")
    states_before = _states(workspace)
    workspace.ok("post", "list")  # opening the database applies migration 10
    conn = connect_db(workspace.db)
    conn.row_factory = sqlite3.Row
    try:
        assert conn.execute("SELECT 1 FROM schema_migrations WHERE version = 10").fetchone()
        posts = dict(conn.execute("SELECT id, scheduled_at FROM posts").fetchall())
        assert posts[post_id] == "2100-12-31T00:00:00.000Z"
        assert posts[draft] == "2100-12-31T00:00:00.000Z"  # unreadable: held, never sent
        rows = {
            r["channel"]: (r["due_at"], r["not_before"])
            for r in conn.execute("SELECT channel, due_at, not_before FROM deliveries")
        }
        assert rows["weibo-main"] == ("2100-12-31T00:00:00.000Z",) * 2
        # earlier than 1970 stays in the past: a delivery that was due stays due
        assert rows["news-feed"] == ("1970-01-02T00:00:00.000Z",) * 2
        repairs = [
            json.loads(r["detail"])
            for r in conn.execute("SELECT detail FROM audit WHERE action = 'time.repaired'")
        ]
    finally:
        conn.close()
    assert len(repairs) == 6
    assert {r["was"] for r in repairs} == {
        "9999-12-31T23:59:59.000Z",
        "garbage",
        "0001-01-01T00:00:00.000Z",
    }
    assert {r["field"] for r in repairs} == {
        "posts.scheduled_at",
        "deliveries.due_at",
        "deliveries.not_before",
    }
    assert _states(workspace) == states_before  # held, not changed
    assert "2100-12-31" in workspace.ok("post", "show", str(post_id))
    app = App(load_config(workspace.config))
    try:
        assert audit.verify(app.store.conn()).ok  # the repair's audit rows continue the chain
    finally:
        app.close()
    # applied once: opening again repairs nothing more
    workspace.ok("post", "list")
    conn = connect_db(workspace.db)
    try:
        count = conn.execute("SELECT COUNT(*) FROM audit WHERE action = 'time.repaired'").fetchone()
    finally:
        conn.close()
    assert count[0] == 6


def _states(ws: Workspace) -> list[tuple[str, str]]:
    conn = connect_db(ws.db)
    try:
        return conn.execute(
            "SELECT 'post', state FROM posts UNION ALL SELECT channel, state FROM deliveries"
            " ORDER BY 1, 2"
        ).fetchall()
    finally:
        conn.close()


def test_a_time_in_range_is_stored_as_given(workspace: Workspace) -> None:
    post_id = workspace.add_post("--channel", "news-feed")
    workspace.ok("post", "schedule", str(post_id), "--at", "2100-12-31 23:59", user="zhang")
    assert "2100-12-31 23:59:00" in workspace.ok("post", "show", str(post_id))


@pytest.mark.parametrize(
    ("section", "setting", "key"),
    [
        ("[daemon]", "backoff_cap_seconds = 1e12", "daemon.backoff_cap_seconds"),
        ("[daemon]", "overdue_minutes = 1e15", "daemon.overdue_minutes"),
        ("[metrics]", 'cadence = ["1h", "999999999d"]', "metrics.cadence"),
        ("[web]", "session_hours = 1e9", "web.session_hours"),
    ],
)
def test_config_durations_that_would_leave_the_calendar_are_refused(
    workspace: Workspace, section: str, setting: str, key: str
) -> None:
    """A duration is added to the current time: one that would land past what can be stored
    and shown is a config error naming the key, not an OverflowError later."""
    text = workspace.config.read_text(encoding="utf-8")
    if section in text:
        text = text.replace(section, f"{section}\n{setting}", 1)
    else:
        text += f"\n{section}\n{setting}\n"
    workspace.config.write_text(text, encoding="utf-8")
    err = workspace.refused("post", "list")
    assert key in err


@pytest.mark.parametrize("setting", ["min_gap_minutes = 99999999999", "settle_minutes = 1e15"])
def test_channel_durations_that_would_leave_the_calendar_are_refused(
    workspace: Workspace, setting: str
) -> None:
    text = workspace.config.read_text(encoding="utf-8").replace(
        'title = "科普资讯"', f'title = "科普资讯"\n{setting}', 1
    )
    workspace.config.write_text(text, encoding="utf-8")
    err = workspace.refused("post", "list")
    assert f"channels.news-feed.{setting.split()[0]}" in err


def test_an_unreadable_stored_time_is_a_clear_error_not_a_traceback(workspace: Workspace) -> None:
    """Text that is no time at all (written by hand after migration 10): one error line."""
    post_id = workspace.add_post("--channel", "news-feed")
    _store(workspace, "UPDATE posts SET scheduled_at = ? WHERE id = ?", "garbage", post_id)
    for args in (("post", "list"), ("post", "show", str(post_id))):
        result = workspace.run(*args)
        assert result.exit_code == 1, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: a stored time 'garbage'"), lines
    assert show("garbage", SHANGHAI) == "garbage"
