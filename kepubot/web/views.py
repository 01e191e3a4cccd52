"""The console's pages. Each one reads or acts through the service layer as ``g.user``."""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import (
    Flask,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from markupsafe import Markup
from werkzeug.datastructures import FileStorage
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput, KepubotError
from kepubot.models import DELIVERY_STATES, POST_STATES, Post
from kepubot.web.app import error_page, has_role, requires, safe_next
from kepubot.web.labels import text
from kepubot.web.messages import translate

PAGE_SIZE = 50
# the delivery states an operator watches, counted on the deliveries page
ATTENTION_STATES = ("needs_attention", "failed", "unknown", "processing", "sending", "queued")
CALENDAR_LIST_LIMIT = 600  # deliveries in one calendar view before it shows counts per day
log = logging.getLogger(__name__)

# what the service layer's messages call a field, and what the form calls it
_FORM_PLACES = {
    "title": "title",
    "body": "body",
    "link": "link",
    "channels": "channels",
    "at": "at",
    "images": "images",
    "video": "video",
    "cover": "cover",
}


def _html(markdown_text: str) -> Markup:
    from kepubot.channels.base import markdown_to_html

    return Markup(markdown_to_html(markdown_text))  # sanitized by nh3


def _clean(html: str) -> Markup:
    from kepubot.channels.base import sanitize_html

    return Markup(sanitize_html(html))  # sanitized by nh3


def _tags(raw: str) -> list[str]:
    return [t for t in re.split(r"[,，\s]+", raw or "") if t]


def _day(name: str) -> date | None:
    from kepubot.timeutil import parse_date

    raw = (request.args.get(name) or "").strip()
    return parse_date(raw, name) if raw else None


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=g.service.tz)


def _when_text(form: Any) -> tuple[str | None, bool]:
    """The compose form's "when" choice as the service layer's (at, next_slot)."""
    choice = form.get("when", "now")
    if choice == "at":
        # <input type=datetime-local> sends 2026-12-01T08:30 in the configured zone
        return (form.get("at") or "").replace("T", " ").strip() or "", False
    if choice == "next":
        return None, True
    return None, False


class _IdConverter(IntegerConverter):
    """A row id: an integer SQLite can hold (a longer number is a 404, not an overflow)."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, max=2**63 - 1)


def _page() -> int:
    raw = request.args.get("page", "")
    return min(int(raw), 1_000_000) if raw.isdigit() and int(raw) > 0 else 1


def register(app: Flask) -> None:
    app.url_map.converters["id"] = _IdConverter
    # --- signing in ---------------------------------------------------------------------

    @app.get("/")
    def index() -> Response:
        return redirect(url_for("posts"))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        from kepubot.queue import accounts

        next_url = request.values.get("next") or ""
        if request.method == "GET":
            if g.user is not None:
                return redirect(safe_next(next_url))
            return render_template("login.html", next=next_url, error=None, name="")
        # "username" is the form's field; "user" is accepted too (scripts, older forms)
        name = (request.form.get("username") or request.form.get("user") or "").strip()
        password = request.form.get("password") or ""
        address = request.remote_addr or "-"
        web = g.service.config.data.web
        limit = accounts.SignInLimit(
            per_user=web.sign_in_attempts,
            per_address=web.sign_in_attempts * 4,
            window=timedelta(minutes=web.sign_in_window_minutes),
        )
        try:
            stamp = accounts.authenticate(
                g.service,
                name,
                password,
                address=address,
                now=g.now,
                limit=limit,
            )
        except accounts.SignInBlocked as blocked:
            log.warning("sign-in refused for %r from %s: too many failures", name, address)
            minutes = max(1, int(blocked.retry_after.total_seconds() // 60) + 1)
            response = Response(
                render_template(
                    "login.html",
                    next=next_url,
                    error=text(g.lang, "too_many", minutes=minutes),
                    name=name,
                ),
                status=429,
            )
            response.headers["Retry-After"] = str(int(blocked.retry_after.total_seconds()) + 1)
            return response
        if stamp is None:
            log.warning("sign-in failed for %r from %s", name, address)
            return Response(
                render_template(
                    "login.html", next=next_url, error=text(g.lang, "bad_credentials"), name=name
                ),
                status=401,
            )
        log.info("%s signed in from %s", name, address)
        lang = session.get("lang")
        session.clear()  # a fresh session: no fixation
        session.permanent = True
        session.update(
            user=name, stamp=stamp, csrf=secrets.token_urlsafe(32), issued=g.now.timestamp()
        )
        if lang:
            session["lang"] = lang
        return redirect(safe_next(next_url))

    @app.post("/logout")
    def logout() -> Response:
        lang = session.get("lang")
        session.clear()
        if lang:
            session["lang"] = lang
        return redirect(url_for("login"))

    # --- posts ----------------------------------------------------------------------------

    @app.get("/posts")
    @requires()
    def posts() -> str:
        from kepubot.queue.posts import list_posts

        args = request.args
        state = args.get("state") or None
        if state and state not in POST_STATES:
            raise InvalidInput(f"state {state!r}: use one of {', '.join(POST_STATES)}")
        channel = args.get("channel") or None
        page = _page()
        since, until = _day("since"), _day("until")
        rows = list_posts(
            g.service,
            state=state,
            channel=channel,
            author=args.get("author") or None,
            tag=args.get("tag") or None,
            title=args.get("q") or None,
            created_from=_local_midnight(since) if since else None,
            created_before=_local_midnight(until + timedelta(days=1)) if until else None,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        more = len(rows) > PAGE_SIZE
        filters = {k: v for k, v in args.items() if k not in ("page", "lang") and v}
        return render_template(
            "posts.html",
            rows=rows[:PAGE_SIZE],
            page=page,
            more=more,
            filters=filters,
            states=POST_STATES,
            channels=sorted(g.service.config.data.channels),
            authors=sorted(g.service.config.data.users),
        )

    @app.route("/posts/new", methods=["GET", "POST"])
    @requires("editor")
    def post_new() -> Any:
        from kepubot.queue.posts import create_post

        if request.method == "GET":
            return _compose(None, {}, None)
        data, cleanup = _post_input(request.form, request.files, new=True)
        try:
            post_id = create_post(g.service, g.user, data, now=g.now, source="web")
        except InvalidInput as exc:
            return _compose(None, request.form, translate(str(exc), g.lang), status=400)
        finally:
            cleanup()
        return _saved(post_id)

    @app.route("/posts/<id:post_id>/edit", methods=["GET", "POST"])
    @requires("editor")
    def post_edit(post_id: int) -> Any:
        from kepubot.queue.posts import edit_post, get_post

        post = get_post(g.service, post_id)
        if request.method == "GET":
            return _compose(post, {}, None)
        data, cleanup = _post_input(request.form, request.files, new=False)
        try:
            edit_post(g.service, g.user, post_id, data, now=g.now)
        except InvalidInput as exc:
            return _compose(post, request.form, translate(str(exc), g.lang), status=400)
        finally:
            cleanup()
        return _saved(post_id)

    def _saved(post_id: int) -> Response:
        """After a save: submit too when the editor asked, then show the post."""
        from kepubot.queue.posts import submit

        if request.form.get("submit_now"):
            try:
                submit(g.service, g.user, [post_id], now=g.now)
            except KepubotError as exc:
                flash(translate(str(exc), g.lang), "error")
                return redirect(url_for("post_show", post_id=post_id))
        flash(text(g.lang, "saved"), "ok")
        return redirect(url_for("post_show", post_id=post_id), code=303)

    def _compose(post: Post | None, form: Any, error: str | None, status: int = 200) -> Any:
        values = {
            "title": post.title if post else "",
            "body": post.body if post else "",
            "summary": post.summary if post else "",
            "link": post.link if post else "",
            "tags": " ".join(post.tags) if post else "",
            "channels": list(post.channels) if post else [],
            "when": "next"
            if post and post.next_slot
            else "at"
            if post and post.scheduled_at
            else "now",
            "at": post.scheduled_at.astimezone(g.service.tz).strftime("%Y-%m-%dT%H:%M")
            if post and post.scheduled_at
            else "",
        }
        if form:
            values.update(
                {k: form.get(k, "") for k in ("title", "body", "summary", "link", "tags")}
            )
            values["channels"] = form.getlist("channels")
            values["when"] = form.get("when", "now")
            values["at"] = form.get("at", "")
        channels = {name: ch.type_name() for name, ch in g.service.channels.items()}
        page = render_template(
            "compose.html", post=post, values=values, error=error, channels=channels
        )
        return Response(page, status=status, mimetype="text/html")

    @app.post("/preview")
    @requires("editor")
    def live_preview() -> str:
        from kepubot.preview import preview_unsaved
        from kepubot.queue.posts import get_post

        form = request.form
        base = None
        raw_id = form.get("post_id", "")
        if raw_id.isdigit() and int(raw_id) < 2**63:
            base = get_post(g.service, int(raw_id))
        items = preview_unsaved(
            g.service,
            author=g.user,
            title=form.get("title", ""),
            body=form.get("body", ""),
            summary=form.get("summary", ""),
            link=form.get("link", ""),
            tags=_tags(form.get("tags", "")),
            channels=form.getlist("channels"),
            base=base,
        )
        return render_template(
            "_preview.html",
            body_html=_html(form.get("body", "")),
            items=_preview_view(items, base),
        )

    @app.get("/posts/<id:post_id>")
    @requires()
    def post_show(post_id: int) -> str:
        from kepubot.preview import preview_post
        from kepubot.queue import deliveries
        from kepubot.queue.posts import get_post, review_refusal, reviews_of

        service = g.service
        post = get_post(service, post_id)
        refusal = None
        if post.state == "in_review":
            refusal = review_refusal(service, g.user, post)
        return render_template(
            "post.html",
            post=post,
            body_html=_html(post.body),
            reviews=reviews_of(service, post_id),
            deliveries=deliveries.for_post(service.conn, post_id),
            items=_preview_view(preview_post(service, post_id), post),
            review_refusal=refusal,
        )

    @app.post("/posts/<id:post_id>/<action>")
    @requires()
    def post_action(post_id: int, action: str) -> Response:
        from kepubot.queue import posts as workflow

        service, form = g.service, request.form
        if action == "submit":
            workflow.submit(service, g.user, [post_id], now=g.now, comment=form.get("comment", ""))
        elif action == "approve":
            workflow.approve(service, g.user, [post_id], now=g.now, comment=form.get("comment", ""))
        elif action == "reject":
            workflow.reject(service, g.user, [post_id], reason=form.get("reason", ""), now=g.now)
        elif action == "schedule":
            at, next_slot = _when_text(form)
            workflow.schedule(service, g.user, post_id, at=at, next_slot=next_slot, now=g.now)
        elif action == "cancel":
            workflow.cancel(service, g.user, post_id, now=g.now)
        else:
            abort(404)
        flash(text(g.lang, "done"), "ok")
        back = form.get("back")
        target = safe_next(back) if back else url_for("post_show", post_id=post_id)
        return redirect(target, code=303)

    @app.get("/posts/<id:post_id>/audit")
    @requires()
    def post_audit(post_id: int) -> str:
        from kepubot.queue import audit
        from kepubot.queue.posts import get_post

        post = get_post(g.service, post_id)
        return render_template(
            "audit.html", post=post, rows=audit.rows_for_post(g.service.conn, post_id)
        )

    @app.get("/media/<path:relative>")
    @requires()
    def media(relative: str) -> Response:
        # only files of the content-addressed store: "ab/<sha256>.<ext>"
        if not re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,5}", relative):
            abort(404)
        path = g.service.media.file(relative)
        if not path.is_file():
            abort(404)
        return send_file(path, max_age=3600)

    # --- review ------------------------------------------------------------------------------

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

    # --- calendar ---------------------------------------------------------------------------

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
        anchor = _day("date") or today
        if view == "week":
            first = anchor - timedelta(days=anchor.weekday())
            last = first + timedelta(days=7)
            earlier, later = first - timedelta(days=7), last
        else:
            first = anchor.replace(day=1)
            last = (first + timedelta(days=32)).replace(day=1)
            earlier, later = (first - timedelta(days=1)).replace(day=1), last
        start, end = _local_midnight(first), _local_midnight(last)
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

    # --- deliveries ---------------------------------------------------------------------------

    @app.get("/deliveries")
    @requires()
    def deliveries_page() -> str:
        from kepubot.queue import deliveries

        state = request.args.get("state") or None
        if state and state not in DELIVERY_STATES:
            raise InvalidInput(f"state {state!r}: use one of {', '.join(DELIVERY_STATES)}")
        channel = request.args.get("channel") or None
        page = _page()
        rows = deliveries.list_deliveries(
            g.service.conn,
            state=state,
            channel=channel,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        from kepubot.queue.posts import titles_of

        titles = titles_of(g.service, [d.post_id for d in rows[:PAGE_SIZE]])
        return render_template(
            "deliveries.html",
            counts=deliveries.counts_of(g.service.conn, ATTENTION_STATES),
            titles=titles,
            rows=rows[:PAGE_SIZE],
            more=len(rows) > PAGE_SIZE,
            page=page,
            state=state,
            channel=channel,
            states=DELIVERY_STATES,
            channels=sorted(g.service.config.data.channels),
            operator=has_role("operator"),
        )

    @app.post("/deliveries/<id:delivery_id>/retry")
    @requires("operator")
    def delivery_retry(delivery_id: int) -> Response:
        from kepubot.queue import operator

        operator.retry(g.service, g.user, delivery_id, now=g.now)
        flash(text(g.lang, "done"), "ok")
        return redirect(safe_next(request.form.get("back") or url_for("deliveries_page")), 303)

    @app.post("/deliveries/<id:delivery_id>/resolve")
    @requires("operator")
    def delivery_resolve(delivery_id: int) -> Response:
        from kepubot.queue import operator

        published = (request.form.get("published") or "").strip() or None
        if request.form.get("outcome") == "published" and not published:
            raise InvalidInput("give the published post's URL or id, or choose not published")
        if request.form.get("outcome") != "published":
            published = None
        operator.resolve(g.service, g.user, delivery_id, now=g.now, published=published)
        flash(text(g.lang, "done"), "ok")
        return redirect(safe_next(request.form.get("back") or url_for("deliveries_page")), 303)

    # --- reports -----------------------------------------------------------------------------

    def _report() -> dict[str, Any]:
        from kepubot.reports.aggregate import build_report

        service = g.service
        service.require_role(g.user, "manager", action="reading reports")
        return build_report(
            service,
            since=_day("since"),
            until=_day("until"),
            channel=request.args.get("channel") or None,
            tag=request.args.get("tag") or None,
            now=g.now,
            language=g.lang,
        )

    @app.get("/reports")
    @requires("manager")
    def reports() -> str:
        from kepubot.reports.html import body_html

        data = _report()
        query = {k: v for k, v in request.args.items() if k != "lang" and v}
        return render_template(
            "reports.html",
            report=data,
            report_html=Markup(body_html(data)),  # every value is escaped there
            query=query,
            channels=sorted(g.service.config.data.channels),
        )

    @app.get("/reports/download")
    @requires("manager")
    def report_download() -> Response:
        from kepubot.reports.render import render

        fmt = request.args.get("format", "csv")
        types = {
            "csv": "text/csv; charset=utf-8",
            "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "html": "text/html; charset=utf-8",
        }
        if fmt not in types:
            raise InvalidInput(f"format {fmt!r}: use csv, xlsx or html")
        data = _report()
        payload = render(data, fmt)
        body = payload if isinstance(payload, bytes) else payload.encode("utf-8")
        name = f"kepubot-report-{data['period']['since']}-{data['period']['until']}.{fmt}"
        response = Response(body, mimetype=types[fmt])
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    # --- helpers shared by the post pages ------------------------------------------------

    def _preview_view(items: list[dict[str, Any]], post: Post | None) -> list[dict[str, Any]]:
        """Preview items with their HTML passed through the sanitizer for display, and media
        named by their original file names instead of their place in the store."""
        names = {m.path: f"{m.name} ({m.kind})" for m in (post.media if post else [])}
        shown = []
        for item in items:
            rendered = dict(item["rendered"])
            rendered["media_names"] = [names.get(m, m) for m in rendered.get("media") or []]
            rendered["html_safe"] = _clean(rendered["html"]) if rendered.get("html") else None
            extra = rendered.get("extra") or {}
            rendered["extra_shown"] = {
                k: v for k, v in extra.items() if isinstance(v, str | int | float) and v != ""
            }
            shown.append({**item, "rendered": rendered})
        return shown


def _post_input(form: Any, files: Any, *, new: bool) -> tuple[Any, Any]:
    """The compose form as the service layer's PostInput, uploads saved to a temporary
    folder (removed by the returned ``cleanup`` once the media store has copied them)."""
    from kepubot.queue.posts import PostInput

    folder = Path(tempfile.mkdtemp(prefix="kepubot-upload-"))

    def cleanup() -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def save(item: FileStorage, index: int) -> Path:
        # keep the original name (people recognise it in previews), minus anything that
        # could leave the folder: separators, control characters, a leading dot
        original = Path((item.filename or "").replace("\\", "/")).name
        name = re.sub(r"[\x00-\x1f/]", "_", original).strip().lstrip(".")[-100:] or "upload"
        target = folder / str(index) / name
        target.parent.mkdir()
        item.save(target)
        return target

    count = 0

    def saved(name: str) -> list[Path]:
        nonlocal count
        paths = []
        for item in files.getlist(name):
            if item and item.filename:
                count += 1
                paths.append(save(item, count))
        return paths

    images = saved("images")
    video = saved("video")
    cover = saved("cover")
    at, next_slot = _when_text(form)
    body = form.get("body")
    data = PostInput(
        title=form.get("title", ""),
        body=body if body is not None else ("" if new else None),
        summary=form.get("summary", ""),
        link=form.get("link", ""),
        tags=_tags(form.get("tags", "")),
        # new images replace the old ones; "remove images" with none chosen drops them
        images=images or ([] if not new and form.get("remove_images") else None),
        video=video[0] if video else None,
        cover=cover[0] if cover else None,
        channels=form.getlist("channels") if (new or form.get("channels_field")) else None,
        at=at,
        next_slot=next_slot,
        unschedule=not new and form.get("when", "now") == "now",
        where={key: text(g.lang, label) for key, label in _FORM_PLACES.items()},
    )
    return data, cleanup


__all__ = ["error_page", "register"]
