"""The emergency stop (docs/operations.md §13) and retraction (docs/delivery.md §14) in the
console: the same service functions as `kepubot pause|resume` and `kepubot post retract`."""

from __future__ import annotations

from flask import Flask, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput
from kepubot.web.app import requires, safe_next
from kepubot.web.labels import text


def _back(default: str) -> str:
    return safe_next(request.form.get("back") or default)


def register(app: Flask) -> None:
    @app.post("/pause")
    @requires("operator")
    def pause_channels() -> Response:
        from kepubot.bot.stop import pause_channels as pause

        reason = (request.form.get("reason") or "").strip()
        if not reason:
            raise InvalidInput("请填写暂停原因（reason）")
        channels = [c for c in request.form.getlist("channel") if c]
        added = pause(g.service, g.user, channels, reason=reason, now=g.now)
        flash(text(g.lang, "done") if added else "已处于暂停状态。", "ok")
        return redirect(_back(url_for("deliveries_page")), 303)

    @app.post("/resume")
    @requires("operator")
    def resume_channels() -> Response:
        from kepubot.bot.stop import resume_channels as resume

        channels = [c for c in request.form.getlist("channel") if c]
        resume(g.service, g.user, channels, now=g.now)
        flash(text(g.lang, "done"), "ok")
        return redirect(_back(url_for("deliveries_page")), 303)

    @app.post("/posts/<id:post_id>/retract")
    @requires()
    def post_retract(post_id: int) -> Response:
        from kepubot.services.retraction import retract_post

        if request.form.get("confirm") != "yes":
            raise InvalidInput("撤回前请勾选确认（confirm）")
        reason = (request.form.get("reason") or "").strip()
        if not reason:
            raise InvalidInput("请填写撤回原因（reason）")
        retract_post(g.service, g.user, post_id, reason=reason, now=g.now)
        flash(text(g.lang, "done"), "ok")
        return redirect(url_for("post_show", post_id=post_id), 303)
