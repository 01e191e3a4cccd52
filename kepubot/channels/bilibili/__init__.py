"""Bilibili open platform videos (docs/platforms.md §12): the ``bilibili`` channel type.

- ``codes``: paths, error codes, limits and archive states as data, and reading answers;
- ``api``: settings, the user's tokens (stored, refreshed single-flight) and the signed call;
- ``channel``: content rules, rendering, upload and submission, review polling, lookup,
  figures, check.

The entry point is ``kepubot.channels.bilibili:BilibiliChannel``.
"""

from __future__ import annotations

from kepubot.channels.bilibili.api import BilibiliApi, BilibiliSettings
from kepubot.channels.bilibili.channel import BilibiliChannel
from kepubot.channels.bilibili.codes import ERRORS, PATHS

__all__ = ["ERRORS", "PATHS", "BilibiliApi", "BilibiliChannel", "BilibiliSettings"]
