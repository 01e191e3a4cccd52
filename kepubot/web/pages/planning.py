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
        days: dict[date, list[dict[str, Any]]] = {}
        # a period with more deliveries than a person can read is shown as counts per day,
        # channel and state (still every delivery, never a silently cut list)
        total = deliveries.count_in_period(service.conn, start, end, channel=channel)
        summary: dict[date, dict[tuple[str, str], int]] = {}
        if total > CALENDAR_LIST_LIMIT:
            for at, name, state in deliveries.calendar_counts(
                service.conn, start, end, channel=channel
            ):
                day = summary.setdefault(at.astimezone(service.tz).date(), {})
                day[(name, state)] = day.get((name, state), 0) + 1
        else:
            for entry in deliveries.calendar_entries(service.conn, start, end, channel=channel):
                local = entry["at"].astimezone(service.tz)
                days.setdefault(local.date(), []).append(
                    {
                        "time": local.strftime("%H:%M"),
                        "channel": entry["channel"],
                        "state": entry["state"],
                        "post_id": entry["post_id"],
                        "title": entry["title"],
                        "url": entry["remote_url"],
                    }
                )
        for p in scheduled_between(service, start, end):
            assert p.scheduled_at is not None
            local = p.scheduled_at.astimezone(service.tz)
            for name in p.channels:
                if channel and name != channel:
                    continue
                if total > CALENDAR_LIST_LIMIT:
                    day = summary.setdefault(local.date(), {})
                    day[(name, "planned")] = day.get((name, "planned"), 0) + 1
                    continue
                days.setdefault(local.date(), []).append(
                    {
                        "time": local.strftime("%H:%M"),
                        "channel": name,
                        "state": "planned",
                        "post_id": p.id,
                        "title": p.title,
                        "url": None,
                    }
                )
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
