"""Assisted publishing tasks (docs/delivery.md §17): the list of deliveries waiting for a
person, each task's page (every part with a copy button, the files, confirm or decline), and
the form that enters a published delivery's figures by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask, abort, flash, g, redirect, render_template, request, send_file, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput
from kepubot.web.app import requires
from kepubot.web.labels import text

PART_KEYS = ("title", "summary", "body", "link", "sources", "tags")


def _task_context(delivery_id: int) -> dict[str, Any]:
    from kepubot.services.assisted import may_act
    from kepubot.services.posts import get_post

    service = g.service
    delivery = service.store.deliveries.get(delivery_id)
    channel = service.channels.get(delivery.channel)
    if channel is None or channel.type_name() != "assisted":
        raise InvalidInput(f"delivery {delivery_id} is not on an assisted channel")
    if not may_act(service, g.user, delivery.channel):
        from kepubot.errors import NotAllowed

        raise NotAllowed(
            f"the task of delivery {delivery_id} is for the operators and the assignees of"
            f" channel {delivery.channel!r}"
        )
    post = get_post(service, delivery.post_id)
    parts = channel.parts(post)
    folder = Path(str(delivery.progress.get("pack", "")))
    files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    archive = Path(str(delivery.progress.get("zip", "")))
    return {
        "delivery": delivery,
        "post": post,
        "channel": channel,
        "profile": channel.profile,
        "parts": [(k, parts[k]) for k in PART_KEYS if parts.get(k)],
        # an outlet that takes pasted rich text gets the body as formatted text to copy; the
        # HTML is ours, sanitized by markdown_to_html (nh3) and html_list (escaped)
        "rich_body": Markup(parts["body"]) if channel.body_format == "html" else None,
        "files": files,
        "has_zip": archive.is_file(),
        "awaiting": delivery.state == "awaiting_person",
    }


def register(app: Flask) -> None:
    @app.get("/tasks")
    @requires()
    def tasks_page() -> str:
        from kepubot.services.assisted import may_act
        from kepubot.services.posts import titles_of

        service = g.service
        names = [
            n
            for n, c in service.channels.items()
            if c.type_name() == "assisted" and may_act(service, g.user, n)
        ]
        rows = service.store.assisted.open_tasks(names)
        return render_template(
            "tasks.html", rows=rows, titles=titles_of(service, [d.post_id for d in rows])
        )

    @app.get("/tasks/<id:delivery_id>")
    @requires()
    def task_page(delivery_id: int) -> str:
        return render_template("task.html", **_task_context(delivery_id))

    @app.get("/tasks/<id:delivery_id>/files/<name>")
    @requires()
    def task_file(delivery_id: int, name: str) -> Response:
        context = _task_context(delivery_id)
        delivery = context["delivery"]
        if name == "pack.zip" and context["has_zip"]:
            path = Path(str(delivery.progress["zip"]))
        elif name in context["files"]:  # only a file the pack lists, never a path
            path = Path(str(delivery.progress["pack"])) / name
        else:
            abort(404)
        return send_file(path, as_attachment=True, download_name=path.name)

    @app.post("/tasks/<id:delivery_id>/confirm")
    @requires()
    def task_confirm(delivery_id: int) -> Response:
        from kepubot.services.assisted import confirm

        try:
            confirm(g.service, g.user, delivery_id, url=request.form.get("url", ""), now=g.now)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        flash(text(g.lang, "done"), "ok")
        return redirect(url_for("task_page", delivery_id=delivery_id), 303)

    @app.post("/tasks/<id:delivery_id>/decline")
    @requires()
    def task_decline(delivery_id: int) -> Response:
        from kepubot.services.assisted import decline

        try:
            decline(
                g.service, g.user, delivery_id, reason=request.form.get("reason", ""), now=g.now
            )
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        flash(text(g.lang, "done"), "ok")
        return redirect(url_for("task_page", delivery_id=delivery_id), 303)

    @app.post("/tasks/<id:delivery_id>/metrics")
    @requires()
    def task_metrics(delivery_id: int) -> Response:
        """A published delivery's figures typed by a person (marked manual)."""
        from kepubot.queue.metrics import FIELDS
        from kepubot.services.assisted import enter_manually

        figures: dict[str, int | None] = {}
        for name in FIELDS:
            value = (request.form.get(name) or "").strip()
            if not value:
                figures[name] = None
            elif value.isdigit() and len(value) <= 15:
                figures[name] = int(value)
            else:
                raise InvalidInput(f"{name}: {value!r} must be a whole number (or left empty)")
        if all(v is None for v in figures.values()):
            raise InvalidInput("enter at least one figure")
        enter_manually(g.service, g.user, delivery_id, figures, now=g.now)
        flash(text(g.lang, "done"), "ok")
        return redirect(url_for("task_page", delivery_id=delivery_id), 303)
