"""Stateful property test of the editorial workflow and the delivery state machine.

A hypothesis ``RuleBasedStateMachine`` drives random sequences of operations (docs/architecture.md §4,
docs/delivery.md §2 and §13) against a real SQLite file in a fresh temporary directory per
example. Nothing below the service functions is mocked; time comes from a fake clock
(``self.now``) passed as ``now=`` to every call.

The machine keeps its own small model of what every post and delivery should be. Before each
operation it decides from the model whether the operation is allowed:
- allowed: the call must succeed and the database must then agree with the updated model;
- forbidden: the call must raise a ``KepubotError`` subclass and change nothing at all (every
  table is compared before and after).
Invariants over the whole database run after every step.

Random choices lean towards the interesting (posts with deliveries, live worker handles,
reviewers who may approve), and a few rules chain the usual steps (review to the end; claim,
write the intent, record the outcome) so that 40 steps reach deep states; every call in them is
still checked the same way.

Users: ``ed`` is an editor; ``ed2`` is an editor who is also a reviewer (so that "the author
never reviews their own post" is reached past the role check); ``r1``–``r3`` are reviewers;
``ops`` is an operator.

``KEPUBOT_HYPOTHESIS_EXAMPLES`` raises the number of examples for longer local runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import backends
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kepubot.app import App
from kepubot.config import load_config
from kepubot.errors import InvalidInput, InvalidTransition, KepubotError, LeaseLost, NotAllowed
from kepubot.models import Delivery
from kepubot.queue import audit, deliveries
from kepubot.services import posts
from kepubot.services.posts import PostInput
from kepubot.states import DELIVERY_STATES, DELIVERY_TRANSITIONS
from kepubot.timeutil import to_db

# --- the world ---------------------------------------------------------------------------------

LEVELS = ["初审", "复审"]
ROLES: dict[str, set[str]] = {
    "ed": {"editor"},
    "ed2": {"editor", "reviewer"},
    "r1": {"reviewer"},
    "r2": {"reviewer"},
    "r3": {"reviewer"},
    "ops": {"operator"},
}
USERS = tuple(ROLES)
EDITORS = ("ed", "ed2")
CHANNELS = ("feed-a", "feed-b", "hook")
WORKERS = ("w1", "w2")
MISSING_ID = 10**6
TRANSITIONS = frozenset(DELIVERY_TRANSITIONS)
START = datetime(2026, 3, 2, 1, 0, 0, tzinfo=UTC)

TITLE_TEXTS = ["月球为什么总是同一面朝向地球", "疫苗如何工作", "Why is the sky blue", "黑洞"]
TITLES = st.sampled_from(TITLE_TEXTS)
TITLES_SOMETIMES_BLANK = st.sampled_from([*TITLE_TEXTS, *TITLE_TEXTS, "", "   "])
SUBSETS = st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True)
LEASES = st.sampled_from([30, 300])
BODY = "## 正文\n\n科学传播的一段文字。"


def write_config(directory: Path) -> Path:
    def s(value: str | Path) -> str:
        return json.dumps(str(value), ensure_ascii=False)  # a TOML basic string

    users = "".join(
        f"[users.{name}]\nroles = {json.dumps(sorted(roles))}\n\n" for name, roles in ROLES.items()
    )
    text = f"""
[kepubot]
database = {s(directory / "kepubot.db")}
timezone = "Asia/Shanghai"
media_dir = {s(directory / "media")}

[review]
levels = {json.dumps(LEVELS, ensure_ascii=False)}

{users}
[channels.feed-a]
type = "feed"
output_dir = {s(directory / "feeds-a")}
site_url = "https://kepu.example.org"
title = "科普资讯 A"

[channels.feed-b]
type = "feed"
output_dir = {s(directory / "feeds-b")}
site_url = "https://kepu.example.org/b"
title = "科普资讯 B"
posting_times = ["08:30", "20:00"]
min_gap_minutes = 30

[channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/x"
"""
    path = directory / "kepubot.toml"
    path.write_text(text, encoding="utf-8")
    return path


TABLES = ("posts", "post_channels", "deliveries", "attempts", "reviews", "audit")


def snapshot(conn: sqlite3.Connection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the workflow writes, in a stable order."""
    return {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in TABLES}


# --- the model ---------------------------------------------------------------------------------


@dataclass
class PostModel:
    author: str
    title: str
    channels: list[str]
    state: str = "draft"
    round: int = 0
    level: int = 0
    scheduled: datetime | None = None
    next_slot: bool = False
    # (reviewer, round, level) of every approval; separation of duties is per round
    approvals: set[tuple[str, int, int]] = field(default_factory=set)


@dataclass
class DeliveryModel:
    post_id: int
    channel: str
    state: str
    not_before: str
    due: str = ""  # due_at: set when queued or rescheduled, kept through retries
    owner: str | None = None
    version: int = 0
    lease_until: str | None = None


class DeliveryWorkflow(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="kepubot-stateful-"))
        self.app = App(load_config(write_config(self.dir)))
        self.conn = self.app.store.conn()
        self.now = START
        self.posts: dict[int, PostModel] = {}
        self.dels: dict[int, DeliveryModel] = {}
        # the Delivery each worker got from its latest claim of a delivery (may be stale)
        self.handles: dict[tuple[str, int], Delivery] = {}
        self.published: dict[int, str] = {}  # delivery id -> published_at, never to change
        self.cancelled: set[int] = set()
        self.rng = random.Random(0)
        self.steps = 0
        self.tamper_at = 0  # the step at which the tampering checks run (set by start)
        self.tampered_delivery = False
        self.tampered_audit = False

    def teardown(self) -> None:
        self.app.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @initialize(
        seed=st.integers(0, 2**32 - 1),
        approved=st.lists(st.tuples(st.sampled_from(EDITORS), SUBSETS), max_size=3),
    )
    def start(self, seed: int, approved: list[tuple[str, list[str]]]) -> None:
        """A few posts approved through the real workflow, so deliveries exist from the start."""
        self.rng = random.Random(seed)
        self.tamper_at = self.rng.randint(0, 20)
        for author, channels in approved:
            data = PostInput(title="开场", body=BODY, channels=channels)
            post_id = posts.create_post(self.app, author, data, now=self.now)
            self.posts[post_id] = PostModel(author=author, title="开场", channels=list(channels))
            self.submit_and_approve(post_id, lambda able: self.rng.choice(able))

    # --- helpers -------------------------------------------------------------------------------

    def refused(self, call: Callable[[], object], kind: type[BaseException] = KepubotError) -> None:
        """``call`` must raise ``kind`` (a KepubotError subclass) and change nothing."""
        assert issubclass(kind, KepubotError)
        before = snapshot(self.conn)
        with pytest.raises(kind):
            call()
        assert not self.conn.in_transaction
        assert snapshot(self.conn) == before, "a refused operation changed the database"

    def at_text(self, seconds: int) -> str:
        return (self.now + timedelta(seconds=seconds)).isoformat()

    def pick_post(self, data: st.DataObject, *, missing: bool = True) -> int:
        ids = sorted(self.posts) + ([MISSING_ID] if missing else [])
        return data.draw(st.sampled_from(ids), label="post")

    def pick_post_with_deliveries(
        self, data: st.DataObject, fits: Callable[[int], bool] = lambda _: True
    ) -> int:
        """Mostly a post that ``fits`` and has deliveries, failed ones first (where most can
        go wrong)."""
        having = {d.post_id for d in self.dels.values()}
        failed = {d.post_id for d in self.dels.values() if d.state == "failed"}
        for pool in (
            sorted(i for i in failed if fits(i)),
            sorted(i for i in having if fits(i)),
            sorted(i for i in self.posts if fits(i)),
        ):
            if pool and data.draw(st.integers(0, 3), label="prefer") > 0:
                return data.draw(st.sampled_from(pool), label="post")
        return self.pick_post(data, missing=False)

    def editable(self, post_id: int) -> bool:
        return self.posts[post_id].state != "cancelled" and not any(
            d.state not in ("pending", "queued", "cancelled", "failed")
            for d in self.deliveries_of(post_id).values()
        )

    def pick_delivery(self, data: st.DataObject) -> int:
        return data.draw(st.sampled_from([*sorted(self.dels), MISSING_ID]), label="delivery")

    def deliveries_of(self, post_id: int) -> dict[int, DeliveryModel]:
        return {i: d for i, d in self.dels.items() if d.post_id == post_id}

    def db_delivery(self, delivery_id: int) -> sqlite3.Row:
        row = self.conn.execute("SELECT * FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        assert row is not None
        return row

    def expected_due(self, post: PostModel) -> str | None:
        """Due time of a delivery queued now; None for next_slot (the slot search decides)."""
        if post.next_slot:
            return None
        if post.scheduled is not None and post.scheduled > self.now:
            return to_db(post.scheduled)
        return to_db(self.now)

    def check_due(self, delivery_id: int, expected: str | None) -> str:
        row = self.db_delivery(delivery_id)
        assert row["due_at"] == row["not_before"]
        if expected is None:
            assert row["due_at"] > to_db(self.now)
        else:
            assert row["due_at"] == expected
        return str(row["not_before"])

    def can_review(self, actor: str, post_id: int) -> bool:
        post = self.posts.get(post_id)
        return (
            post is not None
            and "reviewer" in ROLES[actor]
            and actor != post.author
            and post.state == "in_review"
        )

    def can_approve(self, actor: str, post_id: int) -> bool:
        if not self.can_review(actor, post_id):
            return False
        post = self.posts[post_id]
        # one person approves at most one level of a post within a review round; a new round
        # (a submit, or an edit sending it back) lets the same people review again
        # (docs/architecture.md §4.2)
        return not any(
            r == actor and rnd == post.round and lvl != post.level for r, rnd, lvl in post.approvals
        )

    def apply_approve(self, actor: str, post_id: int) -> None:
        post = self.posts[post_id]
        if any(
            r == actor and rnd < post.round and lvl != post.level for r, rnd, lvl in post.approvals
        ):
            event("approved at another level than in an earlier round")
        post.approvals.add((actor, post.round, post.level))
        if post.level < len(LEVELS):
            post.level += 1
            return
        post.state = "approved"
        due = self.expected_due(post)
        existing = {d.channel: i for i, d in self.deliveries_of(post_id).items()}
        for channel in post.channels:
            if channel not in existing:
                row = self.conn.execute(
                    "SELECT id FROM deliveries WHERE post_id = ? AND channel = ?",
                    (post_id, channel),
                ).fetchone()
                assert row is not None, f"approval did not queue post {post_id} on {channel}"
                due_at = self.check_due(row["id"], due)
                self.dels[row["id"]] = DeliveryModel(post_id, channel, "queued", due_at, due_at)
            elif self.dels[existing[channel]].state == "pending":
                model = self.dels[existing[channel]]
                model.state = "queued"
                model.not_before = model.due = self.check_due(existing[channel], due)
        # held deliveries of channels the approved post no longer targets are cancelled
        for channel, i in existing.items():
            if channel not in post.channels and self.dels[i].state == "pending":
                self.dels[i].state = "cancelled"
                self.cancelled.add(i)

    def gap_clash(
        self, post_id: int | None, when: datetime, channels: list[str] | None = None
    ) -> bool:
        """Another post's delivery (not cancelled or failed) on one of the post's channels (or
        ``channels``, for a post not written yet) is due strictly within that channel's
        ``min_gap_minutes`` (default 60) of ``when``, so an explicit time is refused (no
        channel here has blackout windows or dates)."""
        targets = channels if channels is not None else self.posts[post_id or 0].channels
        for channel in targets:
            gap = timedelta(minutes=self.app.channels[channel].settings.min_gap_minutes)
            low, high = to_db(when - gap), to_db(when + gap)
            if any(
                d.channel == channel
                and d.post_id != post_id
                and d.state not in ("cancelled", "failed")
                and low < d.due < high
                for d in self.dels.values()
            ):
                return True
        return False

    def reschedule_waiting(self, post_id: int) -> None:
        due = self.expected_due(self.posts[post_id])
        for i, d in self.deliveries_of(post_id).items():
            if d.state in ("pending", "queued"):
                d.not_before = d.due = self.check_due(i, due)

    def release(self, model: DeliveryModel) -> None:
        model.owner = None
        model.lease_until = None

    # --- editorial workflow ----------------------------------------------------------------------

    @precondition(lambda self: len(self.posts) < 5)
    @rule(
        actor=st.sampled_from(["ed", "ed", "ed2", "ed2", "r1", "ops"]),
        title=TITLES,
        channels=SUBSETS,
        at=st.none() | st.none() | st.integers(-600, 7200),
    )
    def create_post(self, actor: str, title: str, channels: list[str], at: int | None) -> None:
        data = PostInput(
            title=title,
            body=BODY,
            channels=channels,
            at=self.at_text(at) if at is not None else None,
        )

        def call() -> int:
            return posts.create_post(self.app, actor, data, now=self.now)

        if actor not in EDITORS or (at is not None and at <= 0):
            self.refused(call)
            return
        if at is not None and self.gap_clash(None, self.now + timedelta(seconds=at), channels):
            # a time given with a new post keeps each channel's min gap, as post schedule --at
            # does (docs/architecture.md §4.5)
            event("post add --at refused: within min_gap_minutes")
            self.refused(call, InvalidInput)
            return
        post_id = call()
        assert post_id not in self.posts
        self.posts[post_id] = PostModel(
            author=actor,
            title=title,
            channels=list(channels),
            scheduled=self.now + timedelta(seconds=at) if at is not None else None,
        )

    def pick_in(self, data: st.DataObject, states: tuple[str, ...], what: str) -> int:
        """Half of the time a post in one of ``states`` (when there is one), else any id."""
        fitting = sorted(i for i, p in self.posts.items() if p.state in states)
        if fitting and data.draw(st.booleans(), label=f"prefer {what}"):
            return data.draw(st.sampled_from(fitting), label="post")
        return self.pick_post(data)

    @precondition(lambda self: self.posts)
    @rule(data=st.data())
    def submit(self, data: st.DataObject) -> None:
        post_id = self.pick_in(data, ("draft", "rejected"), "submittable")
        post = self.posts.get(post_id)
        actor = data.draw(
            st.sampled_from([post.author] * 3 + list(USERS) if post else USERS), label="actor"
        )

        def call() -> None:
            posts.submit(self.app, actor, [post_id], now=self.now)

        if post is None or actor != post.author or post.state not in ("draft", "rejected"):
            self.refused(call, NotAllowed)
            return
        call()
        post.state, post.round, post.level = "in_review", post.round + 1, 1

    @precondition(lambda self: self.posts)
    @rule(data=st.data())
    def approve(self, data: st.DataObject) -> None:
        """Anyone: the author, editors without the reviewer role, earlier approvers..."""
        post_id = self.pick_in(data, ("in_review",), "in_review")
        able = [u for u in USERS if self.can_approve(u, post_id)]
        if able and data.draw(st.booleans(), label="prefer a reviewer who may approve"):
            actor = data.draw(st.sampled_from(able), label="actor")
        else:
            actor = data.draw(st.sampled_from(USERS), label="actor")

        def call() -> None:
            posts.approve(self.app, actor, [post_id], now=self.now, comment="ok")

        if not self.can_approve(actor, post_id):
            self.refused(call, NotAllowed)
            return
        call()
        self.apply_approve(actor, post_id)

    @precondition(
        lambda self: any(p.state in ("draft", "rejected", "in_review") for p in self.posts.values())
    )
    @rule(data=st.data())
    def review_to_the_end(self, data: st.DataObject) -> None:
        """The happy path in one step (each call still checked), so that deliveries appear:
        submit if needed, then approve every remaining level."""
        post_id = data.draw(
            st.sampled_from(
                sorted(
                    i
                    for i, p in self.posts.items()
                    if p.state in ("draft", "rejected", "in_review")
                )
            ),
            label="post",
        )
        self.submit_and_approve(
            post_id, lambda able: data.draw(st.sampled_from(able), label="reviewer")
        )

    def submit_and_approve(self, post_id: int, choose: Callable[[list[str]], str]) -> None:
        post = self.posts[post_id]
        if post.state != "in_review":
            posts.submit(self.app, post.author, [post_id], now=self.now)
            post.state, post.round, post.level = "in_review", post.round + 1, 1
        while post.state == "in_review":
            able = sorted(u for u in USERS if self.can_approve(u, post_id))
            # separation of duties is per round: three reviewers besides any author and two
            # levels, so a round can always be finished
            assert able, f"nobody may approve post {post_id} at level {post.level}"
            actor = choose(able)
            posts.approve(self.app, actor, [post_id], now=self.now)
            self.apply_approve(actor, post_id)

    @precondition(lambda self: self.posts)
    @rule(data=st.data(), actor=st.sampled_from(USERS), spoil=st.booleans())
    def approve_batch(self, data: st.DataObject, actor: str, spoil: bool) -> None:
        """Several ids in one call: if one is refused, nothing at all changes."""
        ids = data.draw(
            st.lists(st.sampled_from(sorted(self.posts)), min_size=1, max_size=4), label="ids"
        )
        if spoil:
            refusable = [i for i in self.posts if not self.can_approve(actor, i)]
            spoiler = data.draw(st.sampled_from([MISSING_ID, *sorted(refusable)]), label="spoiler")
            ids.insert(data.draw(st.integers(0, len(ids)), label="where"), spoiler)

        def call() -> None:
            posts.approve(self.app, actor, ids, now=self.now)

        unique = list(dict.fromkeys(ids))
        if not all(self.can_approve(actor, i) for i in unique):
            self.refused(call, NotAllowed)
            return
        call()
        for post_id in unique:
            self.apply_approve(actor, post_id)

    @precondition(lambda self: self.posts)
    @rule(
        data=st.data(),
        actor=st.sampled_from(USERS),
        reason=st.sampled_from(["", "  ", "标题不准确", "needs a source for the numbers"]),
    )
    def reject(self, data: st.DataObject, actor: str, reason: str) -> None:
        post_id = self.pick_post(data)

        def call() -> None:
            posts.reject(self.app, actor, [post_id], reason=reason, now=self.now)

        if not reason.strip():
            self.refused(call, InvalidInput)
            return
        if not self.can_review(actor, post_id):
            self.refused(call, NotAllowed)
            return
        call()
        post = self.posts[post_id]
        post.state, post.level = "rejected", 0

    @precondition(lambda self: self.posts)
    @rule(
        data=st.data(),
        who=st.sampled_from(["author", "author", "author", "author", "other", "ops"]),
        title=TITLES_SOMETIMES_BLANK,
        channels=st.none() | SUBSETS,
    )
    def edit(self, data: st.DataObject, who: str, title: str, channels: list[str] | None) -> None:
        post_id = self.pick_post_with_deliveries(data, self.editable)
        post = self.posts[post_id]
        actor = {"author": post.author, "other": "ed" if post.author == "ed2" else "ed2"}.get(
            who, who
        )
        change = PostInput(title=title, channels=channels)

        def call() -> object:
            return posts.edit_post(self.app, actor, post_id, change, now=self.now)

        own = self.deliveries_of(post_id)
        started = any(
            d.state not in ("pending", "queued", "cancelled", "failed") for d in own.values()
        )
        if actor != post.author or post.state == "cancelled" or started:
            self.refused(call, NotAllowed)
            return
        if not title.strip():
            self.refused(call, InvalidInput)
            return
        new_channels = post.channels if channels is None else list(channels)
        withdrawn = {d.channel for d in own.values() if d.state == "cancelled"}
        if (set(new_channels) - set(post.channels)) & withdrawn:
            # a channel withdrawn at an approval cannot come back (one delivery per channel)
            self.refused(call, NotAllowed)
            return
        if title == post.title and set(new_channels) == set(post.channels):
            before = snapshot(self.conn)
            call()  # nothing changed: no write, no audit row
            assert snapshot(self.conn) == before
            return
        call()
        if post.state in ("in_review", "approved"):
            post.state, post.round, post.level = "in_review", post.round + 1, 1
            for d in own.values():
                if d.state == "queued":
                    d.state = "pending"
        # deliveries of dropped channels stay held (pending) until the next approval decides
        post.title, post.channels = title, new_channels

    @precondition(lambda self: self.posts)
    @rule(data=st.data(), who=st.sampled_from(["author", "other", "ops", "r1", "r2"]))
    def cancel(self, data: st.DataObject, who: str) -> None:
        post_id = self.pick_post_with_deliveries(data)
        post = self.posts[post_id]
        actor = {"author": post.author, "other": "ed" if post.author == "ed2" else "ed2"}.get(
            who, who
        )

        def call() -> int:
            return posts.cancel(self.app, actor, post_id, now=self.now)

        own = self.deliveries_of(post_id)
        busy = any(
            d.state in ("sending", "processing", "unknown", "needs_attention") for d in own.values()
        )
        # what is live is retracted, never cancelled (docs/delivery.md §14.4)
        live = any(d.state == "published" for d in own.values())
        if (actor != post.author and actor != "ops") or post.state == "cancelled" or busy or live:
            self.refused(call, NotAllowed)
            return
        count = call()
        waiting = [
            i
            for i, d in own.items()
            if d.state in ("pending", "queued", "claimed", "awaiting_person")
        ]
        assert count == len(waiting)
        for i in waiting:
            self.dels[i].state = "cancelled"
            self.release(self.dels[i])
            self.cancelled.add(i)
        post.state = "cancelled"

    @precondition(lambda self: self.posts)
    @rule(
        data=st.data(),
        actor=st.sampled_from(USERS),
        mode=st.sampled_from(["at", "at", "at", "next_slot", "both", "neither"]),
        offset=st.integers(-600, 7200),
    )
    def schedule(self, data: st.DataObject, actor: str, mode: str, offset: int) -> None:
        post_id = self.pick_post_with_deliveries(data)
        post = self.posts[post_id]
        at = self.at_text(offset) if mode in ("at", "both") else None
        next_slot = mode in ("next_slot", "both")

        def call() -> object:
            return posts.schedule(
                self.app, actor, post_id, at=at, next_slot=next_slot, now=self.now
            )

        if mode in ("both", "neither") or (at is not None and offset <= 0):
            self.refused(call, InvalidInput)
            return
        if actor != post.author and not ROLES[actor] & {"reviewer", "operator"}:
            self.refused(call, NotAllowed)
            return
        if post.state == "cancelled":
            self.refused(call, NotAllowed)
            return
        if at is not None and self.gap_clash(post_id, self.now + timedelta(seconds=offset)):
            # an explicit time keeps each channel's min gap (docs/architecture.md §4.5)
            event("schedule --at refused: within min_gap_minutes")
            self.refused(call, InvalidInput)
            return
        call()
        post.scheduled = self.now + timedelta(seconds=offset) if at is not None else None
        post.next_slot = next_slot
        self.reschedule_waiting(post_id)

    # --- the clock -------------------------------------------------------------------------------

    @rule(seconds=st.sampled_from([1, 29, 31, 59, 299, 301, 900, 3600, 6 * 3600, 86400]))
    def advance_clock(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    # --- the daemon's side -----------------------------------------------------------------------

    @rule(worker=st.sampled_from(WORKERS), lease=LEASES)
    def claim_next(self, worker: str, lease: int) -> None:
        self.claim(worker, lease)

    def claim(self, worker: str, lease: int) -> Delivery | None:
        now_text = to_db(self.now)
        # at most one send in flight per channel (account): a busy channel is skipped
        busy = {d.channel for d in self.dels.values() if d.state in ("claimed", "sending")}
        due = sorted(
            (d.not_before, i)
            for i, d in self.dels.items()
            if d.state == "queued" and d.not_before <= now_text and d.channel not in busy
        )

        def call() -> Delivery | None:
            return deliveries.claim_next(
                self.conn, worker=worker, now=self.now, lease_seconds=lease
            )

        if not due:
            before = snapshot(self.conn)
            assert call() is None
            assert snapshot(self.conn) == before
            return None
        got = call()
        assert got is not None
        expected_id = due[0][1]
        assert got.id == expected_id, f"claimed {got.id}, expected the oldest due {expected_id}"
        model = self.dels[got.id]
        model.state, model.owner, model.version = "claimed", worker, model.version + 1
        model.lease_until = to_db(self.now + timedelta(seconds=lease))
        assert got.state == "claimed"
        assert got.lease_owner == worker
        assert got.lease_version == model.version
        assert got.lease_until is not None and to_db(got.lease_until) == model.lease_until
        self.handles[(worker, got.id)] = got
        return got

    @rule(
        worker=st.sampled_from(WORKERS),
        lease=LEASES,
        data=st.data(),
        outcome=st.sampled_from(
            [
                None,
                None,
                "published",
                "retry",
                "failed",
                "unknown",
                "processing",
                "awaiting",
                "release",
            ]
        ),
    )
    def claim_and_begin_send(
        self, worker: str, lease: int, data: st.DataObject, outcome: str | None
    ) -> None:
        """A worker's usual steps back to back (each is also a rule of its own): claim, write
        the intent, and (unless ``outcome`` is None: the worker stalls) record the outcome."""
        handle = self.claim(worker, lease)
        if handle is None:
            return
        deliveries.begin_send(
            self.conn, delivery=handle, worker=worker, now=self.now, lease_seconds=lease
        )
        model = self.dels[handle.id]
        model.state = "sending"
        model.lease_until = to_db(self.now + timedelta(seconds=lease))
        if outcome is not None:
            self.report(data, outcome, 30, False, key=(worker, handle.id))

    def worker_op(
        self,
        data: st.DataObject,
        target: str,
        *,
        always_fenced: bool,
        call: Callable[[Delivery, str], object],
        from_states: tuple[str, ...] | None = None,
        key: tuple[str, int] | None = None,
    ) -> tuple[DeliveryModel, Delivery] | None:
        """A write by a worker through the Delivery it holds (possibly stale).

        Allowed when the held state may go to ``target`` and the row is still in that state
        and, when fenced, still held by this worker under the same lease version. Returns the
        model and handle on success (the model state already moved), None when refused.

        As in deliveries.py, only writes from ``sending`` (and claim/intent/processing/retry/
        release, always) are fenced; published/failed/unknown from a held ``processing`` or
        ``unknown`` state only compare the state.
        """
        if key is None:
            live = sorted(
                k
                for k, h in self.handles.items()
                if self.dels[k[1]].state == h.state and self.dels[k[1]].owner == k[0]
            )
            if live and data.draw(st.booleans(), label="prefer a live handle"):
                key = data.draw(st.sampled_from(live), label="handle")
            else:
                key = data.draw(st.sampled_from(sorted(self.handles)), label="handle")
        worker, delivery_id = key
        handle = self.handles[key]
        model = self.dels[delivery_id]
        held = handle.state

        def run() -> object:
            return call(handle, worker)

        legal = (held, target) in TRANSITIONS and (from_states is None or held in from_states)
        if (held, target) not in TRANSITIONS:
            self.refused(run, InvalidTransition)
            return None
        if not legal:
            self.refused(run)  # allowed by the table, but not through this operation
            return None
        fenced = always_fenced or held == "sending"
        holds = model.state == held and (
            not fenced or (model.owner == worker and model.version == handle.lease_version)
        )
        if not holds:
            self.refused(run, LeaseLost if fenced else InvalidTransition)
            return None
        run()
        assert handle.state == target
        model.state = target
        if target != "sending":
            self.release(model)
        return model, handle

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), lease=LEASES)
    def begin_send(self, data: st.DataObject, lease: int) -> None:
        result = self.worker_op(
            data,
            "sending",
            always_fenced=True,
            call=lambda h, w: deliveries.begin_send(
                self.conn, delivery=h, worker=w, now=self.now, lease_seconds=lease
            ),
        )
        if result is not None:
            result[0].lease_until = to_db(self.now + timedelta(seconds=lease))

    @precondition(lambda self: self.handles)
    @rule(
        data=st.data(),
        outcome=st.sampled_from(
            ["published", "retry", "failed", "unknown", "processing", "release", "release"]
        ),
        delay=st.sampled_from([0, 30, 600]),
        give_time=st.booleans(),
    )
    def worker_reports(
        self, data: st.DataObject, outcome: str, delay: int, give_time: bool
    ) -> None:
        """The outcome of a send (or giving a claim back), through the Delivery a worker holds.

        ``release_claim`` is only for a claim (nothing sent yet): a send must record its outcome.
        """
        self.report(data, outcome, delay, give_time)

    def report(
        self,
        data: st.DataObject,
        outcome: str,
        delay: int,
        give_time: bool,
        key: tuple[str, int] | None = None,
    ) -> None:
        later = self.now + timedelta(seconds=delay)
        conn, now = self.conn, self.now
        if outcome == "published":
            result = self.worker_op(
                data,
                "published",
                key=key,
                always_fenced=False,
                call=lambda h, w: deliveries.record_published(
                    conn,
                    delivery=h,
                    worker=w,
                    now=now,
                    remote_id=f"r{h.id}",
                    remote_url=f"https://example.org/p/{h.id}",
                ),
            )
        elif outcome == "retry":
            result = self.worker_op(
                data,
                "queued",
                key=key,
                always_fenced=True,
                call=lambda h, w: deliveries.record_retry(
                    conn,
                    delivery=h,
                    worker=w,
                    now=now,
                    not_before=later,
                    error_kind="rate_limited",
                    error="429",
                ),
            )
            if result is not None:
                result[0].not_before = to_db(later)
        elif outcome == "failed":
            result = self.worker_op(
                data,
                "failed",
                key=key,
                always_fenced=False,
                call=lambda h, w: deliveries.record_failed(
                    conn, delivery=h, worker=w, now=now, error_kind="permanent", error="refused"
                ),
            )
        elif outcome == "unknown":
            result = self.worker_op(
                data,
                "unknown",
                key=key,
                always_fenced=False,
                call=lambda h, w: deliveries.record_unknown(
                    conn, delivery=h, worker=w, now=now, error="read timeout"
                ),
            )
        elif outcome == "processing":
            result = self.worker_op(
                data,
                "processing",
                key=key,
                always_fenced=True,
                call=lambda h, w: deliveries.record_processing(
                    conn,
                    delivery=h,
                    worker=w,
                    now=now,
                    progress={"publish_id": f"pub-{h.id}"},
                    poll_at=later,
                ),
            )
            if result is not None:
                result[0].not_before = to_db(later)
        elif outcome == "awaiting":
            # an assisted outlet's copy pack written: a person's task (docs/delivery.md §17)
            result = self.worker_op(
                data,
                "awaiting_person",
                key=key,
                always_fenced=True,
                call=lambda h, w: deliveries.record_processing(
                    conn,
                    delivery=h,
                    worker=w,
                    now=now,
                    progress={"awaiting_person": True, "pack": f"packs/{h.id}"},
                    poll_at=later,
                ),
            )
            if result is not None:
                result[0].not_before = to_db(later)
        else:
            not_before = later if give_time else None
            result = self.worker_op(
                data,
                "queued",
                key=key,
                always_fenced=True,
                from_states=("claimed",),
                call=lambda h, w: deliveries.release_claim(
                    conn, delivery=h, worker=w, now=now, not_before=not_before, reason="stopping"
                ),
            )
            if result is not None and not_before is not None:
                result[0].not_before = to_db(not_before)

    @precondition(lambda self: self.dels)
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["published", "failed", "still"]),
        poll=st.sampled_from([0, 60]),
    )
    def record_polled(self, data: st.DataObject, outcome: str, poll: int) -> None:
        processing = [i for i, d in self.dels.items() if d.state == "processing"]
        if processing and data.draw(st.booleans(), label="prefer processing"):
            delivery_id = data.draw(st.sampled_from(sorted(processing)), label="delivery")
        else:
            delivery_id = self.pick_delivery(data)
        poll_at = self.now + timedelta(seconds=poll)

        def call() -> str:
            return deliveries.record_polled(
                self.conn,
                delivery_id=delivery_id,
                actor="w1",
                now=self.now,
                published=("remote-1", None) if outcome == "published" else None,
                failed="transcoding failed" if outcome == "failed" else None,
                poll_at=poll_at,
            )

        model = self.dels.get(delivery_id)
        if model is None or model.state != "processing":
            self.refused(call)
            return
        result = call()
        expected = "processing" if outcome == "still" else outcome
        assert result == expected
        model.state = expected
        if expected == "processing":
            model.not_before = to_db(poll_at)

    @precondition(lambda self: self.dels)
    @rule(data=st.data(), confirm=st.booleans())
    def person_decides(self, data: st.DataObject, confirm: bool) -> None:
        """An operator confirms an assisted task with its URL or declines it (§17.1): only a
        delivery in awaiting_person, once."""
        from kepubot.services import assisted

        waiting = [i for i, d in self.dels.items() if d.state == "awaiting_person"]
        if waiting and data.draw(st.booleans(), label="prefer a task"):
            delivery_id = data.draw(st.sampled_from(sorted(waiting)), label="delivery")
        else:
            delivery_id = self.pick_delivery(data)

        def call() -> object:
            if confirm:
                return assisted.confirm(
                    self.app,
                    "ops",
                    delivery_id,
                    url=f"https://t.example/{delivery_id}",
                    now=self.now,
                )
            return assisted.decline(self.app, "ops", delivery_id, reason="限流", now=self.now)

        model = self.dels.get(delivery_id)
        if model is None or model.state != "awaiting_person":
            self.refused(call)
            return
        call()
        model.state = "published" if confirm else "failed"

    @rule(actor=st.sampled_from(["ops", "w1"]))
    def expire_leases(self, actor: str) -> None:
        self.expire(actor)

    @precondition(lambda self: any(d.state in ("claimed", "sending") for d in self.dels.values()))
    @rule()
    def expire_leases_after_they_run_out(self) -> None:
        latest = max(
            d.lease_until
            for d in self.dels.values()
            if d.state in ("claimed", "sending") and d.lease_until is not None
        )
        stamp = datetime.strptime(latest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        self.now = max(self.now, stamp + timedelta(seconds=1))
        self.expire("ops")
        assert not any(d.state in ("claimed", "sending") for d in self.dels.values())

    def expire(self, actor: str) -> None:
        now_text = to_db(self.now)
        expired = {
            i: d
            for i, d in self.dels.items()
            if d.state in ("claimed", "sending")
            and d.lease_until is not None
            and d.lease_until < now_text
        }
        released, unknown = deliveries.expire_leases(self.conn, now=self.now, actor=actor)
        assert released == sum(d.state == "claimed" for d in expired.values())
        assert unknown == sum(d.state == "sending" for d in expired.values())
        for d in expired.values():
            d.state = "queued" if d.state == "claimed" else "unknown"
            self.release(d)

    @precondition(lambda self: self.dels)
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["found", "absent", "undecided"]),
        later=st.sampled_from([None, 0, 300]),
    )
    def record_reconciled(self, data: st.DataObject, outcome: str, later: int | None) -> None:
        unknown = [i for i, d in self.dels.items() if d.state == "unknown"]
        if unknown and data.draw(st.booleans(), label="prefer unknown"):
            delivery_id = data.draw(st.sampled_from(sorted(unknown)), label="delivery")
        else:
            delivery_id = self.pick_delivery(data)
        retry_at = None if later is None else self.now + timedelta(seconds=later)

        def call() -> str:
            return deliveries.record_reconciled(
                self.conn,
                delivery_id=delivery_id,
                actor="reconciler",
                now=self.now,
                found=("remote-9", "https://example.org/9") if outcome == "found" else None,
                decided=outcome != "undecided",
                retry_at=retry_at,
                reason="looked at the recent posts",
            )

        model = self.dels.get(delivery_id)
        if model is None or model.state != "unknown":
            self.refused(call)
            return
        expected = {"found": "published", "absent": "queued", "undecided": "needs_attention"}[
            outcome
        ]
        assert call() == expected
        model.state = expected
        if expected == "queued":
            model.not_before = to_db(retry_at or self.now)

    @precondition(lambda self: self.dels)
    @rule(data=st.data())
    def operator_retry(self, data: st.DataObject) -> None:
        failed = [i for i, d in self.dels.items() if d.state == "failed"]
        if failed and data.draw(st.booleans(), label="prefer failed"):
            delivery_id = data.draw(st.sampled_from(sorted(failed)), label="delivery")
        else:
            delivery_id = self.pick_delivery(data)

        def call() -> None:
            deliveries.operator_retry(self.conn, delivery_id=delivery_id, actor="ops", now=self.now)

        model = self.dels.get(delivery_id)
        if model is None or model.state != "failed":
            self.refused(call)
            return
        post = self.posts[model.post_id]
        if post.state != "approved" or model.channel not in post.channels:
            # Re-queueing would send content that is not (or no longer) approved for this
            # channel: the post was edited back to review, or cancelled, after the failure.
            self.refused(call, NotAllowed)
            return
        stale = self.conn.execute(
            "SELECT d.content_hash IS NOT p.approved_hash FROM deliveries d"
            " JOIN posts p ON p.id = d.post_id WHERE d.id = ?",
            (delivery_id,),
        ).fetchone()[0]
        if stale:
            # Failed before the post was edited and approved again: re-queueing it as it is
            # would carry content that is no longer the approved one. Either refusing, or
            # re-queueing with the approved content, is right (the invariants check which).
            before = snapshot(self.conn)
            try:
                call()
            except KepubotError:
                assert snapshot(self.conn) == before
                return
        else:
            call()
        model.state, model.not_before = "queued", to_db(self.now)

    @precondition(lambda self: self.dels)
    @rule(data=st.data(), published=st.sampled_from([None, "https://weibo.com/1/abc", "48151623"]))
    def operator_resolve(self, data: st.DataObject, published: str | None) -> None:
        waiting = [i for i, d in self.dels.items() if d.state == "needs_attention"]
        if waiting and data.draw(st.booleans(), label="prefer needs_attention"):
            delivery_id = data.draw(st.sampled_from(sorted(waiting)), label="delivery")
        else:
            delivery_id = self.pick_delivery(data)

        def call() -> str:
            return deliveries.operator_resolve(
                self.conn, delivery_id=delivery_id, actor="ops", now=self.now, published=published
            )

        model = self.dels.get(delivery_id)
        if model is None or model.state != "needs_attention":
            self.refused(call)
            return
        expected = "published" if published else "queued"
        assert call() == expected
        model.state = expected
        if expected == "queued":
            model.not_before = to_db(self.now)

    # --- invariants ------------------------------------------------------------------------------

    @invariant()
    def database_is_consistent(self) -> None:
        """Every invariant, after every step (one entry per step in a failure report)."""
        self.steps += 1
        self.check_no_transaction_left_open()
        self.check_database_matches_the_model()
        self.check_audited_transitions_are_in_the_state_machine()
        self.check_one_delivery_per_post_and_channel()
        self.check_deliveries_belong_to_posts_and_their_channels()
        self.check_an_approved_post_is_never_lost_on_a_channel()
        self.check_leases_and_open_attempts()
        self.check_at_most_one_send_in_flight_per_channel()
        self.check_approval_pins_the_content()
        self.check_reviewers_follow_the_rules()
        self.check_audit_chain_verifies()
        self.check_terminal_deliveries_stay_terminal()
        self.check_the_database_refuses_tampering()

    def check_no_transaction_left_open(self) -> None:
        assert not self.conn.in_transaction

    def check_database_matches_the_model(self) -> None:
        rows = {
            r["id"]: r
            for r in self.conn.execute("SELECT id, state, review_round, review_level FROM posts")
        }
        assert set(rows) == set(self.posts)
        for post_id, post in self.posts.items():
            r = rows[post_id]
            assert (r["state"], r["review_round"], r["review_level"]) == (
                post.state,
                post.round,
                post.level,
            ), f"post {post_id}"
        drows = {
            r["id"]: r
            for r in self.conn.execute(
                "SELECT id, post_id, channel, state, lease_owner, lease_version, lease_until,"
                " not_before FROM deliveries"
            )
        }
        assert set(drows) == set(self.dels)
        for delivery_id, d in self.dels.items():
            r = drows[delivery_id]
            assert (r["post_id"], r["channel"], r["state"]) == (d.post_id, d.channel, d.state), (
                f"delivery {delivery_id}"
            )
            assert (r["lease_owner"], r["lease_version"]) == (d.owner, d.version)
            if d.state in ("claimed", "sending"):
                assert r["lease_until"] == d.lease_until
            if d.state == "queued":
                assert r["not_before"] == d.not_before, f"delivery {delivery_id}"

    def check_audited_transitions_are_in_the_state_machine(self) -> None:
        """Replaying each delivery's audit rows yields its current state, one legal step at a
        time; the creation row has only "to"."""
        replayed: dict[int, str] = {}
        for r in self.conn.execute(
            "SELECT action, delivery_id, detail FROM audit WHERE action LIKE 'delivery.%'"
            " ORDER BY id"
        ):
            detail = json.loads(r["detail"])
            delivery_id = r["delivery_id"]
            if "from" in detail:
                assert (detail["from"], detail["to"]) in TRANSITIONS, detail
                assert replayed.get(delivery_id) == detail["from"], (delivery_id, detail)
                replayed[delivery_id] = detail["to"]
            elif "to" in detail:
                assert r["action"] == "delivery.queued" and detail["to"] == "queued"
                assert delivery_id not in replayed
                replayed[delivery_id] = "queued"
            else:
                assert r["action"] == "delivery.rescheduled", r["action"]
        current = {
            r["id"]: r["state"] for r in self.conn.execute("SELECT id, state FROM deliveries")
        }
        assert replayed == current

    def check_one_delivery_per_post_and_channel(self) -> None:
        dup = self.conn.execute(
            "SELECT post_id, channel FROM deliveries GROUP BY post_id, channel HAVING COUNT(*) > 1"
        ).fetchall()
        assert dup == []

    def check_deliveries_belong_to_posts_and_their_channels(self) -> None:
        orphans = self.conn.execute(
            "SELECT d.id FROM deliveries d LEFT JOIN posts p ON p.id = d.post_id WHERE p.id IS NULL"
        ).fetchall()
        assert orphans == []
        # a delivery queued to go out is for a channel the post still targets (a held one,
        # pending, may be for a dropped channel until the next approval cancels it)
        stray = self.conn.execute(
            "SELECT d.id, d.channel, d.state FROM deliveries d WHERE d.state IN"
            " ('queued', 'claimed') AND NOT EXISTS (SELECT 1 FROM post_channels pc"
            " WHERE pc.post_id = d.post_id AND pc.channel = d.channel)"
        ).fetchall()
        assert [tuple(r) for r in stray] == []

    def check_an_approved_post_is_never_lost_on_a_channel(self) -> None:
        """Every channel an approved post targets has a delivery that can still go out or has
        gone out (never one left cancelled by an earlier edit)."""
        lost = self.conn.execute(
            "SELECT pc.post_id, pc.channel, d.state FROM post_channels pc"
            " JOIN posts p ON p.id = pc.post_id"
            " LEFT JOIN deliveries d ON d.post_id = pc.post_id AND d.channel = pc.channel"
            " WHERE p.state = 'approved' AND (d.id IS NULL OR d.state = 'cancelled')"
        ).fetchall()
        assert [tuple(r) for r in lost] == []

    def check_leases_and_open_attempts(self) -> None:
        for r in self.conn.execute(
            "SELECT d.id, d.state, d.lease_owner, d.lease_until, (SELECT COUNT(*) FROM attempts a"
            " WHERE a.delivery_id = d.id AND a.finished_at IS NULL) AS open FROM deliveries d"
        ):
            if r["state"] in ("claimed", "sending"):
                assert r["lease_owner"] is not None and r["lease_until"] is not None, tuple(r)
            else:
                assert r["lease_owner"] is None, tuple(r)
            expected_open = 1 if r["state"] == "sending" else 0
            assert r["open"] == expected_open, (
                f"delivery {r['id']} is {r['state']} with {r['open']} open attempt(s)"
            )

    def check_at_most_one_send_in_flight_per_channel(self) -> None:
        crowded = self.conn.execute(
            "SELECT channel FROM deliveries WHERE state IN ('claimed', 'sending')"
            " GROUP BY channel HAVING COUNT(*) > 1"
        ).fetchall()
        assert crowded == []

    def check_approval_pins_the_content(self) -> None:
        bad = self.conn.execute(
            "SELECT id FROM posts WHERE state = 'approved'"
            " AND (approved_hash IS NULL OR approved_hash != content_hash)"
        ).fetchall()
        assert bad == []
        # only an approved post has deliveries waiting in the queue or claimed
        early = self.conn.execute(
            "SELECT d.id, d.state, p.id, p.state FROM deliveries d JOIN posts p ON p.id = d.post_id"
            " WHERE p.state != 'approved' AND d.state IN ('queued', 'claimed')"
        ).fetchall()
        assert [tuple(r) for r in early] == []
        # what waits in the queue is exactly the approved content (the daemon refuses anything
        # else, so a stale hash there would never go out)
        stale = self.conn.execute(
            "SELECT d.id, d.state FROM deliveries d JOIN posts p ON p.id = d.post_id"
            " WHERE d.state IN ('queued', 'claimed') AND d.content_hash IS NOT p.approved_hash"
        ).fetchall()
        assert [tuple(r) for r in stale] == []
        # and an approved post has no delivery still waiting for approval
        held = self.conn.execute(
            "SELECT d.id FROM deliveries d JOIN posts p ON p.id = d.post_id"
            " WHERE p.state = 'approved' AND d.state = 'pending'"
        ).fetchall()
        assert held == []

    def check_reviewers_follow_the_rules(self) -> None:
        own = self.conn.execute(
            "SELECT r.post_id, r.reviewer FROM reviews r JOIN posts p ON p.id = r.post_id"
            " WHERE r.reviewer = p.author"
        ).fetchall()
        assert own == []
        twice = self.conn.execute(
            "SELECT post_id, round, reviewer FROM reviews WHERE decision = 'approve'"
            " GROUP BY post_id, round, reviewer HAVING COUNT(DISTINCT level) > 1"
        ).fetchall()
        assert twice == []

    def check_audit_chain_verifies(self) -> None:
        result = audit.verify(self.conn)
        assert result.ok, result.reason

    def check_terminal_deliveries_stay_terminal(self) -> None:
        for r in self.conn.execute(
            "SELECT id, state, published_at FROM deliveries WHERE state = 'published'"
        ):
            assert r["published_at"] is not None
            self.published.setdefault(r["id"], r["published_at"])
        for delivery_id, published_at in self.published.items():
            r = self.db_delivery(delivery_id)
            assert (r["state"], r["published_at"]) == ("published", published_at)
        for delivery_id in self.cancelled:
            assert self.db_delivery(delivery_id)["state"] == "cancelled"

    def check_the_database_refuses_tampering(self) -> None:
        """Once per example, at a random step: a state change outside the state machine written
        directly in SQL, deleting a delivery, and an UPDATE/DELETE of an audit row are all
        refused by triggers."""
        if self.steps < self.tamper_at:
            return
        if not self.tampered_delivery and self.dels:
            self.tampered_delivery = True
            delivery_id = self.rng.choice(sorted(self.dels))
            current = self.dels[delivery_id].state
            target = self.rng.choice(
                [s for s in DELIVERY_STATES if s != current and (current, s) not in TRANSITIONS]
            )
            before = snapshot(self.conn)
            with pytest.raises(sqlite3.IntegrityError, match="not allowed by the state machine"):
                self.conn.execute(
                    "UPDATE deliveries SET state = ? WHERE id = ?", (target, delivery_id)
                )
            with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
                self.conn.execute("DELETE FROM deliveries WHERE id = ?", (delivery_id,))
            assert snapshot(self.conn) == before
        audit_ids = [r[0] for r in self.conn.execute("SELECT id FROM audit")]
        if not self.tampered_audit and audit_ids:
            self.tampered_audit = True
            row_id = self.rng.choice(audit_ids)
            before = snapshot(self.conn)
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                self.conn.execute("UPDATE audit SET actor = 'mallory' WHERE id = ?", (row_id,))
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                self.conn.execute("DELETE FROM audit WHERE id = ?", (row_id,))
            assert snapshot(self.conn) == before
            assert audit.verify(self.conn).ok


def _examples() -> int:
    with contextlib.suppress(ValueError):
        return max(1, int(os.environ.get("KEPUBOT_HYPOTHESIS_EXAMPLES", "60")))
    return 60


DeliveryWorkflow.TestCase.settings = settings(
    max_examples=_examples(),
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestDeliveryWorkflow = DeliveryWorkflow.TestCase


class PostgresqlDeliveryWorkflow(DeliveryWorkflow):
    """The same machine on PostgreSQL (docs/architecture.md §11.4): a database of its own per
    example, made from the migrated template and dropped at the example's end."""

    def __init__(self) -> None:
        url = backends.new_pg_database()
        if url is None:
            pytest.skip(f"PostgreSQL not reachable: {backends.unreachable()}")
        self.pg_url = url
        os.environ["KEPUBOT_DATABASE"] = url
        super().__init__()

    def teardown(self) -> None:
        try:
            super().teardown()
        finally:
            os.environ.pop("KEPUBOT_DATABASE", None)
            backends.drop_pg_database(self.pg_url)


PostgresqlDeliveryWorkflow.TestCase.settings = DeliveryWorkflow.TestCase.settings
TestDeliveryWorkflowPostgresql = pytest.mark.skipif(
    os.environ.get("KEPUBOT_TEST_BACKEND") == "sqlite", reason="--backend sqlite"
)(PostgresqlDeliveryWorkflow.TestCase)
