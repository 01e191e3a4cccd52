"""Domain objects shared by the queue, the channels and the front ends. Imports nothing of ours
but the delivery state machine (``kepubot.states``, itself a leaf)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The delivery state machine is data in kepubot/states.py (docs/delivery.md §2.4).
from kepubot.states import DELIVERY_STATES as DELIVERY_STATES
from kepubot.states import TERMINAL_DELIVERY_STATES as TERMINAL_DELIVERY_STATES
from kepubot.states import DeliveryState

PostState = Literal["draft", "in_review", "approved", "rejected", "cancelled"]
POST_STATES: tuple[str, ...] = ("draft", "in_review", "approved", "rejected", "cancelled")

# How much a post may hold, whichever way it is written (command line, import, console):
# far above what any channel publishes (the channels check their own, smaller limits), low
# enough that a page, a preview or a feed renders it at once.
MAX_TITLE_CHARS = 200
MAX_BODY_CHARS = 200_000
MAX_SUMMARY_CHARS = 300
MAX_LINK_CHARS = 2_000
MAX_TAGS = 20
MAX_TAG_CHARS = 30


class Media(BaseModel):
    """A file copied into the content-addressed media store when the post was created."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["image", "video", "cover"]
    path: str  # relative to the media store: "ab/abcdef....png"
    sha256: str
    name: str  # the original file name, for people
    size: int
    mime: str
    alt: str = ""
    file: str | None = Field(default=None, exclude=True)  # absolute path, filled when loaded


class Source(BaseModel):
    """Where a claim of the post comes from: a title and a URL or a DOI
    (docs/architecture.md §14)."""

    model_config = ConfigDict(frozen=True)

    title: str
    url: str = ""
    doi: str = ""

    @property
    def href(self) -> str:
        """A link a reader can follow (a DOI resolves through doi.org)."""
        return self.url or f"https://doi.org/{self.doi}"


MAX_SOURCES = 20
MAX_SOURCE_TITLE_CHARS = 200


class Post(BaseModel):
    id: int
    title: str
    body: str
    summary: str = ""
    link: str = ""
    tags: list[str] = Field(default_factory=list)
    media: list[Media] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    variants: dict[str, dict[str, str]] = Field(default_factory=dict)
    sources: list[Source] = Field(default_factory=list)
    # a correction (更正) of an earlier post: {"post_id", "title", "link", "urls": {channel:
    # url}}, filled in by the daemon when it publishes (docs/delivery.md §15); not content
    corrects: dict[str, Any] | None = None
    author: str
    state: PostState = "draft"
    review_round: int = 0
    review_level: int = 0
    scheduled_at: datetime | None = None
    next_slot: bool = False
    content_hash: str = ""
    approved_hash: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def images(self) -> list[Media]:
        return [m for m in self.media if m.kind == "image"]

    @property
    def video(self) -> Media | None:
        return next((m for m in self.media if m.kind == "video"), None)

    @property
    def cover(self) -> Media | None:
        return next((m for m in self.media if m.kind == "cover"), None)

    def for_channel(self, channel: str) -> Post:
        """The post with this channel's variant (title/summary/body/link overrides) applied."""
        overrides = self.variants.get(channel)
        if not overrides:
            return self
        allowed = {k: v for k, v in overrides.items() if k in {"title", "summary", "body", "link"}}
        return self.model_copy(update=allowed)


def content_hash(
    *,
    title: str,
    body: str,
    summary: str,
    link: str,
    tags: list[str],
    media: list[dict[str, Any]],
    channels: list[str],
    variants: dict[str, dict[str, str]],
    sources: list[dict[str, str]] | None = None,
) -> str:
    """SHA-256 over everything that is published; approval pins it. Sources are published
    too (a 参考资料 section, feed links); a post without sources hashes as before they
    existed, so the hashes of posts already approved stay valid."""
    extra: dict[str, Any] = {}
    if sources:
        extra["sources"] = [
            {"title": s["title"], "url": s.get("url", ""), "doi": s.get("doi", "")} for s in sources
        ]
    canonical = json.dumps(
        {
            **extra,
            "title": title,
            "body": body,
            "summary": summary,
            "link": link,
            "tags": tags,
            "media": [
                {"kind": m["kind"], "sha256": m["sha256"], "alt": m.get("alt", "")} for m in media
            ],
            "channels": sorted(channels),
            "variants": variants,
        },
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Delivery(BaseModel):
    id: int
    post_id: int
    channel: str
    state: DeliveryState
    due_at: datetime
    not_before: datetime
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    lease_version: int = 0
    progress: dict[str, Any] = Field(default_factory=dict)
    remote_id: str | None = None
    remote_url: str | None = None
    error_kind: str | None = None
    last_error: str | None = None
    published_at: datetime | None = None
    next_metrics_at: datetime | None = None
    content_hash: str = ""
    reconcile_tries: int = 0
    # "publish", or "retract" once a retraction was requested (docs/delivery.md §14)
    kind: str = "publish"
    retract_reason: str | None = None


class Review(BaseModel):
    post_id: int
    round: int
    level: int
    reviewer: str
    decision: Literal["approve", "reject"]
    comment: str = ""
    content_hash: str
    at: datetime


class MetricSnapshot(BaseModel):
    views: int | None = None
    likes: int | None = None
    comments: int | None = None
    shares: int | None = None
    favorites: int | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
