"""The editorial calendar: one card per post per day, with its channels and their states.

The console's calendar page (docs/operations.md §12) asks for a period and filters; this
module reads the deliveries due or published in it (``store.calendar``, kepubot/queue/calendar.py:
two covering index ranges) and the planned posts that have no deliveries yet, and groups them by
local day and post. Moving a card is ``posts.schedule`` (the same rules as
``kepubot post schedule``), not anything here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from kepubot.timeutil import to_local

if TYPE_CHECKING:
    from kepubot.app import App

# deliveries whose time can still move with their post
MOVABLE = frozenset({"planned", "pending", "queued"})


@dataclass
class Filters:
    channel: str | None = None
    state: str | None = None  # a delivery state, or "planned" (a post without deliveries yet)
    tag: str | None = None
    author: str | None = None


@dataclass
class Card:
    """One post on one local day."""

    post_id: int
    title: str
    author: str
    time: str  # local HH:MM of its earliest entry that day
    channels: list[tuple[str, str]] = field(default_factory=list)  # (channel, state)
    paused: bool = False  # the post is paused (docs/delivery.md §18)

    @property
    def state(self) -> str:
        """The state all its channels share, or "mixed"."""
        states = {s for _, s in self.channels}
        return states.pop() if len(states) == 1 else "mixed"

    @property
    def movable(self) -> bool:
        return any(s in MOVABLE for _, s in self.channels)


def cards(
    app: App, start: datetime, end: datetime, filters: Filters, *, limit: int
) -> tuple[dict[date, list[Card]], dict[date, dict[tuple[str, str], int]], int]:
    """(cards per local day, counts per day when crowded, deliveries counted).

    More than ``limit`` deliveries in the period is more than a person reads on one page:
    then the days carry counts per (channel, state) instead of cards (every delivery is
    still counted, none silently cut)."""
    from kepubot.services.posts import scheduled_between

    tz = app.tz
    events: list[dict[str, Any]] = []
    summary: dict[date, dict[tuple[str, str], int]] = {}
    total = 0
    if filters.state != "planned":
        channel, state, author, tag = filters.channel, filters.state, filters.author, filters.tag
        # None when the period holds more than limit: found from at most limit + 1 index
        # entries; it is then counted instead (per hour, channel and state, from the indexes)
        rows = app.store.calendar.entries(
            start, end, channel=channel, state=state, author=author, tag=tag, limit=limit
        )
        if rows is None:
            width = _bucket_width(start, end)
            crowded = app.store.calendar.counts(
                start, end, width=width, channel=channel, state=state, author=author, tag=tag
            )
            day_of: dict[str, date | None] = {}  # a bucket comes once per channel and state
            for bucket, on, in_state, n in crowded:
                total += n
                if bucket not in day_of:
                    begins = _bucket_time(bucket)
                    local = to_local(begins, tz) if begins is not None else None
                    day_of[bucket] = local.date() if local is not None else None
                day = day_of[bucket]
                if day is None:  # a stored time that is no time is on no calendar day
                    continue
                counts = summary.setdefault(day, {})
                key = (on, in_state)
                counts[key] = counts.get(key, 0) + n
        else:
            total = len(rows)
            events = rows
    if filters.state in (None, "planned"):
        for post in scheduled_between(app, start, end):
            if filters.author and post.author != filters.author:
                continue
            if filters.tag and filters.tag not in post.tags:
                continue
            for name in post.channels:
                if filters.channel and name != filters.channel:
                    continue
                events.append(
                    {
                        "post_id": post.id,
                        "channel": name,
                        "state": "planned",
                        "at": post.scheduled_at,
                        "title": post.title,
                        "author": post.author,
                    }
                )
    days = _group(events, tz)
    # paused posts carry 已暂停 on their cards: one lookup by key for the cards shown
    held = app.store.post_pauses.among(c.post_id for day in days.values() for c in day)
    for day_cards in days.values():
        for card in day_cards:
            card.paused = card.post_id in held
    return days, summary, total


def _bucket_width(start: datetime, end: datetime) -> int:
    """How much of the stored time text (``YYYY-MM-DDTHH:MM…Z``) a crowded period is counted
    by: the hour when the zone's offset is whole hours at both ends of the period (then an
    hour never straddles two local days), else the minute."""
    offsets = [when.utcoffset() for when in (start, end)]
    whole = all(o is not None and o.total_seconds() % 3600 == 0 for o in offsets)
    return 13 if whole else 16


def _bucket_time(bucket: str) -> datetime | None:
    """The start of a bucket (see ``_bucket_width``) as a UTC time; None for a stored value
    that is no time at all."""
    text = bucket + (":00" if len(bucket) == 13 else "")
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when.replace(tzinfo=UTC) if len(text) == 16 and when.tzinfo is None else None


def _group(events: list[dict[str, Any]], tz: ZoneInfo) -> dict[date, list[Card]]:
    by_day: dict[date, dict[int, Card]] = {}
    for event in events:
        local = to_local(event["at"], tz)
        if local is None:  # a stored time no zone can show is not on any calendar day
            continue
        cards_of_day = by_day.setdefault(local.date(), {})
        card = cards_of_day.get(event["post_id"])
        time = local.strftime("%H:%M")
        if card is None:
            card = cards_of_day[event["post_id"]] = Card(
                post_id=event["post_id"], title=event["title"], author=event["author"], time=time
            )
        card.time = min(card.time, time)
        if (event["channel"], event["state"]) not in card.channels:
            card.channels.append((event["channel"], event["state"]))
    result: dict[date, list[Card]] = {}
    for day, posts in by_day.items():
        for card in posts.values():
            card.channels.sort()
        result[day] = sorted(posts.values(), key=lambda c: (c.time, c.post_id))
    return result
