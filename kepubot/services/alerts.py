"""Raising an alert once per window (docs/operations.md §4): the rule every part of kepubot
uses (the daemon's watchdog and engine, the emergency stop, the console), so that the same
alert key repeats at most once per ``[alerts] repeat_minutes``. Sending is
``kepubot.alerts.notify``; remembering what was sent is the store's (``store.ops``)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kepubot.app import App

log = logging.getLogger("kepubot.bot.watchdog")  # the name operators' log filters know


def urls_of(app: App) -> list[str]:
    """The configured alert addresses (secrets: never logged)."""
    return [u.get_secret_value() for u in app.config.data.alerts.urls]


def raise_alert(app: App, *, key: str, now: datetime, title: str, body: str) -> bool:
    """One alert, unless the same key fired within ``repeat_minutes``. Returns True if sent."""
    from kepubot.alerts import notify

    window = timedelta(minutes=app.config.data.alerts.repeat_minutes)
    if app.store.ops.alerted_since(key, now - window):
        return False
    app.store.ops.remember_alerts([key], now, f"{title}: {body}")
    log.error("ALERT %s — %s", title, body)
    notify(urls_of(app), title, body)
    return True
