"""Claim due deliveries, publish each once, record the outcome (docs/delivery.md §2).

Per delivery: claim (lease) -> commit the intent (``sending`` + an attempt row) -> call the
platform exactly once -> record what happened. How a failure is recorded depends on whether
the request may have reached the platform (docs/delivery.md §4.4):

- refused before sending / rate limited / transient code -> ``queued`` with backoff
  (Retry-After honoured), ``failed`` after ``max_attempts``;
- auth failure -> ``queued`` (never failed for it) and the channel's breaker opens;
- permanent (content refused) -> ``failed`` with the platform's reason;
- ambiguous (timeout, reset, 5xx, crash) -> ``unknown``, settled by reconciliation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from kepubot.bot.crash import crash_point
from kepubot.channels.base import Processing, Progress, Published, parse_rate_limit
from kepubot.errors import (
    AuthExpired,
    ChannelError,
    LeaseLost,
    OutcomeUnknown,
    Permanent,
    RateLimited,
)
from kepubot.models import Delivery
from kepubot.queue.store import host_name
from kepubot.services import pauses
from kepubot.timeutil import bounded_wait, utcnow

if TYPE_CHECKING:
    from kepubot.app import App

log = logging.getLogger("kepubot.bot.dispatch")

AUTH_PROBE_SECONDS = 900.0
DEFAULT_RATE_LIMIT_WAIT = 60.0


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """AWS "full jitter": uniform in [0, min(cap, base * 2^(attempt-1))]."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(0, ceiling)


class Engine:
    """The publishing side of one daemon process. Thread-safe: each thread's repository calls
    go through its own connection (``Store``, docs/architecture.md §17)."""

    def __init__(
        self,
        app: App,
        *,
        worker: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        # the daemon uses every channel, the token key and the alert URLs: every ${ENV} they
        # reference must be set, and all that are missing are named at once before anything runs
        app.require_secrets(None, sections=("kepubot", "alerts"))
        self.store = app.store
        self.store.migrate()  # before any thread connects
        self.settings = app.config.data.daemon
        self.worker = worker or f"{host_name()}:{os.getpid()}"
        self.clock = clock
        self.stopping = threading.Event()
        # in the daemon a finished send claims the next one at once; `run --once` drives
        # dispatch itself and turns this off so that nothing is claimed behind its back
        self.auto_refill = True
        self._lock = threading.Lock()
        self._claim_lock = threading.Lock()
        self._in_flight: set[Future[None]] = set()
        self._executor = ThreadPoolExecutor(
            max_workers=self.settings.workers, thread_name_prefix="kepubot-send"
        )
        self.rate_limits: dict[str, tuple[int, float]] = {}
        for name, channel in app.channels.items():
            if channel.settings.rate_limit:
                count, period = parse_rate_limit(channel.settings.rate_limit)
                self.rate_limits[name] = (count, float(period))
        self.instance = self.store.ops.instance_id()
        self.fingerprints = {
            name: self._fingerprint(channel.settings) for name, channel in app.channels.items()
        }
        self._resume_reauthorized()

    def _fingerprint(self, settings: Any) -> str:
        """A salted, truncated digest of a channel's configured secrets: enough to notice that
        they changed, useless for recovering them."""
        import hashlib

        from kepubot.logsafe import secret_values

        digest = hashlib.sha256(self.instance.encode())
        for value in secret_values(settings):
            digest.update(b"\0" + value.encode())
        return digest.hexdigest()[:16]

    def _resume_reauthorized(self) -> None:
        now = self.clock()
        for name, fingerprint in self.fingerprints.items():
            with self.store.transaction():
                resumed = self.store.limits.resume_if_credentials_changed(name, fingerprint, now)
            if resumed:
                log.info("channel %s: credentials changed since they were refused; resuming", name)

    # --- plumbing ---------------------------------------------------------------------------

    def idempotency_key(self, delivery: Delivery) -> str:
        return f"kepubot-{self.instance}-{delivery.id}"

    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def wait_any(self, timeout: float | None = None) -> None:
        """Wait until at least one send in flight finishes (or none is in flight)."""
        from concurrent.futures import FIRST_COMPLETED, wait

        with self._lock:
            pending = list(self._in_flight)
        if pending:
            wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for every send in flight; True when none is left."""
        with self._lock:
            pending = list(self._in_flight)
        for future in pending:
            with contextlib.suppress(Exception):  # a send logs its own errors
                future.result(timeout=timeout)
        return self.in_flight() == 0

    def close(self, wait: bool = True) -> None:
        self._executor.shutdown(wait=wait, cancel_futures=True)
        # the worker threads' connections; the calling thread's belongs to the App
        self.app.store.close(keep_current=True)

    # --- claiming -----------------------------------------------------------------------------

    def dispatch(self) -> int:
        """Claim due deliveries while worker slots are free; returns how many were claimed."""
        if not self._claim_lock.acquire(blocking=False):
            return 0  # another thread is claiming right now; it will fill the slots
        claimed = 0
        try:
            while not self.stopping.is_set() and self.in_flight() < self.settings.workers:
                now = self.clock()
                # a read first: a claim that can find nothing (every due delivery's channel
                # busy) costs a write transaction, on PostgreSQL several round trips under
                # the writers' lock (docs/architecture.md §11.5)
                if not self.store.wakeup.anything_claimable(now):
                    break
                delivery = self.store.deliveries.claim_next(
                    worker=self.worker,
                    now=now,
                    lease_seconds=self.settings.lease_seconds,
                    rate_limits=self.rate_limits,
                    hold_publishing=pauses.blacked_out_channels(
                        self.app.config, self.app.channels, now, self.app.tz
                    ),
                )
                if delivery is None:
                    break
                claimed += 1
                crash_point("after-claim")
                future = self._executor.submit(self._send_safely, delivery)
                with self._lock:
                    self._in_flight.add(future)
                future.add_done_callback(self._finished)
        finally:
            self._claim_lock.release()
        return claimed

    def _finished(self, future: Future[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)
        if self.auto_refill and not self.stopping.is_set():
            # keep the pipeline full without waiting for the next tick
            try:
                self.dispatch()
            except Exception:
                log.exception("dispatch after a finished send failed")

    def stop_claiming(self, timeout: float) -> bool:
        """No claim from now on: set ``stopping`` and wait (at most ``timeout``) for a dispatch
        that is running in another thread (a scheduler tick, a finished send's refill) to hand
        its claims to the workers, so that ``wait_idle`` sees every send this process started.
        The claim lock is kept: nothing claims after this. False when the wait timed out."""
        self.stopping.set()
        return self._claim_lock.acquire(timeout=max(0.0, timeout))

    def release_claims(self) -> int:
        """On shutdown: give back claims this process holds that have not started sending."""
        released = 0
        now = self.clock()
        for delivery_id in self.store.deliveries.claimed_by(self.worker):
            delivery = self.store.deliveries.get(delivery_id)
            try:
                self.store.deliveries.release_claim(
                    delivery=delivery, worker=self.worker, now=now, reason="shutdown"
                )
                released += 1
            except LeaseLost:
                pass
        return released

    # --- one send -------------------------------------------------------------------------------

    def _send_safely(self, delivery: Delivery) -> None:
        try:
            self.send(delivery)
        except LeaseLost as exc:
            log.warning("delivery %s: %s; another worker owns it now", delivery.id, exc)
        except Exception:
            log.exception("delivery %s: unexpected error in the send path", delivery.id)

    def send(self, delivery: Delivery) -> None:
        channel = self.app.channels.get(delivery.channel)
        now = self.clock()
        if channel is None:
            self.store.deliveries.release_claim(
                delivery=delivery,
                worker=self.worker,
                now=now,
                not_before=now + timedelta(minutes=10),
                reason="channel not configured",
            )
            log.error(
                "delivery %s: channel %s is not configured; it waits", delivery.id, delivery.channel
            )
            return
        from kepubot.services.posts import get_post

        post = get_post(self.app, delivery.post_id)
        if delivery.kind == "retract":
            self._retract(delivery, channel, post)
            return
        # a correction links the post it corrects where the channel can (docs/delivery.md §15)
        post.corrects = self.store.retraction.original_link(post.id)
        if post.state != "approved" or post.approved_hash != delivery.content_hash:
            # Content must be exactly what was approved. A post sent back to review holds its
            # deliveries in `pending`, so a queued one with other content means the approved
            # content was changed behind the workflow's back: fail it, never send it.
            self.store.deliveries.begin_send(
                delivery=delivery,
                worker=self.worker,
                now=now,
                lease_seconds=self.settings.lease_seconds,
            )
            self.store.deliveries.record_failed(
                delivery=delivery,
                worker=self.worker,
                now=now,
                error_kind="permanent",
                error="the post's content differs from the approved content; approve it again",
            )
            return
        crash_point("before-intent")
        self.store.deliveries.begin_send(
            delivery=delivery,
            worker=self.worker,
            now=now,
            lease_seconds=self.settings.lease_seconds,
        )
        crash_point("after-intent")
        progress = Progress(
            delivery.progress,
            on_save=lambda data: self.store.deliveries.save_progress(
                delivery=delivery, worker=self.worker, progress=data, now=self.clock()
            ),
        )
        progress.setdefault("idempotency_key", self.idempotency_key(delivery))
        progress.setdefault("delivery_id", delivery.id)  # e.g. named in a copy pack's README
        log.info(
            "delivery %s: publishing post %s to %s (attempt %d)",
            delivery.id,
            post.id,
            delivery.channel,
            delivery.attempts,
        )
        try:
            result: Any = channel.publish(post, progress)
        except ChannelError as exc:
            crash_point("after-response")
            self._record_error(delivery, exc)
            return
        except NotImplementedError as exc:
            self._record_error(delivery, Permanent(str(exc)))
            return
        except Exception as exc:  # a bug in a channel: the request may have gone out
            log.exception(
                "delivery %s: channel %s raised unexpectedly", delivery.id, delivery.channel
            )
            self._record_error(delivery, OutcomeUnknown(f"unexpected {type(exc).__name__}: {exc}"))
            return
        crash_point("after-response")
        now = self.clock()
        if isinstance(result, Published):
            self.store.deliveries.record_published(
                delivery=delivery,
                worker=self.worker,
                now=now,
                remote_id=result.remote_id,
                remote_url=result.remote_url,
                published_at=result.published_at,
            )
            log.info(
                "delivery %s: published on %s as %s",
                delivery.id,
                delivery.channel,
                result.remote_id,
            )
        elif isinstance(result, Processing):
            self.store.deliveries.record_processing(
                delivery=delivery,
                worker=self.worker,
                now=now,
                progress={**progress, **result.progress},
                poll_at=now + timedelta(seconds=bounded_wait(result.poll_after_seconds)),
            )
            log.info("delivery %s: accepted by %s, processing", delivery.id, delivery.channel)
        else:
            self._record_error(
                delivery, OutcomeUnknown(f"channel returned {type(result).__name__}")
            )
            return
        crash_point("after-outcome")
        self._breaker_success(delivery.channel, now)

    def _retract(self, delivery: Delivery, channel: Any, post: Any) -> None:
        """A retraction (docs/delivery.md §14): the same claim, intent, one call and outcome
        recording as a publication; only the call differs."""
        now = self.clock()
        if not channel.capabilities.retract:
            task = (
                f"{delivery.channel} offers no deletion interface: remove post {post.id} there by"
                f" hand ({delivery.remote_url or delivery.remote_id}), then run `kepubot delivery"
                f" resolve {delivery.id} --retracted`"
            )
            self.store.retraction.hand_to_person(
                delivery=delivery, worker=self.worker, now=now, task=task
            )
            self._alert_retract_task(delivery, post, task, now)
            return
        crash_point("retract-before-intent")
        self.store.deliveries.begin_send(
            delivery=delivery,
            worker=self.worker,
            now=now,
            lease_seconds=self.settings.lease_seconds,
        )
        crash_point("retract-after-intent")
        progress = Progress(
            delivery.progress,
            on_save=lambda data: self.store.deliveries.save_progress(
                delivery=delivery, worker=self.worker, progress=data, now=self.clock()
            ),
        )
        progress.setdefault("retract_key", f"{self.idempotency_key(delivery)}-retract")
        log.info("delivery %s: retracting post %s on %s", delivery.id, post.id, delivery.channel)
        try:
            channel.retract(delivery, post, progress)
        except ChannelError as exc:
            crash_point("retract-after-response")
            self._record_error(delivery, exc)
            return
        except NotImplementedError as exc:
            self._record_error(delivery, Permanent(str(exc)))
            return
        except Exception as exc:  # a bug in a channel: the delete may have gone out
            log.exception("delivery %s: retract on %s raised", delivery.id, delivery.channel)
            self._record_error(delivery, OutcomeUnknown(f"unexpected {type(exc).__name__}: {exc}"))
            return
        crash_point("retract-after-response")
        now = self.clock()
        self.store.retraction.record_retracted(delivery=delivery, worker=self.worker, now=now)
        log.info("delivery %s: retracted on %s", delivery.id, delivery.channel)
        crash_point("retract-after-outcome")
        self._breaker_success(delivery.channel, now)

    def _alert_retract_task(self, delivery: Delivery, post: Any, task: str, now: datetime) -> None:
        from kepubot.services.alerts import raise_alert

        raise_alert(
            self.app,
            key=f"attention:{delivery.id}",
            now=now,
            title=f"kepubot：请人工撤回稿件 {post.id}（{delivery.channel}）",
            body=f"稿件 {post.id}《{post.title}》需在 {delivery.channel} 撤回，但该平台没有删除接口。"
            f"\n撤回原因：{delivery.retract_reason or ''}\n{task}",
        )

    def _breaker_success(self, channel: str, now: datetime) -> None:
        if not self.store.limits.needs_success_write(channel):
            return
        with self.store.transaction():
            closed = self.store.limits.record_success(channel, now)
        if closed:
            log.info("channel %s: breaker closed after a successful send", channel)

    def _breaker_failure(
        self, channel: str, now: datetime, kind: str, reason: str, wait: float | None = None
    ) -> None:
        """Count the failure on the channel's breaker. Called BEFORE the delivery's outcome is
        recorded: recording it ends the channel's send in flight, and a breaker opened only
        afterwards would let another worker send to the same refusing account meanwhile."""
        with self.store.transaction():
            until = self.store.limits.record_failure(
                channel,
                now,
                kind=kind,
                reason=reason,
                wait_seconds=wait,
                failures_to_open=self.settings.breaker_failures,
                open_seconds=self.settings.breaker_open_seconds,
            )
            if kind == "auth" and channel in self.fingerprints:
                self.store.limits.set_auth_fingerprint(channel, self.fingerprints[channel])
        if until is not None:
            log.warning(
                "channel %s: breaker open until %s (%s: %s)",
                channel,
                until.isoformat(),
                kind,
                reason,
            )

    def _alert_reauthorize(self, channel: str, reason: str, now: datetime) -> None:
        from kepubot.services.alerts import raise_alert

        raise_alert(
            self.app,
            key=f"auth:{channel}",
            now=now,
            title=f"kepubot: channel {channel} needs re-authorization",
            body=f"Channel {channel} refused its credentials ({reason}). Its deliveries wait"
            " in the queue; configure new credentials and they will be sent.",
        )

    def _record_error(self, delivery: Delivery, exc: ChannelError) -> None:
        now = self.clock()
        message = str(exc)[:1000]
        channel = delivery.channel
        if isinstance(exc, OutcomeUnknown):
            self._breaker_failure(channel, now, "unknown", message)
            self.store.deliveries.record_unknown(
                delivery=delivery,
                worker=self.worker,
                now=now,
                error=message,
                look_at=now + timedelta(seconds=self.settings.reconcile_after_seconds),
            )
            log.warning(
                "delivery %s: outcome unknown (%s); will reconcile, never resend blindly",
                delivery.id,
                message,
            )
            return
        if isinstance(exc, Permanent):
            self.store.deliveries.record_failed(
                delivery=delivery,
                worker=self.worker,
                now=now,
                error_kind="permanent",
                error=message,
            )
            log.error("delivery %s: failed permanently on %s: %s", delivery.id, channel, message)
            return
        if isinstance(exc, AuthExpired):
            self._breaker_failure(channel, now, "auth", message, wait=AUTH_PROBE_SECONDS)
            self.store.deliveries.record_retry(
                delivery=delivery,
                worker=self.worker,
                now=now,
                not_before=now,
                error_kind="auth",
                error=message,
            )
            self._alert_reauthorize(channel, message, now)
            return
        if isinstance(exc, RateLimited):
            wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT
            if bounded_wait(wait) != wait:
                log.warning(
                    "delivery %s: %s asked to wait %r s; waiting %d s instead",
                    delivery.id,
                    channel,
                    wait,
                    bounded_wait(wait),
                )
                wait = bounded_wait(wait)
            self._breaker_failure(channel, now, "rate_limited", message, wait=wait)
            kind = "rate_limited"
        else:
            wait = full_jitter(
                delivery.attempts,
                self.settings.backoff_base_seconds,
                self.settings.backoff_cap_seconds,
            )
            self._breaker_failure(channel, now, "transient", message)
            kind = "transient"
        if delivery.attempts >= self.settings.max_attempts:
            self.store.deliveries.record_failed(
                delivery=delivery,
                worker=self.worker,
                now=now,
                error_kind=kind,
                error=f"gave up after {delivery.attempts} attempts: {message}",
            )
            log.error(
                "delivery %s: failed after %d attempts: %s", delivery.id, delivery.attempts, message
            )
            return
        not_before = now + timedelta(seconds=wait)
        self.store.deliveries.record_retry(
            delivery=delivery,
            worker=self.worker,
            now=now,
            not_before=not_before,
            error_kind=kind,
            error=message,
        )
        log.warning(
            "delivery %s: %s on %s; retry not before %s",
            delivery.id,
            message,
            channel,
            not_before.isoformat(),
        )
