"""WeChat Official Account articles (docs/platforms.md §3): the ``wechat`` channel type.

- ``content``: the draft API's limits and the article HTML (inline styles, image placeholders);
- ``codes``: errcodes and publish statuses as data, mapped to the queue's error kinds;
- ``api``: settings, the shared access token and the one call every step makes;
- ``datacube``: which datacube row is a delivery's, and its figures;
- ``channel``: uploads, draft, freepublish / mass send, poll, lookup, metrics, verify.

The entry point stays ``kepubot.channels.wechat:WechatChannel``.
"""

from __future__ import annotations

from kepubot.channels.wechat.channel import WechatChannel, WechatSettings, clientmsgid
from kepubot.channels.wechat.codes import ERRORS, PUBLISH_STATUS, TOKEN_ERRCODES
from kepubot.channels.wechat.content import (
    IMAGE_TYPES,
    MAX_AUTHOR,
    MAX_CONTENT,
    MAX_DIGEST,
    MAX_IMAGE_BYTES,
    MAX_TITLE,
    MEDIA_PLACEHOLDER,
    article_html,
)

__all__ = [
    "ERRORS",
    "IMAGE_TYPES",
    "MAX_AUTHOR",
    "MAX_CONTENT",
    "MAX_DIGEST",
    "MAX_IMAGE_BYTES",
    "MAX_TITLE",
    "MEDIA_PLACEHOLDER",
    "PUBLISH_STATUS",
    "TOKEN_ERRCODES",
    "WechatChannel",
    "WechatSettings",
    "article_html",
    "clientmsgid",
]
