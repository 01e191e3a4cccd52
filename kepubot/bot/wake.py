"""The daemon's wake-up thread on PostgreSQL (docs/architecture.md §11.5).

Waits on ``LISTEN kepubot_due`` with a timeout of the poll interval, or less when a queued
delivery's ``not_before`` comes sooner, and dispatches when woken. The scheduler's dispatch
tick keeps running beside it: a lost connection or a missed notification only delays work
until the next poll, never loses it. SQLite daemons only poll.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from kepubot.queue import wakeup

if TYPE_CHECKING:
    from kepubot.bot.dispatch import Engine

log = logging.getLogger("kepubot.bot.wake")

MIN_WAIT = 0.05  # seconds; a not_before that has just passed never spins the loop
RETRY_SECONDS = 5.0


def start(engine: Engine, stop: threading.Event) -> threading.Thread | None:
    """Start the wake-up thread when the database is PostgreSQL (None on SQLite)."""
    if engine.app.store.dialect != "postgresql":
        return None
    thread = threading.Thread(target=_loop, args=(engine, stop), name="kepubot-wake", daemon=True)
    thread.start()
    return thread


def _timeout(engine: Engine) -> float:
    poll = float(engine.settings.poll_seconds)
    now = engine.clock()
    upcoming = engine.store.wakeup.next_not_before(now)
    if upcoming is None:
        return poll
    return max(MIN_WAIT, min(poll, (upcoming - now).total_seconds()))


def _loop(engine: Engine, stop: threading.Event) -> None:
    while not stop.is_set():
        listener: wakeup.Listener | None = None
        try:
            listener = wakeup.Listener(engine.app.store)
            log.info("listening for due work on %s", wakeup.CHANNEL)
            while not stop.is_set() and not engine.stopping.is_set():
                listener.wait(_timeout(engine))
                if stop.is_set() or engine.stopping.is_set():
                    break
                engine.dispatch()
        except Exception as exc:  # the connection dropped: poll meanwhile, then listen again
            if engine.stopping.is_set():
                return  # shutting down: its connections are being closed
            log.warning("wake-up listener: %s; polling until it reconnects", exc)
            stop.wait(RETRY_SECONDS)
        finally:
            if listener is not None:
                with contextlib.suppress(Exception):
                    listener.close()
        if engine.stopping.is_set():
            return
