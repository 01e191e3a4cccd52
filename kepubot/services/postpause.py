"""Pausing and resuming posts (docs/delivery.md §18).

A paused post's deliveries are not claimed until it is resumed: a send already in flight
finishes, nothing queued is changed (its time is kept; an overdue delivery goes when the post
is resumed). Pausing or resuming several posts is all or none, every refusal listed, as the
other bulk actions of the workflow. Allowed to those who may schedule or cancel a post: its
author, a reviewer, an operator, an admin. Each change is audited (``post.paused``,
``post.resumed``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from kepubot.errors import InvalidInput, NotAllowed, NotFound
from kepubot.states import TERMINAL_DELIVERY_STATES

if TYPE_CHECKING:
    from kepubot.app import App
    from kepubot.models import Post

#: besides a post's author, who may pause and resume it (the union of who schedules a post
#: and who cancels it)
ROLES = frozenset({"reviewer", "operator", "admin"})


def pause(app: App, actor: str, ids: list[int], *, reason: str = "", now: datetime) -> list[int]:
    """Pause the posts, all or none; returns their ids."""
    reason = reason.strip()
    store = app.store

    def step(post: Post) -> None:
        _check_actor(app, actor, post, "pauses")
        if post.state == "cancelled":
            raise NotAllowed(f"post {post.id} is cancelled; there is nothing to pause")
        held = store.post_pauses.get(post.id)
        if held is not None:
            raise NotAllowed(f"post {post.id} is already paused (by {held['paused_by']})")
        rows = store.deliveries.for_post(post.id)
        if rows and all(d.state in TERMINAL_DELIVERY_STATES for d in rows):
            raise NotAllowed(f"post {post.id} has nothing left to send; there is nothing to pause")
        store.post_pauses.add(post_id=post.id, reason=reason, actor=actor, now=now)

    return _batch(app, ids, step)


def resume(app: App, actor: str, ids: list[int], *, now: datetime) -> list[int]:
    """Resume paused posts, all or none; returns their ids."""
    store = app.store

    def step(post: Post) -> None:
        _check_actor(app, actor, post, "resumes")
        if store.post_pauses.get(post.id) is None:
            raise NotAllowed(f"post {post.id} is not paused")
        store.post_pauses.remove(post_id=post.id, actor=actor, now=now)

    return _batch(app, ids, step)


def _check_actor(app: App, actor: str, post: Post, doing: str) -> None:
    if post.author != actor and not app.roles(actor) & ROLES:
        raise NotAllowed(
            f"post {post.id} was written by {post.author}; only its author, a reviewer or an"
            f" operator {doing} it"
        )


def _batch(app: App, ids: list[int], step: Callable[[Post], None]) -> list[int]:
    """``step`` on every post in one transaction; if any is refused, none changes and every
    refusal is listed (one line each)."""
    from kepubot.services.posts import get_post

    if not ids:
        raise InvalidInput("give at least one post id")
    unique = list(dict.fromkeys(ids))
    refusals: list[str] = []
    with app.store.transaction():
        for post_id in unique:
            try:
                step(get_post(app, post_id))
            except (NotAllowed, InvalidInput, NotFound) as exc:
                refusals.append(str(exc))
        if refusals:
            raise NotAllowed("\n".join(refusals))
    return unique
