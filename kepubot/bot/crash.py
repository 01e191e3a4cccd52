"""Named crash points for tests: ``KEPUBOT_CRASH_AT=NAME[:N]`` kills the process with SIGKILL
the N-th time (default the first) execution reaches NAME. Several points: comma-separated.

Points: ``after-claim``, ``before-intent``, ``after-intent`` (intent committed, nothing sent),
``after-response`` (the platform answered, outcome not yet recorded), ``after-outcome``; a
retraction (docs/delivery.md §14) has the same points prefixed ``retract-``.
"""

from __future__ import annotations

import os
import signal
import threading

POINTS = ("after-claim", "before-intent", "after-intent", "after-response", "after-outcome")

_lock = threading.Lock()
_counts: dict[str, int] = {}


def _plan() -> dict[str, int]:
    plan: dict[str, int] = {}
    for item in os.environ.get("KEPUBOT_CRASH_AT", "").split(","):
        item = item.strip()
        if not item:
            continue
        name, _, nth = item.partition(":")
        plan[name] = int(nth) if nth.isdigit() else 1
    return plan


def crash_point(name: str) -> None:
    if "KEPUBOT_CRASH_AT" not in os.environ:
        return
    target = _plan().get(name)
    if target is None:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        hit = _counts[name] == target
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
