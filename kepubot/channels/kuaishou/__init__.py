"""Kuaishou open platform videos (docs/platforms.md §13): the ``kuaishou`` channel type.

- ``codes``: paths, result codes and limits as data, and reading answers;
- ``api``: settings, the user's tokens (stored, refreshed single-flight) and the one call;
- ``channel``: content rules, rendering, start_upload → upload → publish, lookup, figures,
  check.

The entry point is ``kepubot.channels.kuaishou:KuaishouChannel``.
"""

from __future__ import annotations

from kepubot.channels.kuaishou.api import KuaishouApi, KuaishouSettings
from kepubot.channels.kuaishou.channel import KuaishouChannel
from kepubot.channels.kuaishou.codes import ERRORS, PATHS

__all__ = ["ERRORS", "PATHS", "KuaishouApi", "KuaishouChannel", "KuaishouSettings"]
