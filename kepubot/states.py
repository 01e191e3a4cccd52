"""The delivery state machine as data: every state, every allowed transition, and what each
means (docs/delivery.md §2). Imports nothing of ours.

This module is the one live definition. ``kepubot.models`` re-exports the state names,
``kepubot.queue.deliveries`` checks every change against ``ALLOWED`` before writing, and the
database refuses any other change with the ``delivery_transitions`` table and its trigger.
The migrations do not import this module: each one keeps a frozen copy of the states and
transitions it created, so that changing this table never changes a migration that has
already run somewhere. Adding a state or a transition is therefore two edits, here and in a
new migration; ``tests/queue/test_states.py`` fails until both agree (docs/delivery.md §2.4).
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

#: Every state a delivery (one post x one channel) can be in.
DeliveryState = Literal[
    "pending",
    "queued",
    "claimed",
    "sending",
    "processing",
    "awaiting_person",
    "unknown",
    "needs_attention",
    "published",
    "failed",
    "cancelled",
    "retracted",
]
DELIVERY_STATES: tuple[str, ...] = get_args(DeliveryState)

#: What each state means (docs/delivery.md §2.1).
STATE_MEANINGS: dict[str, str] = {
    "pending": "approved once but back in review; waits for the new approval",
    "queued": "waiting to be claimed from not_before on",
    "claimed": "a daemon holds a lease on it; nothing has been sent",
    "sending": "the intent is committed; the platform call may be under way or done",
    "processing": "accepted by the platform, finishing asynchronously; polled",
    "awaiting_person": (
        "an assisted outlet's copy pack is written; a person publishes and confirms or declines"
        " (never polled or claimed; docs/delivery.md §17)"
    ),
    "unknown": "the request may or may not have been applied; reconciliation decides",
    "needs_attention": "nobody can tell automatically; a person decides (alerted)",
    "published": "on the platform, with remote_id/remote_url (terminal)",
    "failed": "refused for good, or out of attempts; an operator may retry",
    "cancelled": "withdrawn before sending (terminal)",
    "retracted": "was published, then taken back on the platform (terminal; docs/delivery.md §14)",
}

#: States no transition leaves (``failed`` only by an operator's retry).
TERMINAL_DELIVERY_STATES = frozenset({"published", "failed", "cancelled", "retracted"})
#: States in which a request is (or may be) with the platform or a daemon holds the row.
ACTIVE_STATES: tuple[str, ...] = ("claimed", "sending", "processing", "unknown")
#: States a delivery can still be withdrawn from: nothing has been sent.
CANCELLABLE_STATES: tuple[str, ...] = ("pending", "queued", "claimed")


class Transition(NamedTuple):
    """One allowed change: from ``source`` to ``target``, made by ``by`` (the function in
    kepubot/queue/deliveries.py), for the reason ``why``, and since which ``migration`` the
    database allows it."""

    source: str
    target: str
    by: str
    why: str
    migration: int = 1


#: Every allowed change (docs/delivery.md §2.2). Nothing leaves cancelled (published only for a
#: retraction, migration 18), and
#: nothing goes from sending or unknown to cancelled (a request that may be out cannot be
#: withdrawn locally).
TRANSITIONS: tuple[Transition, ...] = (
    Transition("pending", "queued", "queue_for_post", "approved again"),
    Transition(
        "pending", "cancelled", "queue_for_post, cancel_for_post", "no longer targeted or cancelled"
    ),
    Transition("queued", "claimed", "claim_next", "due, and the channel may send"),
    Transition("queued", "pending", "hold_for_review", "the approved post went back to review"),
    Transition("queued", "cancelled", "cancel_for_post", "withdrawn; nothing sent"),
    Transition("claimed", "sending", "begin_send", "the intent, committed before the call"),
    Transition(
        "claimed", "queued", "release_claim, expire_leases", "claim given back; nothing sent"
    ),
    Transition("claimed", "cancelled", "cancel_for_post", "withdrawn; nothing sent"),
    Transition("sending", "published", "record_published", "the platform answered with its id"),
    Transition("sending", "processing", "record_processing", "accepted asynchronously; poll"),
    Transition("sending", "queued", "record_retry", "definitely not applied; retry later"),
    Transition("sending", "failed", "record_failed", "refused for good or out of attempts"),
    Transition(
        "sending", "unknown", "record_unknown, expire_leases", "ambiguous error or sender died"
    ),
    Transition("processing", "published", "record_polled", "the asynchronous job finished"),
    Transition("processing", "failed", "record_polled", "the asynchronous job failed"),
    Transition("processing", "unknown", "(allowed by the table)", "job state unreadable"),
    Transition("unknown", "published", "record_reconciled", "found on the platform"),
    Transition(
        "unknown", "processing", "record_reconciled", "found as a platform job; poll it", 12
    ),
    Transition("unknown", "queued", "record_reconciled", "proven absent, or idempotent channel"),
    Transition("unknown", "needs_attention", "record_reconciled", "cannot be decided: a person"),
    Transition("needs_attention", "published", "operator_resolve", "a person found it published"),
    Transition("needs_attention", "queued", "operator_resolve", "a person found it absent"),
    Transition("failed", "queued", "operator_retry", "an operator retries"),
    # A retraction is the same row walking the engine again with kind = 'retract'
    # (docs/delivery.md §14); migration 18 lets `published` be left only that way.
    Transition("published", "queued", "retraction.start", "a retraction is requested", 18),
    Transition("sending", "retracted", "retraction.record_retracted", "deleted / notice sent", 18),
    Transition("unknown", "retracted", "record_reconciled", "looked: it is gone", 18),
    Transition("needs_attention", "retracted", "operator_resolve", "a person removed it", 18),
    Transition(
        "claimed", "needs_attention", "retraction.hand_to_person", "no deletion interface", 18
    ),
    # Assisted publishing (docs/delivery.md §17): a person publishes; migration 24.
    Transition(
        "sending", "awaiting_person", "record_processing", "copy pack written; a person's task", 24
    ),
    Transition("unknown", "awaiting_person", "record_reconciled", "find() saw the pack", 24),
    Transition("processing", "awaiting_person", "migration 24", "old rows with the marker", 24),
    Transition("awaiting_person", "published", "assisted.confirm", "a person published it", 24),
    Transition("awaiting_person", "failed", "assisted.decline", "a person could not publish", 24),
    Transition(
        "awaiting_person", "cancelled", "cancel_for_post", "post cancelled before confirmed", 24
    ),
)

#: The allowed (from, to) pairs.
DELIVERY_TRANSITIONS: tuple[tuple[str, str], ...] = tuple((t.source, t.target) for t in TRANSITIONS)

#: from-state -> the states it may go to.
ALLOWED: dict[str, frozenset[str]] = {
    state: frozenset(t.target for t in TRANSITIONS if t.source == state)
    for state in DELIVERY_STATES
}


def allowed(from_state: str, to_state: str) -> bool:
    return to_state in ALLOWED.get(from_state, frozenset())


def _check() -> None:
    """The table is consistent with itself; a mistake here fails at import, loudly."""
    if set(STATE_MEANINGS) != set(DELIVERY_STATES):
        raise RuntimeError("kepubot.states: STATE_MEANINGS must describe exactly DELIVERY_STATES")
    for group in (TERMINAL_DELIVERY_STATES, ACTIVE_STATES, CANCELLABLE_STATES):
        if not set(group) <= set(DELIVERY_STATES):
            raise RuntimeError(f"kepubot.states: {sorted(group)} names an unknown state")
    for t in TRANSITIONS:
        if t.source not in DELIVERY_STATES or t.target not in DELIVERY_STATES:
            raise RuntimeError(f"kepubot.states: transition {t.source}->{t.target}: unknown state")
    if len(set(DELIVERY_TRANSITIONS)) != len(DELIVERY_TRANSITIONS):
        raise RuntimeError("kepubot.states: a transition is listed twice")


_check()
