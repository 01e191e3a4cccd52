"""Bulk work on the posts list and the review queue (docs/architecture.md §15.1): the ticked
posts are submitted, approved, rejected (one reason for all), scheduled, cancelled, paused or
resumed in one service-layer call, all or none; every refusal is listed.

Each approval and rejection stays bound to what the reviewer saw in the list: the content hash
and level of every ticked row travel with the form (docs/architecture.md §4.6)."""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput, NotAllowed
from kepubot.queue import MAX_ROW_ID
from kepubot.web.app import requires, safe_next
from kepubot.web.forms import when_text
from kepubot.web.labels import text
from kepubot.web.messages import translate

BULK_ACTIONS = ("submit", "approve", "reject", "schedule", "cancel", "pause", "resume")


def register(app: Flask) -> None:
    @app.post("/posts/bulk")
    @requires()
    def posts_bulk() -> Response:
        from kepubot.services import posts as workflow

        form = request.form
        back = safe_next(form.get("back") or url_for("posts"))
        action = form.get("bulk_action", "")
        if action not in BULK_ACTIONS:
            raise InvalidInput(f"bulk action {action!r}: choose one of {', '.join(BULK_ACTIONS)}")
        ids = ticked_ids(form)
        if not ids:
            raise InvalidInput("tick at least one post")
        service, now = g.service, g.now
        try:
            if action == "submit":
                workflow.submit(service, g.user, ids, now=now)
            elif action == "approve":
                workflow.approve(
                    service,
                    g.user,
                    ids,
                    now=now,
                    comment=form.get("comment", ""),
                    seen=seen_of(form, ids),
                )
            elif action == "reject":
                workflow.reject(
                    service,
                    g.user,
                    ids,
                    reason=form.get("reason", ""),
                    now=now,
                    seen=seen_of(form, ids),
                )
            elif action == "schedule":
                at, next_slot = when_text(form)
                workflow.schedule_many(service, g.user, ids, at=at, next_slot=next_slot, now=now)
            elif action == "cancel":
                workflow.cancel_many(service, g.user, ids, now=now)
            else:  # pause or resume (docs/delivery.md §18); the reason field is shared
                from kepubot.services import postpause

                if action == "pause":
                    postpause.pause(service, g.user, ids, reason=form.get("reason", ""), now=now)
                else:
                    postpause.resume(service, g.user, ids, now=now)
        except (NotAllowed, InvalidInput) as exc:
            # nothing changed; each refusal on its own line
            flash(text(g.lang, "bulk_refused", count=len(ids)), "error")
            for line in str(exc).splitlines():
                flash(translate(line, g.lang), "error")
            return redirect(back, code=303)
        listed = (
            "、".join(f"#{i}" for i in ids) if g.lang != "en" else ", ".join(f"#{i}" for i in ids)
        )
        flash(text(g.lang, f"bulk_{action}", count=len(ids), ids=listed), "ok")
        return redirect(back, code=303)

    @app.post("/collect")
    @app.post("/posts/<id:post_id>/collect")
    @requires("manager", "operator")
    def collect_figures(post_id: int | None = None) -> Response:
        """立即采集 (docs/architecture.md §15.3): this post's figures now, or one pass over
        everything due."""
        from kepubot.bot.collect import collect_now

        result = collect_now(g.service, g.user, now=g.now, post_id=post_id)
        flash(
            text(
                g.lang,
                "did_collect",
                count=result["collected"],
                deliveries=result["deliveries"],
            ),
            "ok",
        )
        if result["failed"]:
            flash(text(g.lang, "collect_failed", failed=result["failed"]), "error")
        default = url_for("post_show", post_id=post_id) if post_id else url_for("reports")
        return redirect(safe_next(request.form.get("back") or default), code=303)


def ticked_ids(form: Any) -> list[int]:
    """The ticked rows' post ids, in order, each once."""
    ids: list[int] = []
    for raw in form.getlist("ids"):
        raw = raw.strip()
        if not raw.isdigit() or int(raw) > MAX_ROW_ID:
            raise InvalidInput(f"post id {raw!r}: not a post number; reload the page")
        ids.append(int(raw))
    return list(dict.fromkeys(ids))


def seen_of(form: Any, ids: list[int]) -> dict[int, Any]:
    """What the list showed of each ticked post: ``hash_<id>`` and ``level_<id>``. A row
    without them (a script, not the page) is decided on the post as it is."""
    from kepubot.services.posts import Seen

    seen: dict[int, Any] = {}
    for post_id in ids:
        level = (form.get(f"level_{post_id}") or "").strip()
        if level and not level.isdigit():
            raise InvalidInput(
                f"post {post_id}: level {level!r} is not a review level number; reload the page"
            )
        seen[post_id] = Seen(
            content_hash=(form.get(f"hash_{post_id}") or "").strip() or None,
            level=int(level) if level else None,
        )
    return seen


def outcome(action: str, before: Any, after: Any) -> str:
    """What an action on one post did, in words (not "完成"): ``before`` and ``after`` are
    the post as it was and as it is now."""
    levels = g.service.config.review_levels

    def name(level: int) -> str:
        return levels[level - 1] if 0 < level <= len(levels) else str(level)

    if action == "submit":
        return text(g.lang, "did_submit", level=name(after.review_level or 1))
    if action == "approve":
        if after.state == "in_review":
            return text(
                g.lang,
                "did_approve_next",
                level=name(before.review_level),
                next=name(after.review_level),
            )
        return text(g.lang, "did_approve_final", level=name(before.review_level))
    if action == "reject":
        return text(g.lang, "did_reject", level=name(before.review_level))
    return text(g.lang, f"did_{action}")
