"""RSS 2.0 / Atom / JSON Feed files (platforms.md §4.2): settings and rendering.

The feed channel writes files into ``output_dir`` (a web server publishes them) and may ping
a WebSub hub, which is why its settings are HTTP settings. Rewriting the files is harmless,
so the channel is idempotent: an unknown outcome is simply redone.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from kepubot.channels.base import Channel, HttpChannelSettings, Rendered, markdown_to_html
from kepubot.models import Post

FeedFormat = Literal["rss", "atom", "json"]
_URL = re.compile(r"^https?://[^\s/]+")
# A BCP 47-like tag: "zh-CN", "en", "zh-Hans-CN".
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _all_formats() -> list[FeedFormat]:
    return ["rss", "atom", "json"]


def _http_url(name: str, value: str) -> str:
    value = value.strip()
    if not _URL.match(value):
        raise ValueError(f"{name} {value!r} must be an http(s) URL")
    return value


class FeedSettings(HttpChannelSettings):
    output_dir: str = Field(min_length=1)
    # The site the items link to; feed ids and self links are built from it.
    site_url: str
    title: str = Field(min_length=1)
    description: str = ""
    language: str = "zh-CN"
    formats: list[FeedFormat] = Field(default_factory=_all_formats, min_length=1)
    max_items: int = Field(50, ge=1)
    websub_hub: str | None = None

    @field_validator("site_url")
    @classmethod
    def _site(cls, value: str) -> str:
        return _http_url("site_url", value).rstrip("/")

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str | None) -> str | None:
        return None if value is None else _http_url("websub_hub", value)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be empty (RSS, Atom and JSON Feed all require one)")
        return value.strip()

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _LANGUAGE.match(value):
            raise ValueError(f"language {value!r} must be a language tag such as 'zh-CN'")
        return value

    @field_validator("formats")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("formats must not repeat a format")
        return value


class FeedChannel(Channel):
    Settings = FeedSettings
    settings: FeedSettings
    idempotent = True

    # check() is the base one: every feed format accepts any item that has a title.

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        return Rendered(
            channel=self.name,
            kind="feed-item",
            title=post.title,
            text=post.summary,
            html=markdown_to_html(post.body),
            link=post.link,
            media=[m.path for m in post.media],
            extra={"tags": list(post.tags)},
        )
