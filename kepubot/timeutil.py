"""Time helpers. Everything stored is UTC; everything shown is in the configured zone.

Stored form is fixed-width ``YYYY-MM-DDTHH:MM:SS.mmmZ`` so that string order is time order
and SQL can compare stored times directly.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kepubot.errors import ConfigError, InvalidInput, StoreError

_LOCAL_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"unknown time zone {name!r} in [kepubot] timezone; use an IANA name such as"
            " 'Asia/Shanghai'"
        ) from exc


def to_db(dt: datetime) -> str:
    if dt.tzinfo is None:
        raise ValueError("naive datetime cannot be stored; attach a time zone")
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


class UnreadableTime(StoreError, ValueError):
    """A stored time that is not a time at all (the database was changed by hand)."""


def from_db(text: str) -> datetime:
    # fromisoformat reads the stored form (with its Z) ~50x faster than strptime
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise UnreadableTime(
            f"a stored time {str(text)[:40]!r} cannot be read: the database was changed by hand;"
            " restore it from a backup (`kepubot audit verify` names altered rows)"
        ) from None


def show(text_or_dt: str | datetime | None, tz: ZoneInfo) -> str:
    """Format a stored UTC time for people, in the configured zone.

    Never raises: a stored value that cannot be read or shown in ``tz`` (a year past 9999
    after conversion, a malformed text) is shown raw, so one bad row never breaks a page or
    a listing."""
    if text_or_dt is None:
        return ""
    try:
        dt = from_db(text_or_dt) if isinstance(text_or_dt, str) else text_or_dt
        return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, ValueError, TypeError, AttributeError):
        return raw(text_or_dt)


def raw(text_or_dt: str | datetime) -> str:
    """A time exactly as stored, for when it cannot be shown in the configured zone."""
    if isinstance(text_or_dt, datetime):
        return text_or_dt.isoformat()
    return str(text_or_dt)


def to_local(text_or_dt: str | datetime, tz: ZoneInfo) -> datetime | None:
    """A stored time in ``tz``, or None when it cannot be converted (see ``show``)."""
    try:
        dt = from_db(text_or_dt) if isinstance(text_or_dt, str) else text_or_dt
        return dt.astimezone(tz)
    except (OverflowError, ValueError, TypeError, AttributeError):
        return None


# Every time a person gives (CLI, import, console, config) must fall in these years once
# converted to the configured zone: wide enough for any real schedule or report, narrow enough
# that every conversion and every period around it stays inside what datetime can hold.
FIRST_YEAR = 1970
LAST_YEAR = 2100


def check_time(dt: datetime, tz: ZoneInfo, *, what: str, text: str | None = None) -> datetime:
    """``dt`` (aware) as UTC when it lies in FIRST_YEAR..LAST_YEAR in ``tz``; else InvalidInput."""
    shown = text if text is not None else dt.isoformat()
    local: datetime | None
    try:
        local = dt.astimezone(tz)
        utc = dt.astimezone(UTC)
    except (OverflowError, ValueError):
        local = None
    if local is None or not FIRST_YEAR <= local.year <= LAST_YEAR:
        raise InvalidInput(
            f"{what} {shown!r}: out of range; give a time between {FIRST_YEAR}-01-01 00:00 and"
            f" {LAST_YEAR}-12-31 23:59 ({tz.key})"
        )
    return utc


def parse_user_time(text: str, tz: ZoneInfo, *, what: str = "--at") -> datetime:
    """Parse ``YYYY-MM-DD HH:MM[:SS]`` in ``tz`` or ISO 8601 with an offset; returns UTC.

    A local time that does not exist (skipped by a DST change) is refused rather than guessed.
    """
    raw = text.strip()
    if _LOCAL_FORMAT.match(raw):
        fmt = "%Y-%m-%d %H:%M:%S" if raw.count(":") == 2 else "%Y-%m-%d %H:%M"
        try:
            naive = datetime.strptime(raw.replace("T", " "), fmt)
        except ValueError as exc:
            raise InvalidInput(f"{what} {text!r}: not a valid date or time ({exc})") from exc
        local = naive.replace(tzinfo=tz)
        utc = check_time(local, tz, what=what, text=text)
        # A wall time skipped by a DST change does not survive a round trip through UTC.
        back = utc.astimezone(tz).replace(tzinfo=None)
        if back != naive:
            raise InvalidInput(
                f"{what} {text!r}: this local time does not exist in {tz.key} (clock change);"
                " pick another time"
            )
        return utc
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        dt = None
    if dt is None or dt.tzinfo is None:
        raise InvalidInput(
            f"{what} {text!r}: expected 'YYYY-MM-DD HH:MM[:SS]' (in {tz.key}) or ISO 8601 with"
            " an offset such as '2026-12-01T08:30:00+08:00'"
        )
    return check_time(dt, tz, what=what, text=text)


def parse_future_time(text: str, tz: ZoneInfo, now: datetime, *, what: str = "--at") -> datetime:
    dt = parse_user_time(text, tz, what=what)
    if dt <= now:
        raise InvalidInput(
            f"{what} {text!r} is in the past (now is {show(now, tz)} {tz.key});"
            " give a future time or use --next-slot"
        )
    return dt


# Days people may ask about (report periods, list filters, the calendar): the same years as
# every accepted time.
FIRST_DAY = date(FIRST_YEAR, 1, 1)
LAST_DAY = date(LAST_YEAR, 12, 31)


def parse_date(text: str, what: str) -> date:
    """A calendar day ``YYYY-MM-DD`` between FIRST_DAY and LAST_DAY."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"{what} {text!r}: not a date; use YYYY-MM-DD") from None
    return check_day(day, what)


def check_day(day: date, what: str) -> date:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise InvalidInput(
            f"{what} {day.isoformat()}: out of range; use a day between {FIRST_DAY} and {LAST_DAY}"
        )
    return day


def parse_day(text: str, tz: ZoneInfo, *, what: str) -> datetime:
    """A calendar day ``YYYY-MM-DD`` in ``tz``; returns its start as UTC."""
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError as exc:
        raise InvalidInput(f"{what} {text!r}: expected a date as YYYY-MM-DD") from exc
    check_day(day.date(), what)
    return day.replace(tzinfo=tz).astimezone(UTC)


# A wait a platform (or a channel) asks for is honoured up to a day: a larger or absurd value
# would push a delivery's next time past what can be stored and shown; after a day it is
# simply asked again.
MAX_WAIT_SECONDS = 86_400.0


def bounded_wait(seconds: float) -> float:
    """``seconds`` within 0..MAX_WAIT_SECONDS (NaN counts as no wait)."""
    if seconds != seconds or seconds <= 0:
        return 0.0
    return min(float(seconds), MAX_WAIT_SECONDS)


def add_seconds(dt: datetime, seconds: float) -> datetime:
    return dt + timedelta(seconds=seconds)
