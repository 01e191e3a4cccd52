"""Deliveries with the operators' retry and resolve, and the engagement report."""

from __future__ import annotations

from typing import Any

from flask import (
    Flask,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput
from kepubot.models import DELIVERY_STATES
from kepubot.web.app import has_role, requires, safe_next
from kepubot.web.forms import PAGE_SIZE, day_arg, page_number
from kepubot.web.labels import text

# the delivery states an operator watches, counted on the deliveries page
ATTENTION_STATES = (
    "needs_attention",
    "awaiting_person",
    "failed",
    "unknown",
    "processing",
    "sending",
    "queued",
)


def register(app: Flask) -> None:
    @app.get("/deliveries")
    @requires()
    def deliveries_page() -> str:
        from kepubot.bot.status import collect_health
        from kepubot.services.posts import titles_of

        state = request.args.get("state") or None
        if state and state not in DELIVERY_STATES:
            raise InvalidInput(f"state {state!r}: use one of {', '.join(DELIVERY_STATES)}")
        channel = request.args.get("channel") or None
        page = page_number()
        rows = g.service.store.deliveries.list_deliveries(
            state=state,
            channel=channel,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        titles = titles_of(g.service, [d.post_id for d in rows[:PAGE_SIZE]])
        return render_template(
            "deliveries.html",
            counts=g.service.store.deliveries.counts_of(ATTENTION_STATES),
            health=collect_health(g.service, g.now),
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
        from kepubot.services import operator

        operator.retry(g.service, g.user, delivery_id, now=g.now)
        flash(text(g.lang, "done"), "ok")
        return redirect(safe_next(request.form.get("back") or url_for("deliveries_page")), 303)

    @app.post("/deliveries/<id:delivery_id>/resolve")
    @requires("operator")
    def delivery_resolve(delivery_id: int) -> Response:
        from kepubot.services import operator

        outcome = request.form.get("outcome")
        if outcome in ("retracted", "not_retracted"):  # a retraction (docs/delivery.md §14)
            operator.resolve_retraction(
                g.service, g.user, delivery_id, now=g.now, retracted=outcome == "retracted"
            )
            flash(text(g.lang, "done"), "ok")
            return redirect(safe_next(request.form.get("back") or url_for("deliveries_page")), 303)
        published = (request.form.get("published") or "").strip() or None
        if request.form.get("outcome") == "published" and not published:
            raise InvalidInput("give the published post's URL or id, or choose not published")
        if request.form.get("outcome") != "published":
            published = None
        operator.resolve(g.service, g.user, delivery_id, now=g.now, published=published)
        flash(text(g.lang, "done"), "ok")
        return redirect(safe_next(request.form.get("back") or url_for("deliveries_page")), 303)

    def _report() -> dict[str, Any]:
        from kepubot.reports.aggregate import build_report

        service = g.service
        service.require_role(g.user, "manager", action="reading reports")
        return build_report(
            service,
            since=day_arg("since"),
            until=day_arg("until"),
            channel=request.args.get("channel") or None,
            tag=request.args.get("tag") or None,
            now=g.now,
            language=g.lang,
        )

    @app.get("/reports")
    @requires("manager")
    def reports() -> str:
        from kepubot.reports.html import CONTENT_CSS, body_html

        data = _report()
        query = {k: v for k, v in request.args.items() if k != "lang" and v}
        return render_template(
            "reports.html",
            report=data,
            report_html=Markup(body_html(data)),  # every value is escaped there
            report_css=Markup(CONTENT_CSS),  # our own constant
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
        # CSV: one section (?section=channels), or a zip with one file per section
        section = request.args.get("section") or None
        if fmt == "csv" and section is not None:
            from kepubot.reports.formats import section_name

            section = section_name(section)
        payload = render(data, fmt, section if fmt == "csv" else None)
        body = payload if isinstance(payload, bytes) else payload.encode("utf-8")
        suffix, mimetype = fmt, types[fmt]
        if fmt == "csv" and section is None:
            suffix, mimetype = "zip", "application/zip"
        elif section is not None:
            suffix = f"{section}.csv"
        name = f"kepubot-report-{data['period']['since']}-{data['period']['until']}.{suffix}"
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
