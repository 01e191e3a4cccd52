"""The calendar's storage reads (kepubot/queue/calendar.py) on both backends: the two halves of
a period, every filter, a rare tag read from post_tags agreeing with a common tag checked per
delivery, and (SQLite) counts read from the covering indexes of migration 27 alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from backends import on_postgresql, open_db

from conftest import Workspace
from kepubot.queue import calendar
from kepubot.queue.db import transaction
from kepubot.timeutil import to_db

START = datetime(2026, 12, 7, 0, 0, tzinfo=UTC)
END = START + timedelta(days=7)


def _deliveries(ws: Workspace) -> tuple[Any, dict[str, int]]:
    """Three posts (two tagged 疫苗, one by chen) and their deliveries in and around the
    period: published in it, published before it, due in it (queued, failed, cancelled),
    published in it although due before it (it counts where it was published)."""
    posts = {
        "a": ws.add_post("--channel", "news-feed", "--tag", "疫苗", title="甲"),
        "b": ws.add_post("--channel", "news-feed", "--tag", "疫苗", user="chen", title="乙"),
        "c": ws.add_post("--channel", "news-feed", "--tag", "健康", title="丙"),
    }
    conn = open_db(ws.db)
    inside, before = START + timedelta(days=1, hours=3), START - timedelta(days=2)
    rows = [
        # post, channel, state, due_at, published_at
        ("a", "news-feed", "published", before, inside),
        ("a", "weibo-main", "published", before, before),  # published before the period
        ("b", "news-feed", "queued", inside, None),
        ("b", "weibo-main", "failed", inside + timedelta(hours=30), None),
        ("c", "news-feed", "cancelled", inside, None),  # never on the calendar
        ("c", "weibo-main", "queued", END, None),  # due at the end: the next period
        ("c", "wechat-main", "published", inside, inside + timedelta(hours=1)),
    ]
    with transaction(conn):
        for key, channel, state, due, published in rows:
            conn.execute(
                "INSERT INTO deliveries (post_id, channel, state, due_at, not_before,"
                " content_hash, published_at, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, 'h', ?, ?, ?)",
                (
                    posts[key],
                    channel,
                    state,
                    to_db(due),
                    to_db(due),
                    to_db(published) if published else None,
                    to_db(before),
                    to_db(before),
                ),
            )
    return conn, posts


def _shown(conn: Any, **filters: Any) -> set[tuple[int, str, str]]:
    rows = calendar.entries(conn, START, END, limit=100, **filters)
    assert rows is not None
    return {(r["post_id"], r["channel"], r["state"]) for r in rows}


def _counted(conn: Any, **filters: Any) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for _bucket, channel, state, n in calendar.counts(conn, START, END, width=13, **filters):
        totals[channel, state] = totals.get((channel, state), 0) + n
    return totals


def test_a_period_and_its_filters_listed_and_counted_alike(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn, p = _deliveries(workspace)
    a, b, c = p["a"], p["b"], p["c"]
    everything = {
        (a, "news-feed", "published"),
        (b, "news-feed", "queued"),
        (b, "weibo-main", "failed"),
        (c, "wechat-main", "published"),
    }
    cases: list[tuple[dict[str, Any], set[tuple[int, str, str]]]] = [
        ({}, everything),
        ({"channel": "news-feed"}, {(a, "news-feed", "published"), (b, "news-feed", "queued")}),
        ({"state": "published"}, {(a, "news-feed", "published"), (c, "wechat-main", "published")}),
        ({"state": "failed"}, {(b, "weibo-main", "failed")}),
        ({"state": "cancelled"}, set()),
        ({"author": "chen"}, {(b, "news-feed", "queued"), (b, "weibo-main", "failed")}),
        ({"tag": "疫苗"}, everything - {(c, "wechat-main", "published")}),
        ({"tag": "疫苗", "state": "queued"}, {(b, "news-feed", "queued")}),
        ({"tag": "健康", "channel": "wechat-main"}, {(c, "wechat-main", "published")}),
        ({"tag": "天文"}, set()),
    ]
    for filters, expected in cases:
        assert _shown(conn, **filters) == expected, filters
        counted: dict[tuple[str, str], int] = {}
        for _post, channel, state in expected:
            counted[channel, state] = counted.get((channel, state), 0) + 1
        assert _counted(conn, **filters) == counted, filters
    # a common tag is checked per delivery of the period instead: the same answers
    monkeypatch.setattr(calendar, "RARE_TAG_POSTS", 0)
    for filters, expected in cases:
        if "tag" in filters:
            assert _shown(conn, **filters) == expected, filters
            assert sum(_counted(conn, **filters).values()) == len(expected), filters
    # more than the limit: None (the caller counts instead); the limit itself: listed
    assert calendar.entries(conn, START, END, limit=3) is None
    listed = calendar.entries(conn, START, END, limit=4)
    assert listed is not None and len(listed) == 4
    assert {(r["title"], r["author"]) for r in listed} == {
        ("甲", "zhang"),
        ("乙", "chen"),
        ("丙", "zhang"),
    }
    # the times: where it was published, or when it is due; cut to the hour for counting
    at = {(r["post_id"], r["channel"]): r["at"] for r in listed}
    assert at[a, "news-feed"] == START + timedelta(days=1, hours=3)
    assert at[c, "wechat-main"] == START + timedelta(days=1, hours=4)
    buckets = {row[0] for row in calendar.counts(conn, START, END, width=13)}
    # by the minute (a zone with a half-hour offset), and from ends that are not whole hours:
    # the other ranges, the same deliveries
    minutes = calendar.counts(conn, START, END, width=16)
    assert {b[:13] for b, _, _, _ in minutes} == buckets and sum(r[3] for r in minutes) == 4
    late = calendar.counts(conn, START + timedelta(hours=27, minutes=30), END, width=13)
    assert {(b, n) for b, _, _, n in late} == {("2026-12-08T04", 1), ("2026-12-09T09", 1)}
    assert buckets == {"2026-12-08T03", "2026-12-08T04", "2026-12-09T09"}
    conn.close()


def test_a_crowded_period_is_counted_from_the_indexes_alone(workspace: Workspace) -> None:
    if on_postgresql():
        pytest.skip("query plans are SQLite's (PostgreSQL plans on its own statistics)")
    conn, _posts = _deliveries(workspace)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    calendar.counts(conn, START, END, width=13, channel="news-feed")
    calendar.counts(conn, START, END, width=13, tag="疫苗")  # a rare tag: post_tags first
    calendar.counts(conn, START, END, width=13, author="chen")
    conn.set_trace_callback(None)
    plans = {
        sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
        for sql in seen
        if "GROUP BY" in sql
    }
    assert len(plans) == 3
    untagged, tagged, by_author = plans.values()
    published = untagged[: untagged.index("UNION ALL")]
    assert published[2:] == [  # in (hour, channel) order already: no sort for the GROUP BY
        "SEARCH d USING COVERING INDEX deliveries_published_hour (state=? AND <expr>>? AND <expr><?)"
    ], untagged
    assert any("COVERING INDEX deliveries_due_open" in step for step in untagged), untagged
    assert not any("SCAN" in step for step in untagged), untagged
    searches = [step for step in tagged if step.startswith("SEARCH")]
    assert (
        searches
        == [  # per half: the tag's posts, then each post's deliveries
            "SEARCH t USING PRIMARY KEY (tag=?)",
            "SEARCH d USING INDEX deliveries_post_kind (post_id=?)",
        ]
        * 2
    ), tagged
    assert [step for step in by_author if "posts" in step] == [
        "SEARCH p USING COVERING INDEX posts_author (author=? AND id=? AND rowid=?)"
    ] * 2, by_author
    conn.close()
