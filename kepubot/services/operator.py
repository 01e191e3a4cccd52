"""What operators do to deliveries, with the role check, for the CLI and the console alike."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kepubot.app import App


def retry(app: App, actor: str, delivery_id: int, *, now: datetime) -> None:
    """failed -> queued (operator or admin)."""
    app.require_role(actor, "operator", action="retrying a delivery")
    app.store.deliveries.operator_retry(delivery_id=delivery_id, actor=actor, now=now)


def resolve(app: App, actor: str, delivery_id: int, *, now: datetime, published: str | None) -> str:
    """needs_attention -> published (a URL or id a person found) | queued (operator or admin)."""
    app.require_role(actor, "operator", action="resolving a delivery")
    if app.store.deliveries.get(delivery_id).kind == "retract":
        from kepubot.errors import InvalidTransition

        raise InvalidTransition(
            f"delivery {delivery_id} is a retraction; use --retracted or --not-retracted"
        )
    return app.store.deliveries.operator_resolve(
        delivery_id=delivery_id, actor=actor, now=now, published=published
    )


def resolve_retraction(
    app: App, actor: str, delivery_id: int, *, now: datetime, retracted: bool
) -> str:
    """A retraction in needs_attention -> retracted (a person removed it) | queued (operator
    or admin)."""
    app.require_role(actor, "operator", action="resolving a delivery")
    return app.store.retraction.operator_resolve(
        delivery_id=delivery_id, actor=actor, now=now, retracted=retracted
    )
