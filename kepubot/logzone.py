"""Log lines in the configured time zone, saying the zone (docs/operations.md §11.1).

The command line sets up logging before it has read the configuration; the formatter starts
in UTC and ``use_zone`` switches it to ``[kepubot] timezone`` once the configuration is
loaded, so a daemon's log reads ``2026-12-05 17:38:01 Asia/Shanghai INFO ...``."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, tzinfo

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_zone: tuple[tzinfo, str] = (UTC, "UTC")


def use_zone(zone: tzinfo, name: str | None = None) -> None:
    """Show log times in ``zone`` from now on (every ``ZoneFormatter``)."""
    global _zone
    _zone = (zone, name or str(zone))


class ZoneFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        zone, name = _zone
        moment = datetime.fromtimestamp(record.created, zone)
        return f"{moment:%Y-%m-%d %H:%M:%S},{int(record.msecs):03d} {name}"
