"""No silent loss: alert on every delivery overdue or stuck in a non-terminal state past its
window, and on every ``needs_attention``. Each alert is an ERROR log line plus a message to
the ``[alerts] urls``; the same alert repeats at most once per ``repeat_minutes``."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from kepubot.timeutil import to_db

if TYPE_CHECKING:
    from kepubot.bot.dispatch import Engine

log = logging.getLogger("kepubot.bot.watchdog")

WATCHED_STATES = ("queued", "claimed", "sending", "processing", "unknown", "needs_attention")
MAX_LINES = 30


def check(engine: Engine) -> list[str]:
    """One watchdog pass; returns the alert lines raised."""
    from kepubot.alerts import notify
    from kepubot.services.alerts import urls_of

    app = engine.app
    store = engine.store
    now = engine.clock()
    settings = engine.settings
    overdue_before = now - timedelta(minutes=settings.overdue_minutes)
    rows = store.deliveries.needing_a_look(
        overdue_before=overdue_before,
        stuck_before=now - timedelta(minutes=settings.stuck_minutes),
    )
    window_start = now - timedelta(minutes=app.config.data.alerts.repeat_minutes)
    # an assisted task (awaiting_person) is not among the generic checks' states: it has its
    # own clock, confirm_within_hours (docs/delivery.md §17.2)
    from kepubot.bot.assisted import check_tasks

    task_lines = check_tasks(engine)
    lines: list[str] = []
    keys: list[str] = []
    # a paused post's deliveries wait on purpose: still reported (nothing is lost silently),
    # saying why they wait (docs/delivery.md §18)
    held = store.post_pauses.among(row["post_id"] for row in rows)
    for row in rows:
        if row["state"] == "needs_attention":
            key, why = f"attention:{row['id']}", "needs attention"
        elif row["due_at"] < to_db(overdue_before):
            key, why = f"overdue:{row['id']}:{row['state']}", f"overdue since {row['due_at']}"
            pause = held.get(row["post_id"])
            if pause is not None:
                why += f" (post paused by {pause['paused_by']})"
        else:
            key, why = (
                f"stuck:{row['id']}:{row['state']}",
                f"stuck in {row['state']} since {row['updated_at']}",
            )
        if store.ops.alerted_since(key, window_start):
            continue
        keys.append(key)
        error = f" — {row['last_error']}" if row["last_error"] else ""
        lines.append(
            f"delivery {row['id']} (post {row['post_id']} on {row['channel']}, {row['state']}): {why}{error}"
        )
    if not lines:
        return task_lines
    title = f"kepubot: {len(lines)} deliveries need a look"
    body = "\n".join(lines[:MAX_LINES]) + (
        f"\n… and {len(lines) - MAX_LINES} more" if len(lines) > MAX_LINES else ""
    )
    store.ops.remember_alerts(keys, now, title)
    for line in lines:
        log.error("ALERT %s", line)
    notify(urls_of(app), title, body)
    return task_lines + lines
