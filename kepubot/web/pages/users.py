"""Console users (admins): who can sign in, their live sessions, and "sign out everywhere"."""

from __future__ import annotations

from flask import Flask, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response

from kepubot.web.app import requires
from kepubot.web.labels import text


def register(app: Flask) -> None:
    @app.get("/users")
    @requires("admin")
    def users() -> str:
        service = g.service
        live = service.store.accounts.live_sessions(now=g.now)
        rows = [
            {
                "name": name,
                "display_name": section.name or "",
                "roles": sorted(section.roles),
                "password_set": service.store.accounts.has_password(name),
                "sessions": live.get(name, 0),
            }
            for name, section in service.config.data.users.items()
        ]
        return render_template("users.html", rows=rows)

    @app.post("/users/<name>/signout")
    @requires("admin")
    def user_sign_out(name: str) -> Response:
        from kepubot.services import accounts

        ended = accounts.sign_out_everywhere(g.service, g.user, name, now=g.now)
        flash(text(g.lang, "signed_out_everywhere", user=name, sessions=ended), "ok")
        return redirect(url_for("users"), code=303)
