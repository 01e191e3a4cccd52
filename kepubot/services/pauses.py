"""Emergency stop (docs/operations.md §13) and blackout dates (docs/delivery.md §16): pausing
and resuming channels, with the audit, and the configured days on which a channel publishes
nothing. The pause rows are kepubot/queue/pauses.py (docs/architecture.md §17); the role check
and the alert are kepubot/bot/stop.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kepubot.errors import InvalidTransition
from kepubot.queue.pauses import ALL
from kepubot.timeutil import to_db

if TYPE_CHECKING:
    from kepubot.app import App


def pause(
    app: App,
    *,
    channels: Iterable[str],
    reason: str,
    actor: str,
    now: datetime,
) -> list[str]:
    """Pause the named channels (none named: every channel). Returns the scopes newly paused;
    pausing what is already paused keeps the first reason and says so."""
    scopes = sorted(set(channels)) or [ALL]
    added = []
    store = app.store
    with store.transaction():
        for scope in scopes:
            if store.pauses.add(scope, reason=reason, actor=actor, now=now):
                added.append(scope)
        if added:
            store.audit.append(
                at=to_db(now),
                actor=actor,
                action="channels.paused",
                detail={"scopes": added, "reason": reason},
            )
    return added


def resume(app: App, *, channels: Iterable[str], actor: str, now: datetime) -> list[str]:
    """Lift the named pauses (none named: every pause). Resuming a channel while every channel
    is paused is refused: the stop of all channels must be lifted by name (no --channel)."""
    names = sorted(set(channels))
    store = app.store
    with store.transaction():
        current = store.pauses.paused_scopes()
        if not current:
            raise InvalidTransition("nothing is paused")
        if names:
            missing = [n for n in names if n not in current]
            if missing and ALL in current:
                raise InvalidTransition(
                    "every channel is paused; run `kepubot resume` without --channel to lift it"
                )
            if missing:
                raise InvalidTransition(f"not paused: {', '.join(missing)}")
            scopes = names
        else:
            scopes = sorted(current)
        for scope in scopes:
            store.pauses.lift(scope)
        store.audit.append(
            at=to_db(now),
            actor=actor,
            action="channels.resumed",
            detail={"scopes": scopes},
        )
    return scopes


def describe(scope: str, language: str = "zh") -> str:
    if scope == ALL:
        return "全部渠道" if language == "zh" else "every channel"
    return scope


# --- blackout dates -------------------------------------------------------------------------


def parse_dates(values: Iterable[str]) -> list[date]:
    out = []
    for value in values:
        try:
            out.append(date.fromisoformat(value))
        except ValueError:
            raise ValueError(f"blackout date {value!r} must be YYYY-MM-DD") from None
    return sorted(set(out))


def blackout_days(config: Any, channel: str | None) -> set[date]:
    """Whole days (in the configured zone) on which ``channel`` publishes nothing:
    ``[schedule] blackout_dates`` plus the channel's own ``blackout_dates``."""
    days = set(parse_dates(getattr(getattr(config.data, "schedule", None), "blackout_dates", [])))
    if channel is not None:
        section = config.data.channels.get(channel)
        extra = getattr(section, "blackout_dates", None) if section is not None else None
        if extra is None and section is not None:
            extra = (section.model_extra or {}).get("blackout_dates")
        days |= set(parse_dates(extra or []))
    return days


def in_blackout_day(config: Any, channel: str, now: datetime, tz: ZoneInfo) -> bool:
    return now.astimezone(tz).date() in blackout_days(config, channel)


def blacked_out_channels(
    config: Any, channels: Iterable[str], now: datetime, tz: ZoneInfo
) -> set[str]:
    """Channels whose today (in ``tz``) is a blackout date: the claim skips them, so what is
    due waits until the day ends."""
    return {name for name in channels if in_blackout_day(config, name, now, tz)}
