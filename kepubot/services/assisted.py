"""Assisted publishing tasks (docs/delivery.md §17): who may confirm or decline a delivery
waiting for a person (待人工发布) or type its figures, and what each needs. The rows are
kepubot/queue/assisted.py (docs/architecture.md §17)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from kepubot.errors import InvalidTransition, NotAllowed
from kepubot.models import Delivery, MetricSnapshot
from kepubot.queue.assisted import STATE_LABEL_ZH

if TYPE_CHECKING:
    from kepubot.app import App


def is_task(delivery: Delivery) -> bool:
    return delivery.state == "awaiting_person"


def assignees(app: App, channel: str) -> list[str]:
    settings = getattr(app.channels.get(channel), "settings", None)
    return list(getattr(settings, "assignees", []) or [])


def may_act(app: App, actor: str, channel: str) -> bool:
    from kepubot.app import holds

    return actor in assignees(app, channel) or holds(app.roles(actor), "operator")


def _require(app: App, actor: str, delivery: Delivery, action: str) -> None:
    if not may_act(app, actor, delivery.channel):
        raise NotAllowed(
            f"{action} needs the operator role or being one of the assignees of channel"
            f" {delivery.channel!r}; user {actor!r} is neither"
        )


def _task(app: App, delivery_id: int) -> Delivery:
    delivery = app.store.deliveries.get(delivery_id)
    if not is_task(delivery):
        if delivery.state == "published" and delivery.progress.get("awaiting_person"):
            raise InvalidTransition(
                f"delivery {delivery_id} was already confirmed as published at"
                f" {delivery.remote_url}; nothing changed"
            )
        raise InvalidTransition(
            f"delivery {delivery_id} is {delivery.state}; only a delivery waiting for a person"
            f" ({STATE_LABEL_ZH}) can be confirmed or declined"
        )
    return delivery


def confirm(app: App, actor: str, delivery_id: int, *, url: str, now: datetime) -> Delivery:
    """awaiting_person (待人工发布) -> published with the URL a person published it at, once."""
    url = url.strip()
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise ValueError(f"--url {url!r} must be the http(s) address of the published post")
    store = app.store
    _require(app, actor, store.deliveries.get(delivery_id), "confirming a task")
    with store.transaction():
        delivery = _task(app, delivery_id)
        store.assisted.record_confirmed(delivery, actor=actor, url=url, now=now)
    return store.deliveries.get(delivery_id)


def decline(app: App, actor: str, delivery_id: int, *, reason: str, now: datetime) -> Delivery:
    """awaiting_person (待人工发布) -> failed, with the person's reason (an operator may retry)."""
    reason = reason.strip()
    if not reason:
        raise ValueError("--reason must say why the post could not be published")
    store = app.store
    _require(app, actor, store.deliveries.get(delivery_id), "declining a task")
    with store.transaction():
        delivery = _task(app, delivery_id)
        store.assisted.record_declined(delivery, actor=actor, reason=reason, now=now)
    return store.deliveries.get(delivery_id)


def enter_manually(
    app: App, actor: str, delivery_id: int, figures: dict[str, int | None], *, now: datetime
) -> None:
    """A person types a published delivery's figures (console form); marked 'manual'."""
    delivery = app.store.deliveries.get(delivery_id)
    _require(app, actor, delivery, "entering figures")
    if delivery.state != "published":
        raise InvalidTransition(
            f"delivery {delivery_id} is {delivery.state}; figures belong to published deliveries"
        )
    with app.store.transaction():
        app.store.metrics.store_snapshot(
            delivery_id,
            MetricSnapshot(**figures),
            now=now,
            source="manual",
            actor=actor,
        )
