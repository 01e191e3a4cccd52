"""Retracting a published post (docs/delivery.md §14) and writing a correction (§15): who may,
what a retraction needs, what a correction starts from. The rows are kepubot/queue/retraction.py
(docs/architecture.md §17)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from kepubot.timeutil import to_db


def correction_header(original_title: str, published_at: str | None, language: str = "zh") -> str:
    if language == "en":
        return f"> **Correction**: this post corrects “{original_title}”.\n\n"
    return f"> **更正**：本文更正此前发布的《{original_title}》。\n\n"


def may_retract(app: Any, actor: str) -> bool:
    """A reviewer of the final level (its configured role) or an admin."""
    roles = app.roles(actor)
    final_role = app.config.level_role(len(app.config.review_levels))
    return "admin" in roles or final_role in roles


def retract_post(
    app: Any,
    actor: str,
    post_id: int,
    *,
    reason: str,
    now: datetime,
    channels: Iterable[str] | None = None,
) -> dict[str, list[str]]:
    from kepubot.errors import NotAllowed

    if not may_retract(app, actor):
        final_role = app.config.level_role(len(app.config.review_levels))
        raise NotAllowed(
            f"retracting post {post_id} needs the {final_role} role of the final review level"
            f" or admin; user {actor!r} has: {', '.join(sorted(app.roles(actor)))}"
        )
    if not reason.strip():
        raise NotAllowed("a retraction needs a reason: --reason 原因")
    names = list(channels or [])
    unknown = [c for c in names if c not in app.config.data.channels]
    if unknown:
        raise NotAllowed(f"--channel {', '.join(unknown)}: no such channel in the configuration")
    result: dict[str, list[str]] = app.store.retraction.start(
        post_id=post_id,
        reason=reason.strip(),
        actor=actor,
        now=now,
        channels=names or None,
    )
    return result


def correct_post(app: Any, actor: str, post_id: int, *, now: datetime, source: str = "cli") -> int:
    """A correction (更正) of ``post_id``: a new draft linked to the original, with its title,
    a correction header and the original body to edit; it is reviewed like any post."""
    from kepubot.services.posts import PostInput, create_post, get_post

    original = get_post(app, post_id)
    language = getattr(app, "language", "zh")
    title = original.title if original.title.startswith("更正") else f"更正：{original.title}"
    data = PostInput(
        title=title,
        body=correction_header(original.title, None, language) + original.body,
        summary=original.summary,
        tags=list(original.tags),
        channels=list(original.channels),
    )
    new_id: int = create_post(app, actor, data, now=now, source=source)
    with app.store.transaction():
        app.store.retraction.link_correction(new_id, post_id)
        app.store.audit.append(
            at=to_db(now),
            actor=actor,
            action="post.correction",
            post_id=new_id,
            detail={"correction_of": post_id},
        )
    return new_id
