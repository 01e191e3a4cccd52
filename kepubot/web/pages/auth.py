"""Signing in and out."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from flask import (
    Flask,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from kepubot.web.app import safe_next
from kepubot.web.labels import text

log = logging.getLogger(__name__)


def register(app: Flask) -> None:
    @app.get("/")
    def index() -> Response:
        return redirect(url_for("posts"))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        from kepubot.services import accounts

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
                mimetype="text/html",
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
                mimetype="text/html",
            )
        log.info("%s signed in from %s", name, address)
        token = g.service.store.accounts.start_session(name, now=g.now, hours=web.session_hours)
        lang = session.get("lang")
        session.clear()  # a fresh session: no fixation
        session.permanent = True
        session.update(user=name, sid=token, csrf=secrets.token_urlsafe(32))
        if lang:
            session["lang"] = lang
        return redirect(safe_next(next_url))

    @app.post("/logout")
    def logout() -> Response:
        token = session.get("sid")
        if isinstance(token, str):
            # ended on the server: a copy of this cookie no longer signs anyone in
            g.service.store.accounts.end_session(token, now=g.now)
        lang = session.get("lang")
        session.clear()
        if lang:
            session["lang"] = lang
        return redirect(url_for("login"))
