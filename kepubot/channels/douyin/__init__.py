"""Douyin open platform videos (docs/platforms.md §4): the ``douyin`` channel type.

Douyin publishes videos only: the file is uploaded (in chunks when large) and then
``create_video`` is called with the text, where ``#话题`` tags become topics.

- ``codes``: paths and error codes as data, and reading Douyin's answers;
- ``api``: settings, the user's tokens (stored, refreshed single-flight) and the one call;
- ``channel``: content rules, rendering, upload, create, lookup, figures, check, scopes.

The entry point stays ``kepubot.channels.douyin:DouyinChannel``.
"""

from __future__ import annotations

from kepubot.channels.douyin.api import DouyinApi, DouyinSettings
from kepubot.channels.douyin.channel import (
    CHUNK_UNIT,
    DATA_BATCH,
    LIST_PAGE_SIZE,
    MAX_TEXT,
    VIDEO_TYPES,
    DouyinChannel,
)
from kepubot.channels.douyin.codes import ERRORS, PATHS, RATE_LIMIT_RETRY_AFTER

__all__ = [
    "CHUNK_UNIT",
    "DATA_BATCH",
    "ERRORS",
    "LIST_PAGE_SIZE",
    "MAX_TEXT",
    "PATHS",
    "RATE_LIMIT_RETRY_AFTER",
    "VIDEO_TYPES",
    "DouyinApi",
    "DouyinChannel",
    "DouyinSettings",
]
