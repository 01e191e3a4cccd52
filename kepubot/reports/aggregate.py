"""Every number of a report, computed once; the formats only lay them out.

Numbers are sums of the latest snapshot of each delivery published in the period. A metric no
delivery reported is ``None`` (null), never 0. A post on two channels counts once in
``posts`` and twice in ``deliveries``. Engagement rate = interactions (likes + comments +
shares + favorites) per view, over the deliveries that report views; the report shows that
set's interactions, views and delivery count next to the rate (``rate_interactions``,
``rate_views``, ``rate_deliveries``), so the rate can be checked by hand.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from kepubot.errors import InvalidInput
from kepubot.timeutil import check_day

if TYPE_CHECKING:
    from kepubot.app import App

METRICS = ("views", "likes", "comments", "shares", "favorites")
INTERACTIONS = ("likes", "comments", "shares", "favorites")
TOP_N = 10


class Bucket:
    """Sums over a set of deliveries."""

    def __init__(self) -> None:
        self.posts: set[int] = set()
        self.post_count: int | None = None  # set instead of ``posts`` by ``from_totals``
        self.deliveries = 0
        self.sums: dict[str, int | None] = dict.fromkeys(METRICS)
        self.viewed_interactions = 0
        self.viewed_views = 0
        self.viewed_deliveries = 0

    def add(self, row: dict[str, Any]) -> None:
        self.posts.add(row["post_id"])
        self.deliveries += 1
        for name in METRICS:
            value = row.get(name)
            if value is not None:
                self.sums[name] = (self.sums[name] or 0) + int(value)
        if row.get("views") is not None:
            self.viewed_views += int(row["views"])
            self.viewed_deliveries += 1
            self.viewed_interactions += sum(int(row.get(k) or 0) for k in INTERACTIONS)

    @classmethod
    def from_totals(cls, totals: dict[str, Any]) -> Bucket:
        """A bucket from ``reporting.period_totals`` (sums made by SQL, not row by row)."""
        bucket = cls()
        bucket.post_count = int(totals["posts"])
        bucket.deliveries = int(totals["deliveries"])
        for name in METRICS:
            value = totals[name]
            bucket.sums[name] = None if value is None else int(value)
        bucket.viewed_views = int(totals["views"] or 0)
        bucket.viewed_interactions = int(totals["viewed_interactions"] or 0)
        bucket.viewed_deliveries = int(totals.get("viewed_deliveries") or 0)
        return bucket

    @property
    def interactions(self) -> int | None:
        values = [self.sums[k] for k in INTERACTIONS if self.sums[k] is not None]
        return sum(v for v in values if v is not None) if values else None

    @property
    def engagement_rate(self) -> float | None:
        if not self.viewed_views:
            return None
        return round(self.viewed_interactions / self.viewed_views, 6)

    def as_dict(self) -> dict[str, Any]:
        return {
            "posts": len(self.posts) if self.post_count is None else self.post_count,
            "deliveries": self.deliveries,
            **self.sums,
            "interactions": self.interactions,
            "engagement_rate": self.engagement_rate,
            # the set the rate is computed over: deliveries that report views
            "rate_interactions": self.viewed_interactions if self.viewed_deliveries else None,
            "rate_views": self.viewed_views if self.viewed_deliveries else None,
            "rate_deliveries": self.viewed_deliveries,
        }


def _change(current: Any, previous: Any) -> float | None:
    if current is None or previous is None or not isinstance(current, int | float):
        return None
    if previous == 0:
        return None
    return round((current - previous) / previous, 6)


def _period_bounds(app: App, since: date, until: date) -> tuple[datetime, datetime]:
    start = datetime.combine(since, time(0), tzinfo=app.tz)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=app.tz)
    return start, end


def _collect(
    app: App,
    since: date,
    until: date,
    channel: str | None,
    tag: str | None,
    *,
    totals_only: bool = False,
) -> dict[str, Any]:
    start, end = _period_bounds(app, since, until)
    trouble = app.store.reporting.trouble_counts(start, end, channel)
    gained = app.store.reporting.followers_gained(since.isoformat(), until.isoformat(), channel)
    if totals_only:  # the previous period: only its totals, summed by SQL
        summed = app.store.reporting.period_totals(start, end, channel, tag)
        return {"totals": Bucket.from_totals(summed), "trouble": trouble, "gained": gained}
    rows = app.store.reporting.published_rows(start, end, channel)
    if tag:
        rows = [r for r in rows if tag in r["tags"]]
    totals = Bucket()
    channels: dict[str, Bucket] = {}
    posts: dict[int, dict[str, Any]] = {}
    post_buckets: dict[int, Bucket] = {}
    tags: dict[str, Bucket] = {}
    authors: dict[str, Bucket] = {}
    daily: dict[str, Bucket] = {}

    def bucket(groups: dict[Any, Bucket], key: Any) -> Bucket:
        found = groups.get(key)
        if found is None:
            found = groups[key] = Bucket()
        return found

    for row in rows:
        totals.add(row)
        bucket(channels, row["channel"]).add(row)
        bucket(post_buckets, row["post_id"]).add(row)
        info = posts.setdefault(
            row["post_id"],
            {
                "post_id": row["post_id"],
                "title": row["title"],
                "author": row["author"],
                "tags": row["tags"],
                "channels": [],
                "published_at": row["published_at"],
            },
        )
        info["channels"].append(row["channel"])
        for name in row["tags"]:
            bucket(tags, name).add(row)
        bucket(authors, row["author"]).add(row)
        day = datetime.fromisoformat(row["published_at"]).astimezone(app.tz).strftime("%Y-%m-%d")
        bucket(daily, day).add(row)
    return {
        "totals": totals,
        "channels": channels,
        "posts": posts,
        "post_buckets": post_buckets,
        "tags": tags,
        "authors": authors,
        "daily": daily,
        "trouble": trouble,
        "gained": gained,
    }


def _totals(data: dict[str, Any], channel_filter: str | None) -> dict[str, Any]:
    trouble = data["trouble"]
    gained = data["gained"]
    out = data["totals"].as_dict()
    out["failed"] = sum(v.get("failed", 0) for v in trouble.values())
    out["needs_attention"] = sum(v.get("needs_attention", 0) for v in trouble.values())
    known = [v for v in gained.values() if v is not None]
    out["followers_gained"] = sum(known) if known else None
    return out


def build_report(
    app: App,
    *,
    since: date | None = None,
    until: date | None = None,
    channel: str | None = None,
    tag: str | None = None,
    now: datetime,
    language: str | None = None,
) -> dict[str, Any]:
    today = now.astimezone(app.tz).date()
    until = check_day(until or today, "--until")
    since = check_day(since or until - timedelta(days=6), "--since")
    if since > until:
        raise InvalidInput(f"--since {since} is after --until {until}; swap them")
    if channel is not None and channel not in app.config.data.channels:
        known = ", ".join(sorted(app.config.data.channels))
        raise InvalidInput(f"--channel {channel!r}: no such channel (configured: {known})")
    length = (until - since).days + 1
    current = _collect(app, since, until, channel, tag)
    previous = _collect(
        app,
        since - timedelta(days=length),
        since - timedelta(days=1),
        channel,
        tag,
        totals_only=True,
    )
    totals = _totals(current, channel)
    previous_totals = _totals(previous, channel)
    # a channel that gained followers has its row even without a delivery in the period:
    # the followers appear in the row they come from (issue 16)
    names = sorted(
        set(current["channels"])
        | set(current["trouble"])
        | {name for name, gained in current["gained"].items() if gained is not None}
        | ({channel} if channel else set())
    )
    sources = app.store.assisted.figure_sources(*_period_bounds(app, since, until), channel)
    channels: dict[str, Any] = {}
    for name in names:
        bucket = current["channels"].get(name, Bucket()).as_dict()
        trouble = current["trouble"].get(name, {})
        bucket["failed"] = trouble.get("failed", 0)
        bucket["needs_attention"] = trouble.get("needs_attention", 0)
        bucket["followers_gained"] = current["gained"].get(name)
        # figures from an outlet's export or typed by hand (docs/delivery.md §17.3)
        bucket["figure_sources"] = sources.get(name, {})
        channels[name] = bucket
    post_rows = []
    for post_id, info in current["posts"].items():
        figures = current["post_buckets"][post_id].as_dict()
        post_rows.append(
            {**info, **{k: figures[k] for k in (*METRICS, "interactions", "engagement_rate")}}
        )
    # retracted posts are counted apart and never in a top list (docs/delivery.md §14.4)
    start, end = _period_bounds(app, since, until)
    retracted = app.store.reporting.retracted_posts(start, end, channel, tag)
    totals["retracted"] = len(retracted)
    previous_totals["retracted"] = len(
        app.store.reporting.retracted_posts(
            *_period_bounds(app, since - timedelta(days=length), since - timedelta(days=1)),
            channel,
            tag,
        )
    )
    live_rows = [p for p in post_rows if p["post_id"] not in retracted]
    top_views = sorted(live_rows, key=lambda p: (-(p["views"] or 0), p["post_id"]))[:TOP_N]
    top_engagement = sorted(
        [p for p in live_rows if p["engagement_rate"] is not None],
        key=lambda p: (-(p["engagement_rate"] or 0), -(p["views"] or 0), p["post_id"]),
    )[:TOP_N]
    days = []
    for offset in range(length):
        day = (since + timedelta(days=offset)).isoformat()
        bucket = current["daily"].get(day, Bucket()).as_dict()
        days.append({"date": day, **bucket})
    return {
        "period": {
            "since": since.isoformat(),
            "until": until.isoformat(),
            "timezone": app.tz.key,
            "days": length,
        },
        "filters": {"channel": channel, "tag": tag},
        "language": language or app.config.data.reports.language or app.language,
        "generated_at": now.astimezone(app.tz).isoformat(timespec="seconds"),
        "totals": totals,
        "previous": {
            "since": (since - timedelta(days=length)).isoformat(),
            "until": (since - timedelta(days=1)).isoformat(),
            "totals": previous_totals,
        },
        "change": {
            key: _change(totals.get(key), previous_totals.get(key))
            for key in (
                "posts",
                "deliveries",
                *METRICS,
                "interactions",
                "engagement_rate",
                "followers_gained",
            )
        },
        "channels": channels,
        "top_posts": top_views,
        "top_engagement": top_engagement,
        "tags": {name: b.as_dict() for name, b in sorted(current["tags"].items())},
        "authors": {name: b.as_dict() for name, b in sorted(current["authors"].items())},
        "daily": days,
    }
