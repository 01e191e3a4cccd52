"""The console's calendar (issue 16): one card per post per day with its channels, "+N more"
on a crowded day, moving a planned post (by script or by the card's form) under the rules of
``post schedule``, the agenda view and the filters."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

import pytest
from test_console import Console, _console, approved_post, token_of

from conftest import Workspace
from kepubot.timeutil import utcnow

BLACKOUT = 'formats = ["rss", "atom", "json"]\nblackout = ["02:00-05:00"]'


@pytest.fixture(name="console")
def console_fixture(workspace: Workspace) -> Console:
    text = workspace.config.read_text(encoding="utf-8")
    assert 'formats = ["rss", "atom", "json"]' in text
    workspace.config.write_text(
        text.replace('formats = ["rss", "atom", "json"]', BLACKOUT, 1), encoding="utf-8"
    )
    return _console(workspace)


def local_today(console: Console) -> date:
    return utcnow().astimezone(console.app().tz).date()


def planned(ws: Workspace, day: date, at: str, *extra: str, user: str = "zhang") -> int:
    """A draft with an explicit publishing time: planned on the calendar."""
    args = extra or ("--channel", "news-feed", "--channel", "weibo-main")
    return ws.add_post(*args, "--at", f"{day} {at}", user=user, title=f"计划稿 {day} {at}")


def cell(page: str, day: date) -> str:
    """The HTML of one day's cell (table cell or agenda item)."""
    start = page.index(f'data-date="{day}"')
    end = min(
        [i for i in (page.find("</td>", start), page.find("</li>\n", start)) if i != -1],
    )
    return page[start:end]


def move(
    console: Console, client: object, post_id: int, day: date, at: str, **kw: object
) -> object:
    return console.post(
        client,  # type: ignore[arg-type]
        "/calendar/move",
        {"post_id": str(post_id), "date": str(day), "time": at},
        **kw,
    )


def scheduled_of(ws: Workspace, post_id: int) -> str:
    return json.loads(ws.ok("post", "show", str(post_id), "--json"))["scheduled_at"] or ""


def test_one_card_per_post_with_its_channels_as_labels(console: Console) -> None:
    post_id = approved_post(console.workspace)
    page = console.client("li").get("/calendar").text
    today = local_today(console)
    day = cell(page, today)
    assert day.count('class="event card') == 1 and f'data-post="{post_id}"' in day
    labels = re.findall(r'<span class="label d-(\w+)" title="([^"]+)">([^<]+)</span>', day)
    assert sorted((name, state) for state, _, name in labels) == [
        ("news-feed", "queued"),
        ("weibo-main", "queued"),
    ]
    assert "排队中" in day  # the card's state, in Chinese
    assert page.count("data-date=") == 7  # a week


def test_a_crowded_day_shows_more_in_place(console: Console) -> None:
    ws = console.workspace
    tomorrow = local_today(console) + timedelta(days=1)
    ids = [
        planned(ws, tomorrow, f"{hour:02d}:00", "--channel", "news-feed")
        for hour in (9, 10, 11, 12, 13, 14)
    ]
    page = console.client("zhang").get(f"/calendar?date={tomorrow}").text
    day = cell(page, tomorrow)
    assert day.count('class="event card') == 6  # all of them, none cut
    shown, more = day.split('<details class="more">', 1)
    assert "还有 2 篇" in more
    assert [int(i) for i in re.findall(r'data-post="(\d+)"', shown)] == ids[:4]
    assert [int(i) for i in re.findall(r'data-post="(\d+)"', more)] == ids[4:]


def test_moving_a_planned_post_by_script_and_by_form(console: Console) -> None:
    ws = console.workspace
    today = local_today(console)
    start, target = today + timedelta(days=2), today + timedelta(days=4)
    post_id = planned(ws, start, "10:00")
    zhang = console.client("zhang")
    page = zhang.get(f"/calendar?date={start}").text
    card = cell(page, start)
    assert 'draggable="true"' in card and 'action="/calendar/move"' in card  # the form fallback
    answer = move(console, zhang, post_id, target, "10:00", headers={"Accept": "application/json"})
    assert answer.status_code == 200 and answer.json["ok"] is True  # type: ignore[attr-defined]
    assert scheduled_of(ws, post_id).startswith(f"{target} 10:00")
    # the form (no script): back to the calendar with what happened
    token = token_of(zhang.get("/calendar").text)
    back = f"/calendar?view=month&date={target}"
    response = zhang.post(
        "/calendar/move",
        data={
            "post_id": str(post_id),
            "date": str(target),
            "time": "15:30",
            "back": back,
            "csrf_token": token,
        },
    )
    assert response.status_code == 303 and response.headers["Location"] == back
    assert scheduled_of(ws, post_id).startswith(f"{target} 15:30")
    shown = zhang.get(back).text
    assert f"稿件 {post_id} 已改到 {target} 15:30" in shown
    assert f'data-post="{post_id}" data-time="15:30"' in cell(shown, target)


def test_refused_moves_say_why_and_change_nothing(console: Console) -> None:
    ws = console.workspace
    today = local_today(console)
    later = today + timedelta(days=3)
    post_id = planned(ws, later, "10:00")
    zhang = console.client("zhang")
    json_only = {"headers": {"Accept": "application/json"}}
    # a past time
    past = move(console, zhang, post_id, today - timedelta(days=1), "10:00", **json_only)
    assert past.status_code == 400 and past.json["ok"] is False  # type: ignore[attr-defined]
    assert "已经过去" in past.json["message"]  # type: ignore[attr-defined]
    # a blackout window of news-feed (02:00-05:00)
    dark = move(console, zhang, post_id, later, "03:00", **json_only)
    assert dark.status_code == 400
    assert "news-feed" in dark.json["message"] and "禁发时段" in dark.json["message"]  # type: ignore[attr-defined]
    # too close to another post's delivery on weibo-main (min_gap_minutes 60)
    queued = approved_post(ws)  # its deliveries are due now
    due = json.loads(ws.ok("delivery", "list", "--json"))
    assert {d["post_id"] for d in due} == {queued}
    soon = utcnow().astimezone(console.app().tz) + timedelta(minutes=20)
    close = move(console, zhang, post_id, soon.date(), soon.strftime("%H:%M"), **json_only)
    assert close.status_code == 400
    message = close.json["message"]  # type: ignore[attr-defined]
    assert "weibo-main" in message and "间隔不足 60 分钟" in message
    assert "news-feed" in message  # both channels: every refusal listed
    # the form: the reason is on the calendar page it returns to
    refused = move(console, zhang, post_id, later, "03:30", follow_redirects=True)
    assert refused.status_code == 200 and "禁发时段" in refused.text  # type: ignore[attr-defined]
    # someone else's post, and a role that schedules nothing
    other = console.client("chen")
    assert move(console, other, post_id, later, "11:00", **json_only).status_code == 403
    boss = console.client("boss")
    assert move(console, boss, post_id, later, "11:00").status_code == 403  # type: ignore[attr-defined]
    assert 'draggable="true"' not in boss.get(f"/calendar?date={later}").text
    assert scheduled_of(ws, post_id).startswith(f"{later} 10:00")  # unchanged throughout


def test_the_cli_refuses_the_same_explicit_times(console: Console) -> None:
    ws = console.workspace
    later = local_today(console) + timedelta(days=3)
    post_id = planned(ws, later, "10:00")
    result = ws.run("post", "schedule", str(post_id), "--at", f"{later} 03:00", user="zhang")
    assert result.exit_code == 2, result.output
    assert "blackout window" in result.output and "news-feed" in result.output
    assert scheduled_of(ws, post_id).startswith(f"{later} 10:00")


def test_agenda_view_and_filters(console: Console) -> None:
    ws = console.workspace
    today = local_today(console)
    day = today + timedelta(days=1)
    feed_only = planned(ws, day, "09:00", "--channel", "news-feed", "--tag", "疫苗")
    by_chen = planned(ws, day, "11:00", "--channel", "weibo-main", user="chen")
    client = console.client("li")

    def posts(query: str) -> set[int]:
        page = client.get(f"/calendar?date={day}&{query}")
        assert page.status_code == 200, page.text
        return {int(i) for i in re.findall(r'data-post="(\d+)"', page.text)}

    assert posts("") == {feed_only, by_chen}
    assert posts("channel=news-feed") == {feed_only}
    assert posts("author=chen") == {by_chen}
    assert posts("tag=疫苗") == {feed_only}
    assert posts("state=planned") == {feed_only, by_chen}
    assert posts("state=published") == set()
    assert client.get("/calendar?state=nonsense").status_code == 400
    assert client.get("/calendar?channel=nonsense").status_code == 400
    agenda = client.get(f"/calendar?view=agenda&date={today}").text
    assert 'class="agenda"' in agenda and agenda.count("data-date=") == 14
    assert f'data-post="{feed_only}"' in cell(agenda, day)


def test_the_week_offers_the_channels_posting_times_as_drop_slots(console: Console) -> None:
    ws = console.workspace
    today = local_today(console)
    tomorrow = today + timedelta(days=1)
    planned(ws, tomorrow, "10:00")
    zhang = console.client("zhang")
    # the week that holds tomorrow (on a Sunday, today is the last day of its own week)
    week = zhang.get(f"/calendar?date={tomorrow}&channel=weibo-main").text
    future = cell(week, tomorrow)
    slots = re.findall(r'<span class="slot" data-time="([^"]+)">', future)
    assert slots == ["08:30", "12:00", "20:00"]  # weibo-main's posting_times
    yesterday = today - timedelta(days=1)
    this_week = zhang.get(f"/calendar?date={today}&channel=weibo-main").text
    if f'data-date="{yesterday}"' in this_week:  # the week may start today
        assert 'class="slot"' not in cell(this_week, yesterday)  # no slots on past days
    assert 'class="slot"' not in console.client("boss").get("/calendar").text  # cannot move
    # a move by script is flashed too: the page the script reloads says what happened
    post_id = planned(ws, today + timedelta(days=2), "10:00")
    answer = move(
        console,
        zhang,
        post_id,
        today + timedelta(days=2),
        "12:00",
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert f"已改到 {today + timedelta(days=2)} 12:00" in zhang.get("/calendar").text
