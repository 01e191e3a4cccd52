"""Article figures from ``datacube/getarticletotaldetail`` and follower figures from
``getusersummary`` / ``getusercumulate``: which row is a delivery's, and what it says.

``getarticletotaldetail`` (developers.weixin.qq.com doc/subscription/api/wedata/news/
api_getarticletotaldetail) replaces ``getarticletotal`` / ``getarticlesummary``, which are
documented as no longer maintained and cover mass-sent articles only. It lists every article
*published* on the days asked for, notified (``publish_type`` 0, mass send) or not
(``publish_type`` 1, freepublish), each with ``detail_list``: one entry per ``stat_date``
holding the totals from the publishing day up to that day, for at most 30 days [src].
``end_date`` is at most yesterday (T+1) [src]. ``is_delay`` true means the figures are not the
newest yet [src].

``msgid`` is "<msg_data_id>_<index>": ``msg_data_id`` is what freepublish/submit and
mass/sendall answer, ``index`` the article's place (1-based) in that message [src]. An article
URL carries the same pair as ``mid`` and ``idx`` [gk].

Field mapping (the delivery's figures; every other field stays in ``raw``):

=================  ==========  ==============================================
detail_list field  our figure  meaning [src]
=================  ==========  ==============================================
read_user          views       readers (阅读人数, every source)
share_user         shares      people who shared (分享人数)
like_user          likes       thumbs-up (拇指赞人数)
comment_count      comments    comments (留言数)
collection_user    favorites   people who saved it (收藏人数)
=================  ==========  ==============================================

``zaikan_user`` (在看 / 爱心赞), ``read_subscribe_user``, ``read_user_source`` and the rest
are kept in ``raw``. A figure the platform does not report stays None, never 0.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import date
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kepubot.channels.wechat.codes import PLATFORM_TZ
from kepubot.models import Delivery, MetricSnapshot

ARTICLE_SOURCE = "datacube/getarticletotaldetail"
#: Days per getarticletotaldetail call. The page reads as if a range were allowed, but a
#: developer reports "dataRange error" for a 6-day range and the sibling interfaces
#: (getarticleread / getarticleshare) document 1 day [?]: one day per call, the safe choice.
ARTICLE_SPAN_DAYS = 1
#: detail_list covers at most 30 days after publishing [src].
DETAIL_DAYS = 30
#: The new publish-content statistics start on 2025-11-01 (getarticleread / getarticleshare
#: notes; assumed for getarticletotaldetail too [?]): earlier days are never asked for.
ARTICLE_FIRST_DAY = date(2025, 11, 1)
#: detail_list field -> our figure.
FIELD_MAP: dict[str, str] = {
    "views": "read_user",
    "shares": "share_user",
    "likes": "like_user",
    "comments": "comment_count",
    "favorites": "collection_user",
}


def figure(entry: dict[str, Any], key: str) -> int | None:
    """``entry[key]`` as an int; None when the platform did not report it."""
    value = entry.get(key)
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def publish_days(delivery: Delivery) -> list[date]:
    """The days the platform may file the delivery's article under (``ref_date``, Beijing):
    the day it was submitted or sent (``sent_on``) and the day we saw it published. They
    differ only when a freepublish job finished after midnight."""
    days: set[date] = set()
    text = delivery.progress.get("sent_on")
    if isinstance(text, str):
        with suppress(ValueError):
            days.add(date.fromisoformat(text))
    if delivery.published_at is not None:
        days.add(delivery.published_at.astimezone(PLATFORM_TZ).date())
    return sorted(days)


def message_keys(delivery: Delivery) -> set[str]:
    """The ``msgid`` values that are this delivery's article: from the checkpointed
    ``msg_data_id`` (our drafts hold one article, index 1) and from the article URL's
    ``mid`` / ``idx`` [gk]."""
    keys: set[str] = set()
    msg_data_id = delivery.progress.get("msg_data_id")
    if msg_data_id not in (None, ""):
        keys.add(f"{msg_data_id}_1")
    if delivery.remote_url:
        query = parse_qs(urlsplit(delivery.remote_url).query)
        mid, idx = query.get("mid", [""])[0], query.get("idx", ["1"])[0]
        if mid.isdigit() and idx.isdigit():
            keys.add(f"{mid}_{int(idx)}")
    return keys


def matching_row(rows: list[dict[str, Any]], delivery: Delivery) -> dict[str, Any] | None:
    """The getarticletotaldetail row of this delivery, by ``msgid``. Only without any
    message id, a title the platform gives (the doc lists none, some answers carry one [?])
    decides, and then only when exactly one row has it."""
    keys = message_keys(delivery)
    if keys:
        for row in rows:
            if str(row.get("msgid") or "") in keys:
                return row
        return None
    title = str(delivery.progress.get("title") or "").strip()
    if not title:
        return None
    titled = [r for r in rows if str(r.get("title") or "").strip() == title]
    return titled[0] if len(titled) == 1 else None


def snapshot(row: dict[str, Any], yesterday: date, *, is_delay: bool) -> MetricSnapshot | None:
    """The newest ``detail_list`` entry up to yesterday: its totals since publishing."""
    entries = [
        d
        for d in row.get("detail_list") or []
        if isinstance(d, dict) and str(d.get("stat_date") or "") <= yesterday.isoformat()
    ]
    if not entries:
        return None
    latest = max(entries, key=lambda d: str(d.get("stat_date")))
    values = {ours: figure(latest, theirs) for ours, theirs in FIELD_MAP.items()}
    return MetricSnapshot(
        **values,
        raw={
            "source": ARTICLE_SOURCE,
            "msgid": row.get("msgid"),
            "ref_date": row.get("ref_date"),
            "publish_type": row.get("publish_type"),
            "is_delay": is_delay,
            **latest,
        },
    )


def days_to_ask(deliveries: list[Delivery], yesterday: date) -> dict[date, list[Delivery]]:
    """Publishing day -> the deliveries that may be filed under it; days after yesterday
    (no data yet) and before the statistics start are left out."""
    by_day: dict[date, list[Delivery]] = {}
    for delivery in deliveries:
        for day in publish_days(delivery):
            if ARTICLE_FIRST_DAY <= day <= yesterday:
                by_day.setdefault(day, []).append(delivery)
    return by_day


def followers(
    summary: list[dict[str, Any]], cumulate: list[dict[str, Any]], day: date
) -> dict[str, Any]:
    """Account figures of ``day``: followers (``getusercumulate`` ``cumulate_user``) and the
    day's gain (``getusersummary``: new minus cancelled over every ``user_source``). A list the
    platform leaves empty gives None, never 0: the store then derives the gain from the
    previous day's follower count."""
    iso = day.isoformat()
    rows = [r for r in summary if str(r.get("ref_date") or iso) == iso]
    new = [figure(r, "new_user") for r in rows]
    cancel = [figure(r, "cancel_user") for r in rows]
    gained = (
        sum(n or 0 for n in new) - sum(c or 0 for c in cancel)
        if any(v is not None for v in new + cancel)
        else None
    )
    totals = [figure(r, "cumulate_user") for r in cumulate if str(r.get("ref_date") or iso) == iso]
    total = next((t for t in reversed(totals) if t is not None), None)
    return {
        "followers": total,
        "followers_gained": gained,
        "new_user": sum(n or 0 for n in new) if rows else None,
        "cancel_user": sum(c or 0 for c in cancel) if rows else None,
        "ref_date": iso,
        "source": "datacube/getusersummary+getusercumulate",
    }
