"""Posts: the list, compose and edit with the live preview, a post with its previews and
actions, its audit trail, and its media."""

from __future__ import annotations

from datetime import timedelta
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
    url_for,
)
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput, KepubotError
from kepubot.models import POST_STATES, Post
from kepubot.queue import MAX_ROW_ID
from kepubot.services.postpause import ROLES as PAUSE_ROLES
from kepubot.states import TERMINAL_DELIVERY_STATES
from kepubot.web.app import requires, safe_next
from kepubot.web.forms import (
    PAGE_SIZE,
    UploadTooLarge,
    day_arg,
    html_of,
    local_midnight,
    media_urls,
    page_number,
    post_input,
    preview_view,
    tags_of,
    when_text,
)
from kepubot.web.labels import text
from kepubot.web.messages import translate
from kepubot.web.pages.bulk import outcome
from kepubot.web.previews import variants_from_form


def register(app: Flask) -> None:
    @app.get("/posts")
    @requires()
    def posts() -> str:
        from kepubot.services.posts import list_posts

        args = request.args
        state = args.get("state") or None
        if state and state not in POST_STATES:
            raise InvalidInput(f"state {state!r}: use one of {', '.join(POST_STATES)}")
        channel = args.get("channel") or None
        page = page_number()
        since, until = day_arg("since"), day_arg("until")
        rows = list_posts(
            g.service,
            state=state,
            channel=channel,
            author=args.get("author") or None,
            tag=args.get("tag") or None,
            title=args.get("q") or None,
            created_from=local_midnight(since) if since else None,
            created_before=local_midnight(until + timedelta(days=1)) if until else None,
            limit=PAGE_SIZE + 1,
            offset=(page - 1) * PAGE_SIZE,
        )
        more = len(rows) > PAGE_SIZE
        filters = {k: v for k, v in args.items() if k not in ("page", "lang") and v}
        return render_template(
            "posts.html",
            rows=rows[:PAGE_SIZE],
            # paused posts (docs/delivery.md §18): one lookup by key for the page's rows
            paused_posts=g.service.store.post_pauses.among(p.id for p in rows[:PAGE_SIZE]),
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
        from kepubot.services.posts import create_post

        if request.method == "GET":
            return _compose(None, {}, None)
        try:
            data, cleanup = post_input(request.form, request.files, new=True)
        except UploadTooLarge as exc:
            return _compose(None, request.form, str(exc), status=413)
        data.variants = variants_from_form(request.form, None)
        data.where["variants"] = text(g.lang, "variant")
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
        from kepubot.services.posts import edit_post, get_post

        post = get_post(g.service, post_id)
        if request.method == "GET":
            return _compose(post, {}, None)
        try:
            data, cleanup = post_input(request.form, request.files, new=False)
        except UploadTooLarge as exc:
            return _compose(post, request.form, str(exc), status=413)
        data.variants = variants_from_form(request.form, post.variants)
        data.where["variants"] = text(g.lang, "variant")
        try:
            edit_post(g.service, g.user, post_id, data, now=g.now)
        except InvalidInput as exc:
            return _compose(post, request.form, translate(str(exc), g.lang), status=400)
        finally:
            cleanup()
        return _saved(post_id)

    def _saved(post_id: int) -> Response:
        """After a save: submit too when the editor asked, then show the post."""
        from kepubot.services.posts import submit

        if request.form.get("submit_now"):
            from kepubot.services.posts import get_post

            before = get_post(g.service, post_id)
            try:
                submit(g.service, g.user, [post_id], now=g.now)
            except KepubotError as exc:
                flash(translate(str(exc), g.lang), "error")
                return redirect(url_for("post_show", post_id=post_id))
            _flash_warnings(post_id)
            # what happened: saved and sent to the first review level
            flash(
                text(g.lang, "saved") + outcome("submit", before, get_post(g.service, post_id)),
                "ok",
            )
            return redirect(url_for("post_show", post_id=post_id), code=303)
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
            "at": _form_time(post.scheduled_at, g.service.tz) if post and post.scheduled_at else "",
            "sources": [f"{s.title}|{s.url or 'doi:' + s.doi}" for s in post.sources]
            if post
            else [],
        }
        if form:
            values.update(
                {k: form.get(k, "") for k in ("title", "body", "summary", "link", "tags")}
            )
            values["channels"] = form.getlist("channels")
            values["sources"] = [v for v in form.getlist("sources") if v.strip()]
            values["when"] = form.get("when", "now")
            values["at"] = form.get("at", "")
            values["uploaded"] = form.getlist("uploaded")
        channels = {name: ch.type_name() for name, ch in g.service.channels.items()}
        # the preview is drawn on the page itself too (without a script it is the only one,
        # and it carries the per-channel versions' fields)
        variants = variants_from_form(form, post.variants if post else None) if form else None
        if variants is None:
            variants = dict(post.variants) if post else {}
        page = render_template(
            "compose.html",
            post=post,
            values=values,
            error=error,
            channels=channels,
            **_live_context(post, values, variants),
        )
        return Response(page, status=status, mimetype="text/html")

    @app.post("/preview")
    @requires("editor")
    def live_preview() -> str:
        from kepubot.services.posts import get_post

        form = request.form
        base = None
        raw_id = form.get("post_id", "")
        if raw_id.isdigit() and int(raw_id) <= MAX_ROW_ID:
            base = get_post(g.service, int(raw_id))
        variants = variants_from_form(form, base.variants if base else None)
        if variants is None:
            variants = dict(base.variants) if base else {}
        values: dict[str, Any] = {
            k: form.get(k, "") for k in ("title", "body", "summary", "link", "tags")
        }
        values["channels"] = form.getlist("channels")
        values["uploaded"] = form.getlist("uploaded")
        values["pending"] = form.getlist("pending")
        return render_template("_preview.html", **_live_context(base, values, variants))

    def _live_context(
        base: Post | None, values: dict[str, Any], variants: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        """What _preview.html draws for text still being typed: the body, each channel's
        preview, and each channel's own version (its fields next to its preview)."""
        from kepubot.preview import preview_unsaved

        items = preview_unsaved(
            g.service,
            author=g.user,
            title=values.get("title", ""),
            body=values.get("body", ""),
            summary=values.get("summary", ""),
            link=values.get("link", ""),
            tags=tags_of(values.get("tags", "")),
            channels=list(values.get("channels") or []),
            base=base,
            variants=variants,
        )
        from kepubot.preview import finding_json
        from kepubot.proofread import check

        fields = {k: values.get(k, "") for k in ("title", "summary", "body")}
        for channel, overrides in variants.items():
            for key, value in overrides.items():
                if key in ("title", "summary", "body") and isinstance(value, str):
                    fields[f"variants.{channel}.{key}"] = value
        from kepubot.bodyimages import attached_names, missing_image_problems

        # images the body shows by a name the post will not have (docs/architecture.md §15.2):
        # its saved media, the dropped uploads and the files chosen but not yet saved
        names = attached_names(base.media if base else [])
        names |= {u.partition("|")[2] for u in values.get("uploaded") or []}
        names |= set(values.get("pending") or [])
        names.discard("")
        missing = missing_image_problems(values.get("body", ""), names)
        return {
            "missing_images": [translate(line, g.lang) for line in missing],
            # 三校 findings of the text being typed (docs/architecture.md §13)
            "findings": [finding_json(f, g.lang) for f in check(fields, g.service.misused_words)],
            "body_html": html_of(
                values.get("body", ""),
                media_urls(base.media if base else [], values.get("uploaded")),
            ),
            "items": preview_view(items, base),
            "variant_form": True,
            "variants": variants,
        }

    @app.get("/posts/<id:post_id>")
    @requires()
    def post_show(post_id: int) -> str:
        from kepubot.preview import finding_json, preview_items
        from kepubot.proofread import findings_for
        from kepubot.queue.metrics import FIELDS
        from kepubot.services.posts import (
            accepted_words,
            get_post,
            review_refusal,
            reviews_of,
            warnings_of,
        )

        service = g.service
        post = get_post(service, post_id)
        refusal = None
        if post.state == "in_review":
            refusal = review_refusal(service, g.user, post)
        accepted = accepted_words(service, post)
        shown_deliveries = service.store.deliveries.for_post(post_id)
        return render_template(
            "post.html",
            post=post,
            body_html=html_of(post.body, media_urls(post.media)),
            reviews=reviews_of(service, post_id),
            deliveries=shown_deliveries,
            items=preview_view(preview_items(service, post, post.channels), post),
            # titled as what was sent once a channel has published it
            sent=any(d.state == "published" for d in shown_deliveries),
            review_refusal=refusal,
            # the role the post's level needs (a custom one such as expert), §4.2
            review_role=service.config.level_role(post.review_level),
            # warn words: accepted in this round, and those a reviewer must still accept (§4.3)
            accepted=accepted,
            warnings=[h for h in warnings_of(service, post) if h.word not in accepted],
            # 三校 findings; the final level ticks each one (docs/architecture.md §13)
            findings=[finding_json(f, g.lang) for f in findings_for(service, post)],
            final_level=post.review_level >= len(service.config.review_levels),
            missing_images=_missing_images(post),
            # the latest reach figures of each delivery (docs/architecture.md §15.3)
            figures=service.store.metrics.latest_for_post(post_id),
            figure_fields=FIELDS,
            # paused (docs/delivery.md §18): who may pause or resume it, and what is left
            post_pause=service.store.post_pauses.get(post_id),
            may_pause=post.author == g.user or bool(service.roles(g.user) & PAUSE_ROLES),
            terminal_states=sorted(TERMINAL_DELIVERY_STATES),
        )

    @app.post("/posts/<id:post_id>/<action>")
    @requires()
    def post_action(post_id: int, action: str) -> Response:
        from kepubot.services import posts as workflow

        service, form = g.service, request.form
        before = workflow.get_post(service, post_id)
        if action == "submit":
            workflow.submit(service, g.user, [post_id], now=g.now, comment=form.get("comment", ""))
            _flash_warnings(post_id)
        elif action == "approve":
            accept = None
            if form.get("accept_warnings"):  # the review form's checkbox and its reason
                accept = workflow.Acceptance(reason=form.get("accept_reason", ""), all=True)
            workflow.approve(
                service,
                g.user,
                [post_id],
                now=g.now,
                comment=form.get("comment", ""),
                seen=_seen(post_id, form),
                accept=accept,
                ack_proofreading=form.getlist("ack_finding"),
            )
        elif action == "reject":
            workflow.reject(
                service,
                g.user,
                [post_id],
                reason=form.get("reason", ""),
                now=g.now,
                seen=_seen(post_id, form),
            )
        elif action == "schedule":
            at, next_slot = when_text(form)
            workflow.schedule(service, g.user, post_id, at=at, next_slot=next_slot, now=g.now)
        elif action == "cancel":
            workflow.cancel(service, g.user, post_id, now=g.now)
        elif action in ("pause", "resume"):  # docs/delivery.md §18
            from kepubot.services import postpause

            if action == "pause":
                postpause.pause(
                    service, g.user, [post_id], reason=form.get("reason", ""), now=g.now
                )
            else:
                postpause.resume(service, g.user, [post_id], now=g.now)
        else:
            abort(404)
        flash(outcome(action, before, workflow.get_post(service, post_id)), "ok")
        back = form.get("back")
        target = safe_next(back) if back else url_for("post_show", post_id=post_id)
        return redirect(target, code=303)

    @app.get("/posts/<id:post_id>/audit")
    @requires()
    def post_audit(post_id: int) -> str:
        from kepubot.events import sentence
        from kepubot.services.posts import get_post

        store = g.service.store
        post = get_post(g.service, post_id)
        rows = store.audit.rows_for_post(post_id)
        channels = {d.id: d.channel for d in store.deliveries.for_post(post_id)}
        users = g.service.config.data.users

        def name_of(user: str) -> str:
            return (users[user].name or user) if user in users else user

        # each event as a sentence ("李审核 于 12-05 17:38 通过初审"), docs/architecture.md §15.5
        said = {
            r.id: sentence(
                r,
                language=g.lang,
                tz=g.service.tz,
                name_of=name_of,
                channel_of=lambda i: channels.get(i or 0, ""),
            )
            for r in rows
        }
        return render_template("audit.html", post=post, rows=rows, said=said)

    @app.get("/media/<path:relative>")
    @requires()
    def media(relative: str) -> Response:
        path = g.service.media.stored(relative)
        if path is None:
            abort(404)
        return send_file(path, max_age=3600)


def _missing_images(post: Post) -> list[str]:
    """Images the body shows that the post does not attach, in the reader's language
    (the same check the submit makes, docs/architecture.md §15.2)."""
    from kepubot.bodyimages import attached_names, missing_image_problems

    names = attached_names(post.media)
    lines = missing_image_problems(post.body, names)
    for channel, overrides in post.variants.items():
        if isinstance(overrides.get("body"), str):
            lines += missing_image_problems(overrides["body"], names, f"variants.{channel}.body")
    return [translate(line, g.lang) for line in lines]


def _flash_warnings(post_id: int) -> None:
    """After a submit: each warn sensitive word, which a reviewer must accept with a reason
    (docs/architecture.md §4.3); the submit went through."""
    from kepubot.services.posts import get_post, warnings_of

    for hit in warnings_of(g.service, get_post(g.service, post_id)):
        flash(translate(hit.describe(), g.lang), "error warning")


def _seen(post_id: int, form: Any) -> dict[int, Any]:
    """The content hash and level the review form showed (docs/architecture.md §4.6): the
    decision commits only if the post still has both. A request without them (a script, not
    the page's form) is decided on the post as it is."""
    from kepubot.services.posts import Seen

    level = (form.get("level") or "").strip()
    if level and not level.isdigit():
        raise InvalidInput(f"level {level!r}: not a review level number; reload the post page")
    return {
        post_id: Seen(
            content_hash=(form.get("content_hash") or "").strip() or None,
            level=int(level) if level else None,
        )
    }


def _form_time(when: Any, tz: Any) -> str:
    """A stored time as the compose form's datetime-local value; raw when it cannot be shown
    in the configured zone (an old out-of-range row), so the page still opens."""
    from kepubot.timeutil import raw, to_local

    local = to_local(when, tz)
    return local.strftime("%Y-%m-%dT%H:%M") if local is not None else raw(when)
