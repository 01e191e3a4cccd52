"""``kepubot run``: APScheduler ticks in memory, the database decides (docs/delivery.md §1, §12).

Jobs: dispatch (every ``poll_seconds``), reconcile + poll (leases, unknown outcomes,
processing), watchdog, heartbeat, WAL checkpoint. Every job is idempotent, so several daemons
ticking at once on one database is harmless. SIGTERM/SIGINT: stop claiming, give in-flight
sends ``shutdown_seconds``, give back claims not yet sending, exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import UTC
from typing import TYPE_CHECKING, Any

from kepubot.bot import collect, reconcile, wake, watchdog, weekly
from kepubot.bot.dispatch import Engine
from kepubot.queue.store import host_name

if TYPE_CHECKING:
    from kepubot.app import App

log = logging.getLogger("kepubot.bot.daemon")

HEARTBEAT_SECONDS = 5.0
RECONCILE_SECONDS = 5.0
CHECKPOINT_SECONDS = 300.0


def heartbeat(engine: Engine, *, stopped: bool = False) -> None:
    engine.store.ops.heartbeat(
        worker=engine.worker,
        host=host_name(),
        pid=os.getpid(),
        now=engine.clock(),
        stopped=stopped,
    )


def housekeeping(engine: Engine) -> None:
    """Leases, unknown outcomes and processing polls: one idempotent pass."""
    reconcile.expire(engine)
    reconcile.reconcile_unknown(engine)
    reconcile.poll_processing(engine)


def run_once(app: App, engine: Engine | None = None) -> dict[str, Any]:
    """One full pass, then return (for cron and tests)."""
    own = engine is None
    engine = engine or Engine(app)
    engine.auto_refill = False
    try:
        heartbeat(engine)
        housekeeping(engine)
        claimed = 0
        while not engine.stopping.is_set():
            n = engine.dispatch()
            claimed += n
            if n == 0 and engine.in_flight() == 0:
                break
            # refill a slot as soon as any send finishes, not when the whole batch has
            engine.wait_any()
        engine.wait_idle()
        collected = collect.collect_pass(engine)
        collect.collect_accounts(engine)
        alerts = watchdog.check(engine)
        weekly.run_weekly(engine)
        heartbeat(engine, stopped=True)
        return {"claimed": claimed, "alerts": len(alerts), "metrics": collected["collected"]}
    finally:
        if own:
            engine.close()


def _guard(name: str, function: Any) -> Any:
    def job() -> None:
        try:
            function()
        except Exception:  # one bad tick is logged, never kills the loop
            log.exception("%s tick failed", name)

    return job


def run_forever(app: App) -> int:
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
    from apscheduler.schedulers.background import BackgroundScheduler

    engine = Engine(app)
    settings = engine.settings
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("received %s: stopping (no new claims)", signal.Signals(signum).name)
        engine.stopping.set()
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
    )

    def on_event(event: Any) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("tick %s ran late; due work is only delayed, never lost", event.job_id)
        elif event.code == EVENT_JOB_ERROR:
            log.error("tick %s raised: %s", event.job_id, event.exception)

    scheduler.add_listener(on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    scheduler.add_job(
        _guard("dispatch", engine.dispatch),
        "interval",
        seconds=settings.poll_seconds,
        id="dispatch",
    )
    scheduler.add_job(
        _guard("reconcile", lambda: housekeeping(engine)),
        "interval",
        seconds=RECONCILE_SECONDS,
        id="reconcile",
    )
    scheduler.add_job(
        _guard("watchdog", lambda: watchdog.check(engine)),
        "interval",
        seconds=settings.watchdog_seconds,
        id="watchdog",
    )
    scheduler.add_job(
        _guard("weekly report", lambda: weekly.run_weekly(engine)),
        "interval",
        seconds=60,
        id="weekly",
    )
    scheduler.add_job(
        _guard("collect", lambda: (collect.collect_pass(engine), collect.collect_accounts(engine))),
        "interval",
        seconds=app.config.data.metrics.collect_seconds,
        id="collect",
    )
    scheduler.add_job(
        _guard("heartbeat", lambda: heartbeat(engine)),
        "interval",
        seconds=HEARTBEAT_SECONDS,
        id="heartbeat",
    )
    scheduler.add_job(
        _guard("checkpoint", lambda: checkpoint(engine)),
        "interval",
        seconds=CHECKPOINT_SECONDS,
        id="checkpoint",
    )

    log.info(
        "daemon %s started (workers=%d, poll every %.1f s)",
        engine.worker,
        settings.workers,
        settings.poll_seconds,
    )
    heartbeat(engine)
    housekeeping(engine)
    engine.dispatch()
    scheduler.start()
    # PostgreSQL: LISTEN/NOTIFY wakes this daemon when something becomes due (§11.5)
    wake.start(engine, stop)
    stop.wait()

    deadline = time.monotonic() + settings.shutdown_seconds
    scheduler.shutdown(wait=False)
    # a dispatch tick still running may be handing a fresh claim to a worker: let it finish
    # first, or that send would start after wait_idle and meet closed connections
    engine.stop_claiming(timeout=deadline - time.monotonic())
    released = engine.release_claims()
    idle = engine.wait_idle(timeout=max(0.0, deadline - time.monotonic()))
    heartbeat(engine, stopped=True)
    if not idle:
        # Sends still running are left in `sending`; reconciliation settles them after restart.
        log.warning("shutdown deadline reached with sends in flight; they will be reconciled")
        logging.shutdown()
        os._exit(0)
    engine.close(wait=False)
    log.info("daemon %s stopped (%d claims given back)", engine.worker, released)
    return 0


def checkpoint(engine: Engine) -> None:
    busy, pages, done = engine.store.ops.wal_checkpoint()
    log.debug("WAL checkpoint: busy=%s log=%s checkpointed=%s", busy, pages, done)
