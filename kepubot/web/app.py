"""The console's Flask application: sessions, CSRF, roles, language and error pages.

No workflow rule lives here: pages call the service layer (``kepubot.queue``,
``kepubot.reports``, ``kepubot.preview``) with the signed-in user as the actor, and the
service layer decides. This module only knows who is signed in and turns refusals into pages.
"""

from __future__ import annotations

import hmac
import io
import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, g, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from kepubot.app import App, holds
from kepubot.config import Config
from kepubot.errors import ConfigError, InvalidInput, KepubotError, NotAllowed, NotFound
from kepubot.timeutil import utcnow
from kepubot.web.labels import channel_type_label, roles_text, text
from kepubot.web.messages import translate

log = logging.getLogger(__name__)

MB = 1024 * 1024
# the pages that take uploaded files (a signed-in editor's compose form); every other request
# gets [web] max_form_mb
UPLOAD_ENDPOINTS = frozenset({"post_new", "post_edit", "media_upload"})
# the methods that change nothing; every other method needs the session's CSRF token
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class HeadAsGet:
    """WSGI middleware: a HEAD request is run as a GET without its body, and the answer's
    body is dropped.

    Flask routes a HEAD to a view that also accepts GET, and views tell GET from "a form was
    sent" by ``request.method == "GET"``; a HEAD with a form body would otherwise run the
    form's code (without a CSRF check, since HEAD is a safe method). Here no view ever sees
    HEAD, so HEAD has exactly the effects of GET: none.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD", "").upper() != "HEAD":
            return self.app(environ, start_response)
        environ = {
            **environ,
            "REQUEST_METHOD": "GET",
            "CONTENT_LENGTH": "0",
            "wsgi.input": io.BytesIO(),
        }
        environ.pop("CONTENT_TYPE", None)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        result = self.app(environ, start_response)
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return []


# HMAC-SHA1 (itsdangerous, Flask's cookie signer) wants a key at least as long as its output;
# 32 bytes is what the generated key file holds and what a guessing attacker cannot exhaust
MIN_SECRET_KEY_BYTES = 32


def _secret_key(config: Config) -> bytes:
    from kepubot.keyfile import read_or_create

    configured = config.data.web.secret_key
    if configured is not None:
        key = configured.get_secret_value().encode("utf-8")
        if len(key) < MIN_SECRET_KEY_BYTES:
            raise ConfigError(
                f"{config.path.name}: web.secret_key has {len(key)} bytes; it needs at least"
                f" {MIN_SECRET_KEY_BYTES} random bytes (for example the output of"
                " `python -c 'import secrets; print(secrets.token_hex(32))'`), or remove it to"
                " use the generated web_secret.key"
            )
        return key
    path = config.database_path.parent / "web_secret.key"
    key = read_or_create(path)
    if len(key) < MIN_SECRET_KEY_BYTES:
        raise ConfigError(
            f"{path} holds a {len(key)}-byte key; at least {MIN_SECRET_KEY_BYTES} are needed:"
            " remove the file and a new key is made"
        )
    return key


class Services:
    """One ``App`` (service context) per server thread, all sharing one ``Store``, which gives
    each thread its own connection (docs/architecture.md §11)."""

    def __init__(self, config: Config) -> None:
        from kepubot.queue.store import Store

        self.config = config
        self.store = Store.for_config(config)
        self._local = threading.local()

    def get(self) -> App:
        app: App | None = getattr(self._local, "app", None)
        if app is None:
            app = App(self.config, store=self.store)
            app.channels  # noqa: B018 — validate channel settings once per thread
            self._local.app = app
        return app


def create_app(config: Config, *, clock: Callable[[], datetime] = utcnow) -> Flask:
    """The console for ``config``. ``clock`` gives "now" (tests pass their own)."""
    web = config.data.web
    flask = Flask(__name__)
    flask.config.update(
        SECRET_KEY=_secret_key(config),
        SESSION_COOKIE_NAME="kepubot_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=web.session_hours),
        # the small limit; a signed-in editor's compose form gets max_upload_mb (below)
        MAX_CONTENT_LENGTH=int(web.max_form_mb * MB),
        # each non-file field of a multipart form (the body of a post is one)
        MAX_FORM_MEMORY_SIZE=int(web.max_form_mb * MB),
        MAX_FORM_PARTS=200,
        TEMPLATES_AUTO_RELOAD=False,
    )
    services = Services(config)
    # migrate and check the channel settings before the first request, on this thread
    services.store.migrate()
    services.get()
    # the per-thread service contexts, for tools that look inside (bench/web_render.py
    # captures the SQL a page runs on them)
    flask.extensions["kepubot"] = services

    @flask.before_request
    def _load_user() -> Response | None:
        g.lang = session.get("lang") or config.data.kepubot.language
        if request.args.get("lang") in ("zh", "en"):
            g.lang = session["lang"] = request.args["lang"]
        g.user = None
        g.roles = set()
        g.now = clock()
        service = services.get()
        service.language = g.lang
        g.service = service
        user = session.get("user")
        if user:
            roles = config.roles_of(user)
            token = session.get("sid")
            if (
                roles is None
                or not isinstance(token, str)
                or service.store.accounts.session_user(token, now=g.now, hours=web.session_hours)
                != user
            ):
                # removed from the config, or the session ended on the server: signed out,
                # a new password, an admin's "sign out everywhere", or older than
                # session_hours (the cookie's own expiry aside)
                session.clear()
            else:
                g.user, g.roles = user, roles
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        if (
            request.endpoint in UPLOAD_ENDPOINTS
            and request.mimetype == "multipart/form-data"
            and g.user is not None
            and has_role("editor")
        ):
            # only then: a stranger's big body is refused from its Content-Length, unread
            request.max_content_length = int(web.max_upload_mb * MB)
        if request.method not in SAFE_METHODS:
            sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
            if not hmac.compare_digest(sent.encode(), session["csrf"].encode()):
                return error_page(400, text(g.lang, "csrf"))
        return None

    @flask.after_request
    def _headers(response: Response) -> Response:
        # img-src blob:: a chosen or dropped image previews at once from an object URL
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline';"
            " img-src 'self' data: blob:; object-src 'none'; base-uri 'none';"
            " form-action 'self'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "same-origin"
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @flask.template_filter("tr")
    def _translate(message: str) -> str:
        return translate(message, g.get("lang", "zh"))

    @flask.context_processor
    def _helpers() -> dict[str, Any]:
        from kepubot.timeutil import show

        tz = services.get().tz

        def when(value: Any) -> str:
            return show(value, tz) if value else "-"

        def waiting_review() -> int:
            from kepubot.services.posts import count_in_state

            return count_in_state(services.get(), "in_review")

        def paused_now() -> list[dict[str, Any]]:
            """What is paused, for the banner on every page (docs/operations.md §13)."""
            return services.get().store.pauses.paused()

        def may_retract() -> bool:
            from kepubot.services.retraction import may_retract as allowed

            return g.get("user") is not None and allowed(services.get(), g.user)

        def blackout_on(day: Any) -> list[str]:
            """Who publishes nothing on ``day`` ([schedule] or a channel's blackout_dates):
            ["*"] for every channel, else channel names (docs/delivery.md §16)."""
            from kepubot.services.pauses import blackout_days

            cfg = services.get().config
            if day in blackout_days(cfg, None):
                return ["*"]
            return [name for name in sorted(cfg.data.channels) if day in blackout_days(cfg, name)]

        from kepubot.queue.retraction import retraction_state, shown_state

        return {
            "paused_now": paused_now,
            "blackout_on": blackout_on,
            "may_retract": may_retract,
            "shown_state": shown_state,
            "retraction_state": retraction_state,
            "waiting_review": waiting_review,
            "t": lambda key, **values: text(g.lang, key, **values),
            "type_label": lambda type_name: channel_type_label(g.lang, type_name),
            "roles_text": lambda given: roles_text(g.lang, given),
            "lang": g.get("lang", "zh"),
            "user": g.get("user"),
            "roles": g.get("roles", set()),
            "csrf_token": session.get("csrf", ""),
            "when": when,
            "levels": config.review_levels,
            # roles that review some level: reviewer and custom ones such as expert
            "review_roles": sorted({"reviewer", *config.review_roles}),
            "user_name": lambda name: (
                (config.data.users[name].name or name) if name in config.data.users else name
            ),
            "has_role": has_role,
            "lang_url": lang_url,
        }

    @flask.errorhandler(KepubotError)
    def _service_error(exc: KepubotError) -> Response:
        status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, NotAllowed) else 400
        if not isinstance(exc, NotAllowed | InvalidInput):
            status = 500
            log.warning("console request failed: %s", exc)
        return error_page(status, translate(str(exc), g.get("lang", "zh")))

    @flask.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        lang = g.get("lang", "zh")
        if request.endpoint in UPLOAD_ENDPOINTS and g.get("user") is not None:
            message = text(
                lang,
                "too_large_upload",
                upload=f"{web.max_upload_mb:g}",
                image=f"{web.max_image_mb:g}",
                video=f"{web.max_video_mb:g}",
            )
        else:
            message = text(lang, "too_large", limit=f"{web.max_form_mb:g}")
        return error_page(413, message)

    @flask.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return error_page(exc.code or 500, exc.description or "")

    @flask.teardown_appcontext
    def _rollback(exc: BaseException | None) -> None:
        service = g.get("service")
        if service is not None:
            service.store.rollback_open()

    from kepubot.web import pages

    pages.register(flask)
    flask.wsgi_app = HeadAsGet(flask.wsgi_app)  # type: ignore[method-assign]
    if web.trusted_proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        flask.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            flask.wsgi_app, x_for=web.trusted_proxies, x_proto=web.trusted_proxies
        )
    return flask


def has_role(*wanted: str) -> bool:
    """Whether the signed-in user holds one of ``wanted`` (the service layer's rule)."""
    return holds(g.get("roles", set()), *wanted)


def lang_url(code: str) -> str:
    """This page in another language; after a form was sent (or for an unknown address),
    the posts list in that language."""
    endpoint = request.endpoint
    if request.method == "GET" and endpoint and endpoint != "static":
        values: dict[str, Any] = {k: v for k, v in request.args.items() if k != "lang"}
        values.update(request.view_args or {}, lang=code)
        try:
            return url_for(endpoint, **values)
        except BuildError:
            pass
    return url_for("posts", lang=code)


def error_page(status: int, message: str) -> Response:
    lang = g.get("lang", "zh")
    title = {
        400: text(lang, "bad_input"),
        401: text(lang, "signed_out"),
        403: text(lang, "forbidden"),
        404: text(lang, "not_found"),
        413: text(lang, "too_large_title"),
    }.get(status, text(lang, "error"))
    return Response(
        render_template("error.html", status=status, title=title, message=message),
        status=status,
        mimetype="text/html",
    )


def requires(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Signed in (and, when ``roles`` are given, holding one of them or admin).

    Signed out: a GET goes to the sign-in page and comes back; anything else is a 401.
    The service layer checks the role again for every action it performs.
    """

    def wrap(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if g.user is None:
                if request.method == "GET":
                    return redirect(url_for("login", next=request.full_path.rstrip("?")))
                return error_page(401, text(g.lang, "signed_out"))
            if roles and not has_role(*roles):
                from kepubot.web.labels import role_label, roles_text

                joiner = " / " if g.lang == "en" else "」或「"
                return error_page(
                    403,
                    text(
                        g.lang,
                        "forbidden_roles",
                        need=joiner.join(role_label(g.lang, r) for r in roles),
                        user=g.user,
                        have=roles_text(g.lang, g.roles) or "-",
                    ),
                )
            return view(*args, **kwargs)

        return inner

    return wrap


def safe_next(target: str | None) -> str:
    """Only a path on this site (no scheme, no host, no protocol-relative //host)."""
    if not target:
        return url_for("posts")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("posts")
    if "\\" in target:
        return url_for("posts")
    return target


def serve(config: Config, *, host: str, port: int, echo: Callable[[str], None]) -> None:
    """Serve the console with waitress until interrupted."""
    from waitress import create_server

    flask = create_app(config)
    web = config.data.web
    server = create_server(
        flask,
        host=host,
        port=port,
        threads=web.threads,
        # a body longer than the largest the console takes is refused from its
        # Content-Length before it is read (waitress reads a body in full before the
        # application sees it); 1 MB over the limit leaves the console's own 413 page for
        # the bodies in between
        max_request_body_size=int((max(web.max_upload_mb, web.max_form_mb) + 1) * MB),
        max_request_header_size=64 * 1024,
    )
    bound_host, bound_port = server.effective_host, server.effective_port  # type: ignore[union-attr]
    if host not in ("127.0.0.1", "localhost", "::1") and not config.data.web.secure_cookies:
        log.warning(
            "the console listens on %s over plain HTTP: put it behind an HTTPS proxy and set"
            " [web] secure_cookies = true",
            host,
        )
    echo(f"kepubot console on http://{bound_host}:{bound_port}/ (Ctrl-C stops it)")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
