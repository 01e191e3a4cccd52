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
    return deliveries.operator_resolve(
        app.conn, delivery_id=delivery_id, actor=actor, now=now, published=published
    )
