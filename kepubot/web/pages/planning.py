"""The review queue of each level, and the week and month calendar."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import (
    Flask,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput, NotAllowed, NotFound
from kepubot.queue import MAX_ROW_ID
from kepubot.web.app import has_role, requires, safe_next
from kepubot.web.forms import day_arg, local_midnight
from kepubot.web.labels import text
from kepubot.web.messages import translate

CALENDAR_LIST_LIMIT = 600  # deliveries in one calendar view before it shows counts per day
DAY_CARDS = 4  # cards a day shows before "+N more"
AGENDA_DAYS = 14


def register(app: Flask) -> None:
    @app.get("/review")
    @requires()
    def review() -> str:
        from kepubot.services.posts import list_posts, review_refusal

        service = g.service
        # reviewers and the custom roles of review levels (e.g. expert), docs/architecture.md §4.2
        roles = sorted({"reviewer", *service.config.review_roles})
        if not has_role(*roles):
            raise NotAllowed(f"the review queue needs the {' or '.join(roles)} role")
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
        from kepubot.models import DELIVERY_STATES
        from kepubot.services.calendar import Filters, cards

        service = g.service
        args = request.args
        view = args.get("view", "week")
        if view not in ("week", "month", "agenda"):
            raise InvalidInput(f"view {view!r}: use week, month or agenda")
        today = g.now.astimezone(service.tz).date()
        anchor = day_arg("date") or today
        if view == "week":
            first = anchor - timedelta(days=anchor.weekday())
            last = first + timedelta(days=7)
            earlier, later = first - timedelta(days=7), last
        elif view == "agenda":
            first, last = anchor, anchor + timedelta(days=AGENDA_DAYS)
            earlier, later = first - timedelta(days=AGENDA_DAYS), last
        else:
            first = anchor.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1)
            earlier, later = (first - timedelta(days=1)).replace(day=1), last
        states = ("planned", *DELIVERY_STATES)
        state = args.get("state") or None
        if state and state not in states:
            raise InvalidInput(f"state {state!r}: use one of {', '.join(states)}")
        channel = args.get("channel") or None
        if channel and channel not in service.config.data.channels:
            raise InvalidInput(f"channel {channel!r}: no such channel")
        filters = Filters(
            channel=channel,
            state=state,
            tag=(args.get("tag") or "").strip().lstrip("#") or None,
            author=args.get("author") or None,
        )
        days, summary, total = cards(
            service, local_midnight(first), local_midnight(last), filters, limit=CALENDAR_LIST_LIMIT
        )
        grid: list[list[date]] = []
        if view == "agenda":
            grid = [[first + timedelta(days=i) for i in range((last - first).days)]]
        else:
            cursor = first - timedelta(days=first.weekday())
            while cursor < last:
                grid.append([cursor + timedelta(days=i) for i in range(7)])
                cursor += timedelta(days=7)
        query = {
            key: value
            for key, value in (
                ("channel", channel),
                ("state", state),
                ("tag", filters.tag),
                ("author", filters.author),
            )
            if value
        }
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
            query=query,
            here=request.full_path.rstrip("?"),
            shown=DAY_CARDS,
            states=states,
            channels=sorted(service.config.data.channels),
            authors=sorted(service.config.data.users),
            can_move=has_role("editor", "reviewer", "operator"),
            slots=_slots(service, channel) if view == "week" else [],
        )

    @app.post("/calendar/move")
    @requires("editor", "reviewer", "operator")
    def calendar_move() -> Response:
        """A card dropped on another day or time (or its form sent): ``posts.schedule`` with
        the new local time, the same rules as ``kepubot post schedule``. A script asking for
        JSON gets {"ok", "message"}; a form gets the calendar back with a flash message."""
        from kepubot.services.posts import schedule

        form = request.form
        raw_id = form.get("post_id", "")
        day = (form.get("date") or "").strip()
        clock = (form.get("time") or "").strip()
        wants_json = "application/json" in request.headers.get("Accept", "")
        try:
            if not raw_id.isdigit() or int(raw_id) > MAX_ROW_ID:
                raise InvalidInput(f"post {raw_id!r}: not a post id")
            if not day or not clock:
                raise InvalidInput("give the new day (YYYY-MM-DD) and time (HH:MM)")
            schedule(
                g.service,
                g.user,
                int(raw_id),
                at=f"{day} {clock}",
                next_slot=False,
                now=g.now,
            )
        except (InvalidInput, NotAllowed, NotFound) as exc:
            status = (
                403 if isinstance(exc, NotAllowed) else 404 if isinstance(exc, NotFound) else 400
            )
            message = translate(str(exc), g.lang)
            if wants_json:
                return jsonify(ok=False, message=message), status  # type: ignore[return-value]
            flash(message, "error")
        else:
            message = text(g.lang, "moved", post=raw_id, at=f"{day} {clock}")
            flash(message, "ok")  # the script reloads the page, which shows it
            if wants_json:
                return jsonify(ok=True, message=message)
        back = form.get("back")
        return redirect(safe_next(back) if back else url_for("calendar"), code=303)


DEFAULT_SLOTS = ("08:00", "12:00", "18:00", "21:00")


def _slots(service: Any, channel: str | None) -> list[str]:
    """The times of day the week view offers as drop targets: the channels' posting_times
    (the shown channel's, or every channel's), else a few usual ones."""
    channels = service.channels
    names = [channel] if channel else sorted(channels)
    times = {t for name in names if name in channels for t in channels[name].settings.posting_times}
    return sorted(times) or list(DEFAULT_SLOTS)
