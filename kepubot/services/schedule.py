"""Posting slots: the next free ``posting_times`` slot of a channel, keeping a minimum gap
between two posts on the same channel and avoiding blackout windows. The due times already
taken are read through ``store.calendar`` (kepubot/queue/calendar.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kepubot.channels.base import ChannelSettings, parse_hhmm

if TYPE_CHECKING:
    from kepubot.queue.store import Store

_HORIZON_DAYS = 400


def _in_blackout(local: datetime, settings: ChannelSettings) -> datetime | None:
    """If ``local`` falls in a blackout window, the local time the window ends; else None."""
    minute = local.hour * 60 + local.minute
    for (sh, sm), (eh, em) in settings.blackout_windows():
        start, end = sh * 60 + sm, eh * 60 + em
        inside = start <= minute < end if start <= end else (minute >= start or minute < end)
        if inside:
            end_day = local.date()
            if start > end and minute >= start:
                end_day = end_day + timedelta(days=1)
            return datetime.combine(end_day, time(eh, em), tzinfo=local.tzinfo)
    return None


def _days(settings: ChannelSettings, dates: Iterable[date]) -> set[date]:
    """Whole blackout days (docs/delivery.md §16): the channel's and the ones passed in
    (``[schedule] blackout_dates``)."""
    days = set(dates)
    for item in getattr(settings, "blackout_dates", []) or []:
        days.add(date.fromisoformat(item))
    return days


def _after_blackout_days(local: datetime, days: set[date]) -> datetime | None:
    """If ``local`` falls on a blackout day, the local midnight after the run of such days."""
    if local.date() not in days:
        return None
    day = local.date()
    while day in days:
        day += timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=local.tzinfo)


def _conflict(
    store: Store, channel: str, candidate: datetime, gap: timedelta, post_id: int | None
) -> datetime | None:
    """The latest due time of another post's delivery within ``gap`` of ``candidate``."""
    if gap <= timedelta(0):
        return None
    return store.calendar.latest_due_between(
        channel, candidate - gap, candidate + gap, post_id=post_id
    )


def next_slot(
    store: Store,
    *,
    channel: str,
    settings: ChannelSettings,
    tz: ZoneInfo,
    now: datetime,
    post_id: int | None = None,
    dates: Iterable[date] = (),
) -> datetime:
    gap = timedelta(minutes=settings.min_gap_minutes)
    days = _days(settings, dates)
    if settings.posting_times:
        today = now.astimezone(tz).date()
        for offset in range(_HORIZON_DAYS):
            day = today + timedelta(days=offset)
            for slot in settings.posting_times:
                hour, minute = parse_hhmm(slot)
                local = datetime.combine(day, time(hour, minute), tzinfo=tz)
                candidate = local.astimezone(UTC)
                if candidate <= now or _in_blackout(local, settings) or day in days:
                    continue
                if _conflict(store, channel, candidate, gap, post_id) is None:
                    return candidate
        raise RuntimeError(f"no free posting slot on {channel} within {_HORIZON_DAYS} days")
    # No fixed times: as soon as possible, but keep the gap and skip blackout windows.
    candidate = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
    for _ in range(10_000):
        day_end = _after_blackout_days(candidate.astimezone(tz), days)
        if day_end is not None:
            candidate = day_end.astimezone(UTC)
            continue
        blackout_end = _in_blackout(candidate.astimezone(tz), settings)
        if blackout_end is not None:
            candidate = blackout_end.astimezone(UTC)
            continue
        clash = _conflict(store, channel, candidate, gap, post_id)
        if clash is None:
            return candidate
        candidate = clash + gap
    raise RuntimeError(f"no free posting slot on {channel}")


def slot_refusals(
    store: Store,
    *,
    channel: str,
    settings: ChannelSettings,
    tz: ZoneInfo,
    when: datetime,
    post_id: int | None,
    dates: Iterable[date] = (),
) -> list[str]:
    """Why an explicit publishing time ``when`` cannot be used on ``channel``: it falls in a
    blackout window, or another post's delivery on that channel is due within
    ``min_gap_minutes`` of it. Empty when the time is free. (``next_slot`` skips both; an
    explicit time is refused instead, so an editor is never silently moved elsewhere.)"""
    reasons: list[str] = []
    local = when.astimezone(tz)
    if local.date() in _days(settings, dates):
        reasons.append(
            f"on {channel}: {local:%Y-%m-%d} is a blackout date (blackout_dates), pick another day"
        )
    ends = _in_blackout(local, settings)
    if ends is not None:
        reasons.append(
            f"on {channel}: {local:%Y-%m-%d %H:%M} is in a blackout window ending at"
            f" {ends:%H:%M}, pick another time"
        )
    gap = timedelta(minutes=settings.min_gap_minutes)
    clash = _conflict(store, channel, when, gap, post_id)
    if clash is not None:
        reasons.append(
            f"on {channel}: another post is due at {clash.astimezone(tz):%Y-%m-%d %H:%M},"
            f" within min_gap_minutes ({settings.min_gap_minutes}), pick another time"
        )
    return reasons
