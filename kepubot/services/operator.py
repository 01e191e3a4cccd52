"""What operators do to deliveries, with the role check, for the CLI and the console alike."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from kepubot.queue import deliveries

if TYPE_CHECKING:
    from kepubot.app import App


def retry(app: App, actor: str, delivery_id: int, *, now: datetime) -> None:
    """failed -> queued (operator or admin)."""
    app.require_role(actor, "operator", action="retrying a delivery")
    deliveries.operator_retry(app.conn, delivery_id=delivery_id, actor=actor, now=now)


def resolve(app: App, actor: str, delivery_id: int, *, now: datetime, published: str | None) -> str:
    """needs_attention -> published (a URL or id a person found) | queued (operator or admin)."""
    app.require_role(actor, "operator", action="resolving a delivery")
    if deliveries.get(app.conn, delivery_id).kind == "retract":
        from kepubot.errors import InvalidTransition

        raise InvalidTransition(
            f"delivery {delivery_id} is a retraction; use --retracted or --not-retracted"
        )
    return deliveries.operator_resolve(
        app.conn, delivery_id=delivery_id, actor=actor, now=now, published=published
    )


def resolve_retraction(
    app: App, actor: str, delivery_id: int, *, now: datetime, retracted: bool
) -> str:
    """A retraction in needs_attention -> retracted (a person removed it) | queued (operator
    or admin)."""
    from kepubot.queue import retraction

    app.require_role(actor, "operator", action="resolving a delivery")
    return retraction.operator_resolve(
        app.conn, delivery_id=delivery_id, actor=actor, now=now, retracted=retracted
    )
