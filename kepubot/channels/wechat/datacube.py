"""Figures from datacube (platforms.md §2.7): which row is a delivery's, and what it says."""

from __future__ import annotations

from datetime import date
from typing import Any

from kepubot.channels.wechat.api import as_int
from kepubot.channels.wechat.codes import PLATFORM_TZ
from kepubot.models import Delivery, MetricSnapshot


def sent_on(delivery: Delivery) -> date | None:
    text = delivery.progress.get("sent_on")
    if isinstance(text, str):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    if delivery.published_at is None:
        return None
    return delivery.published_at.astimezone(PLATFORM_TZ).date()


def matching_row(rows: list[dict[str, Any]], progress: dict[str, Any]) -> dict[str, Any] | None:
    """The datacube row of this delivery: msgid is "<msg_data_id>_<index>" [src]; without a
    msg_data_id, the title decides."""
    msg_data_id = progress.get("msg_data_id")
    if msg_data_id:
        for row in rows:
            if str(row.get("msgid") or "").split("_")[0] == str(msg_data_id):
                return row
    title = str(progress.get("title") or "").strip()
    if title:
        for row in rows:
            if str(row.get("title") or "").strip() == title:
                return row
    return None


def snapshot(row: dict[str, Any], yesterday: date) -> MetricSnapshot | None:
    """The newest day's totals of a getarticletotal row (``details`` are running totals per
    stat_date [?: documented by a WeChat community answer, not by platforms.md])."""
    details = [
        d
        for d in row.get("details") or []
        if isinstance(d, dict) and str(d.get("stat_date") or "") <= yesterday.isoformat()
    ]
    if not details:
        return None
    latest = max(details, key=lambda d: str(d.get("stat_date")))
    return MetricSnapshot(
        views=as_int(latest.get("int_page_read_count")),
        shares=as_int(latest.get("share_count")),
        favorites=as_int(latest.get("add_to_fav_count")),
        raw={
            "source": "datacube/getarticletotal",
            "msgid": row.get("msgid"),
            "ref_date": row.get("ref_date"),
            **latest,
        },
    )
