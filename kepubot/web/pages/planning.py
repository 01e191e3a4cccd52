"""The review queue of each level, and the week and month calendar."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import (
    Flask,
    g,
    render_template,
    request,
)

from kepubot.errors import InvalidInput
from kepubot.timeutil import to_local
from kepubot.web.app import requires
from kepubot.web.forms import day_arg, local_midnight

CALENDAR_LIST_LIMIT = 600  # deliveries in one calendar view before it shows counts per day


def register(app: Flask) -> None:
    @app.get("/review")
    @requires("reviewer")
    def review() -> str:
        from kepubot.queue.posts import list_posts, review_refusal

        service = g.service
        queues = []
        for level, name in enumerate(service.config.review_levels, start=1):
            rows = list_posts(service, state="in_review", review_level=level, limit=200)
            queues.append(
                {
                    "level": level,
                    "name": name,
                    "posts": [(p, review_refusal(service, g.user, p)) for p in rows],
                }
            )
        return render_template("review.html", queues=queues)

    @app.get("/calendar")
    @requires()
    def calendar() -> str:
        from kepubot.queue import deliveries
        from kepubot.queue.posts import scheduled_between

        service = g.service
        view = request.args.get("view", "week")
        if view not in ("week", "month"):
            raise InvalidInput(f"view {view!r}: use week or month")
        today = g.now.astimezone(service.tz).date()
        anchor = day_arg("date") or today
        if view == "week":
            first = anchor - timedelta(days=anchor.weekday())
            last = first + timedelta(days=7)
            earlier, later = first - timedelta(days=7), last
        else:
            first = anchor.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1)
            earlier, later = (first - timedelta(days=1)).replace(day=1), last
        start, end = local_midnight(first), local_midnight(last)
        channel = request.args.get("channel") or None
        conn, tz = service.conn, service.tz
        # a period with more deliveries than a person can read is shown as counts per day,
        # channel and state (still every delivery, never a silently cut list)
        events = deliveries.calendar_entries(
            conn, start, end, channel=channel, limit=CALENDAR_LIST_LIMIT + 1
        )
        crowded = len(events) > CALENDAR_LIST_LIMIT
        if crowded:
            events = [
                {"at": at, "channel": name, "state": state}
                for at, name, state in deliveries.calendar_counts(conn, start, end, channel=channel)
            ]
        total = len(events)
        events += [
            {
                "at": p.scheduled_at,
                "channel": name,
                "state": "planned",
                "post_id": p.id,
                "title": p.title,
            }
            for p in scheduled_between(service, start, end)
            for name in p.channels
            if not channel or name == channel
        ]
        days: dict[date, list[dict[str, Any]]] = {}
        summary: dict[date, dict[tuple[str, str], int]] = {}
        for event in events:
            local = to_local(event["at"], tz)
            if local is None:  # a stored time no zone can show is not on any calendar day
                continue
            if crowded:
                counts = summary.setdefault(local.date(), {})
                key = (event["channel"], event["state"])
                counts[key] = counts.get(key, 0) + 1
            else:
                days.setdefault(local.date(), []).append({**event, "time": local.strftime("%H:%M")})
        for items in days.values():
            items.sort(key=lambda item: (item["time"], item["channel"]))
        grid_start = first - timedelta(days=first.weekday())
        grid: list[list[date]] = []
        cursor = grid_start
        while cursor < last:
            grid.append([cursor + timedelta(days=i) for i in range(7)])
            cursor += timedelta(days=7)
        return render_template(
            "calendar.html",
            summary=summary,
            total=total,
            view=view,
            grid=grid,
            days=days,
            first=first,
            last=last - timedelta(days=1),
            today=today,
            earlier=earlier,
            later=later,
            channel=channel,
            channels=sorted(service.config.data.channels),
        )
