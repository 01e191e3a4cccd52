"""Repositories: the storage interface the rest of kepubot sees (docs/architecture.md §17).

The SQL lives in the storage modules of ``kepubot.queue`` as functions whose first argument is
a connection (``deliveries.get(conn, 7)``). Nothing outside ``kepubot.queue`` calls them that
way: it asks the ``Store`` for a repository, whose methods are those functions bound to the
calling thread's connection (``store.deliveries.get(7)``), and groups writes with
``store.transaction()``. So a caller never holds a connection, every thread gets its one
connection the one way (``Store.conn``), and a second storage backend replaces only this
package.

A repository class lists the functions it offers with ``bound``; the functions keep their
signatures (minus the connection), so mypy checks every call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from kepubot.queue import (
    accounts,
    assisted,
    audit,
    calendar,
    deliveries,
    limits,
    media,
    metrics,
    ops,
    pauses,
    postpause,
    posts,
    reporting,
    retraction,
    wakeup,
)

if TYPE_CHECKING:
    from kepubot.queue.store import Store

P = ParamSpec("P")
R = TypeVar("R")


class Repository:
    """One table group's storage functions on the calling thread's connection."""

    def __init__(self, store: Store) -> None:
        self._store = store


class bound(Generic[P, R]):
    """``fn(conn, *args, **kwargs)`` offered as ``repository.fn(*args, **kwargs)``."""

    def __init__(self, fn: Callable[Concatenate[Any, P], R]) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    @overload
    def __get__(self, repo: None, owner: type[Any]) -> bound[P, R]: ...

    @overload
    def __get__(self, repo: Repository, owner: type[Any]) -> Callable[P, R]: ...

    def __get__(self, repo: Repository | None, owner: type[Any]) -> Any:
        if repo is None:
            return self
        return functools.partial(self.fn, repo._store.conn())


class Deliveries(Repository):
    """Deliveries and their state transitions (docs/delivery.md §2)."""

    get = bound(deliveries.get)
    for_post = bound(deliveries.for_post)
    list_deliveries = bound(deliveries.list_deliveries)
    due_ids = bound(deliveries.due_ids)
    claimed_by = bound(deliveries.claimed_by)
    first_attempt_started = bound(deliveries.first_attempt_started)
    uncertain_since = bound(deliveries.uncertain_since)
    oldest_overdue = bound(deliveries.oldest_overdue)
    needing_a_look = bound(deliveries.needing_a_look)
    counts_by_channel = bound(deliveries.counts_by_channel)
    counts_of = bound(deliveries.counts_of)
    counts_by_state = bound(deliveries.counts_by_state)
    queue_for_post = bound(deliveries.queue_for_post)
    hold_for_review = bound(deliveries.hold_for_review)
    in_flight_or_done = bound(deliveries.in_flight_or_done)
    cancel_for_post = bound(deliveries.cancel_for_post)
    reschedule = bound(deliveries.reschedule)
    claim_next = bound(deliveries.claim_next)
    begin_send = bound(deliveries.begin_send)
    release_claim = bound(deliveries.release_claim)
    save_progress = bound(deliveries.save_progress)
    record_published = bound(deliveries.record_published)
    record_processing = bound(deliveries.record_processing)
    record_retry = bound(deliveries.record_retry)
    record_failed = bound(deliveries.record_failed)
    record_unknown = bound(deliveries.record_unknown)
    lease_owners = bound(deliveries.lease_owners)
    expire_leases = bound(deliveries.expire_leases)
    record_reconciled = bound(deliveries.record_reconciled)
    note_reconcile_try = bound(deliveries.note_reconcile_try)
    record_polled = bound(deliveries.record_polled)
    operator_retry = bound(deliveries.operator_retry)
    operator_resolve = bound(deliveries.operator_resolve)


class Audit(Repository):
    """The hash-chained audit log (docs/architecture.md §9)."""

    append = bound(audit.append)
    rows_for_post = bound(audit.rows_for_post)
    recent = bound(audit.recent)
    head_hash = bound(audit.head_hash)
    verify = bound(audit.verify)


class Metrics(Repository):
    """Reach snapshots and their collection schedule."""

    due = bound(metrics.due)
    claim = bound(metrics.claim)
    schedule = bound(metrics.schedule)
    unschedule = bound(metrics.unschedule)
    store = bound(metrics.store)
    snapshots = bound(metrics.snapshots)
    store_account = bound(metrics.store_account)
    account_collected = bound(metrics.account_collected)
    latest_for_post = bound(metrics.latest_for_post)
    planned = bound(metrics.planned)
    # figures imported from an export or typed by hand, marked with their source
    store_snapshot = bound(assisted.store_snapshot)


class Limits(Repository):
    """Per-channel rate tokens and circuit breakers."""

    blocked_channels = bound(limits.blocked_channels)
    take_token = bound(limits.take_token)
    mark_probe = bound(limits.mark_probe)
    needs_success_write = bound(limits.needs_success_write)
    record_success = bound(limits.record_success)
    record_failure = bound(limits.record_failure)
    set_auth_fingerprint = bound(limits.set_auth_fingerprint)
    resume_if_credentials_changed = bound(limits.resume_if_credentials_changed)
    states = bound(limits.states)


class Ops(Repository):
    """The daemons' bookkeeping: heartbeats, one-time claims, remembered alerts, checkpoints."""

    instance_id = bound(ops.instance_id)
    claim_once = bound(ops.claim_once)
    heartbeat = bound(ops.heartbeat)
    daemons = bound(ops.daemons)
    alerted_since = bound(ops.alerted_since)
    remember_alerts = bound(ops.remember_alerts)
    wal_checkpoint = bound(ops.wal_checkpoint)


class Wakeup(Repository):
    """When the next delivery becomes claimable (the daemon's sleep)."""

    next_not_before = bound(wakeup.next_not_before)
    anything_claimable = bound(wakeup.anything_claimable)


class Pauses(Repository):
    """The emergency stop: paused scopes (docs/operations.md §13)."""

    paused = bound(pauses.paused)
    paused_scopes = bound(pauses.paused_scopes)
    add = bound(pauses.add)
    lift = bound(pauses.lift)


class Retraction(Repository):
    """Retractions and corrections (docs/delivery.md §14, §15)."""

    original_link = bound(retraction.original_link)
    hand_to_person = bound(retraction.hand_to_person)
    record_retracted = bound(retraction.record_retracted)
    correction_of = bound(retraction.correction_of)
    corrections_of = bound(retraction.corrections_of)
    start = bound(retraction.start)
    operator_resolve = bound(retraction.operator_resolve)
    link_correction = bound(retraction.link_correction)


class Assisted(Repository):
    """Assisted publishing's tasks (docs/delivery.md §17)."""

    open_tasks = bound(assisted.open_tasks)
    cancelled_since = bound(assisted.cancelled_since)
    figure_sources = bound(assisted.figure_sources)
    record_confirmed = bound(assisted.record_confirmed)
    record_declined = bound(assisted.record_declined)
    published_on = bound(assisted.published_on)


class Reporting(Repository):
    """What reports add up: published deliveries, their figures and trouble per period
    (docs/architecture.md §15.4)."""

    published_rows = bound(reporting.published_rows)
    period_totals = bound(reporting.period_totals)
    trouble_counts = bound(reporting.trouble_counts)
    followers_gained = bound(reporting.followers_gained)
    retracted_posts = bound(reporting.retracted_posts)


class Accounts(Repository):
    """Console passwords and sessions (docs/architecture.md §3.9)."""

    has_password = bound(accounts.has_password)
    start_session = bound(accounts.start_session)
    session_user = bound(accounts.session_user)
    end_session = bound(accounts.end_session)
    live_sessions = bound(accounts.live_sessions)
    stored_hash = bound(accounts.stored_hash)
    store_password = bound(accounts.store_password)
    end_sessions = bound(accounts.end_sessions)
    end_live_sessions = bound(accounts.end_live_sessions)
    failures_since = bound(accounts.failures_since)
    clear_failures = bound(accounts.clear_failures)
    record_failure = bound(accounts.record_failure)
    forget_failures_before = bound(accounts.forget_failures_before)


class PostPauses(Repository):
    """Paused posts: their deliveries wait until resumed (docs/delivery.md §18)."""

    get = bound(postpause.get)
    among = bound(postpause.among)
    paused_posts = bound(postpause.paused_posts)
    add = bound(postpause.add)
    remove = bound(postpause.remove)


class Posts(Repository):
    """Posts, their channels and their reviews (docs/architecture.md §4)."""

    get = bound(posts.get)
    list_posts = bound(posts.list_posts)
    scheduled_between = bound(posts.scheduled_between)
    count_in_state = bound(posts.count_in_state)
    titles_of = bound(posts.titles_of)
    same_title_and_body = bound(posts.same_title_and_body)
    by_titles = bound(posts.by_titles)
    insert = bound(posts.insert)
    update = bound(posts.update)
    replace_channels = bound(posts.replace_channels)
    start_review = bound(posts.start_review)
    set_level = bound(posts.set_level)
    mark_approved = bound(posts.mark_approved)
    mark_rejected = bound(posts.mark_rejected)
    mark_cancelled = bound(posts.mark_cancelled)
    set_schedule = bound(posts.set_schedule)
    reviews_of = bound(posts.reviews_of)
    add_review = bound(posts.add_review)
    level_approved = bound(posts.level_approved)
    other_level_approved_by = bound(posts.other_level_approved_by)
    approved_hashes = bound(posts.approved_hashes)
    approvers = bound(posts.approvers)
    last_review = bound(posts.last_review)


class Calendar(Repository):
    """The publishing calendar's reads: deliveries of a period, due times near a moment."""

    entries = bound(calendar.entries)
    counts = bound(calendar.counts)
    latest_due_between = bound(calendar.latest_due_between)


class Media(Repository):
    """What posts say about the media store: referenced paths, the media page (§15.2)."""

    referenced_paths = bound(media.referenced_paths)
    library = bound(media.library)
