"""A generic JSON webhook: settings and rendering.

For sites and tools without a built-in channel type: the post is POSTed as JSON to ``url``,
optionally signed with ``secret``. When the receiver offers ``lookup_url``, an earlier delivery
whose outcome is unknown can be looked up instead of being handed to a person.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import field_validator

from kepubot.channels.base import (
    Channel,
    ChannelContext,
    ChannelSettings,
    HttpChannelSettings,
    Rendered,
    markdown_to_html,
)
from kepubot.config import Secret
from kepubot.models import Post

_URL = re.compile(r"^https?://[^\s/]+")


class WebhookSettings(HttpChannelSettings):
    url: str
    secret: Secret | None = None
    lookup_url: str | None = None

    @field_validator("url", "lookup_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value.strip()):
            raise ValueError(f"{value!r} must be an http(s) URL")
        return None if value is None else value.strip()


def webhook_body(post: Post) -> dict[str, Any]:
    """The JSON document the receiver gets (post_id lets it recognise a repeated delivery)."""
    return {
        "post_id": post.id,
        "title": post.title,
        "summary": post.summary,
        "body": post.body,
        "html": markdown_to_html(post.body),
        "link": post.link,
        "tags": list(post.tags),
        "media": [
            {"kind": m.kind, "sha256": m.sha256, "name": m.name, "mime": m.mime} for m in post.media
        ],
    }


class WebhookChannel(Channel):
    Settings = WebhookSettings
    settings: WebhookSettings

    def __init__(
        self, name: str, settings: ChannelSettings, context: ChannelContext | None = None
    ) -> None:
        super().__init__(name, settings, context)
        # Whether a lookup is possible depends on the configured receiver, not on the type.
        self.can_find = bool(self.settings.lookup_url)  # type: ignore[misc]

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        body = webhook_body(post)
        return Rendered(
            channel=self.name,
            kind="json",
            title=post.title,
            text=post.summary,
            html=body["html"],
            link=post.link,
            media=[m.path for m in post.media],
            extra=body,
        )
