"""Scheduled reports: with ``[reports] weekly = "MON 09:00"`` the daemon writes the previous
week's HTML and XLSX report to ``[reports] output_dir`` and posts a short summary with the
file paths to the robot channels in ``[reports] channels``. Several daemons may tick: the
``meta`` row claimed first decides which one writes a given week."""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from kepubot.errors import ChannelError, ConfigError

if TYPE_CHECKING:
    from kepubot.bot.dispatch import Engine

log = logging.getLogger("kepubot.bot.weekly")

WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def last_occurrence(spec: str, now_local: datetime) -> datetime:
    day_name, clock = spec.split()
    hour, minute = (int(x) for x in clock.split(":"))
    weekday = WEEKDAYS.index(day_name)
    days_back = (now_local.weekday() - weekday) % 7
    candidate = datetime.combine(
        now_local.date() - timedelta(days=days_back), time(hour, minute), tzinfo=now_local.tzinfo
    )
    if candidate > now_local:
        candidate -= timedelta(days=7)
    return candidate


def period_for(occurrence: datetime) -> tuple[date, date]:
    """The seven days before the occurrence's day."""
    until = occurrence.date() - timedelta(days=1)
    return until - timedelta(days=6), until


def robot_channels(engine: Engine) -> list[str]:
    names = engine.app.config.data.reports.channels
    for name in names:
        channel = engine.app.channels.get(name)
        if channel is None or not hasattr(channel, "notify_text"):
            raise ConfigError(
                f"[reports] channels: {name!r} is not a configured wecom or dingtalk channel"
            )
    return names


def run_weekly(engine: Engine) -> Path | None:
    """Write the report if its time has come and nobody wrote it yet; returns the HTML path."""
    from kepubot.reports.aggregate import build_report
    from kepubot.reports.formats import to_xlsx
    from kepubot.reports.html import to_html

    app = engine.app
    settings = app.config.data.reports
    if not settings.weekly:
        return None
    now = engine.clock()
    occurrence = last_occurrence(settings.weekly, now.astimezone(app.tz))
    since, until = period_for(occurrence)
    key = f"weekly-report:{since.isoformat()}"
    if not engine.store.ops.claim_once(key, engine.worker):
        return None
    language = settings.language or app.config.data.kepubot.language
    report = build_report(app, since=since, until=until, now=now, language=language)
    folder = app.config.resolve(settings.output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"report-{since.isoformat()}-{until.isoformat()}"
    html_path, xlsx_path = folder / f"{stem}.html", folder / f"{stem}.xlsx"
    html_path.write_text(to_html(report), encoding="utf-8")
    xlsx_path.write_bytes(to_xlsx(report))
    totals = report["totals"]
    if language == "en":
        title = f"Weekly report {since} ~ {until}"
        text = (
            f"posts {totals['posts']}, views {totals['views'] if totals['views'] is not None else '-'},"
            f" interactions {totals['interactions'] if totals['interactions'] is not None else '-'}"
            f"\n{html_path}\n{xlsx_path}"
        )
    else:
        title = f"科普传播周报 {since} ~ {until}"
        text = (
            f"发布稿件 {totals['posts']} 篇，阅读/播放 {totals['views'] if totals['views'] is not None else '-'}，"
            f"互动 {totals['interactions'] if totals['interactions'] is not None else '-'}"
            f"\n{html_path}\n{xlsx_path}"
        )
    for name in robot_channels(engine):
        channel = app.channels[name]
        try:
            channel.notify_text(title, text, key=f"{key}:{name}")  # type: ignore[attr-defined]
        except ChannelError as exc:
            log.warning("weekly report summary to %s failed: %s", name, exc)
    log.info("weekly report written: %s", html_path)
    return html_path
