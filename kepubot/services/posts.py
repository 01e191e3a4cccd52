"""Posts and the editorial workflow (docs/architecture.md §4).

``draft -> in_review (level 1..N) -> approved``; ``rejected`` goes back to the author with a
reason; ``cancelled`` withdraws. The author never reviews their own post, one person approves
at most one level of a post, and approval pins the content hash. Every change is one
``store.transaction()`` with its audit row. The SQL is in ``kepubot.queue.posts``, reached
through ``app.store.posts`` (docs/architecture.md §17).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepubot.errors import InvalidInput, NotAllowed, NotFound
from kepubot.files.media import removed_on_failure
from kepubot.models import Media, Post, Review, Source, content_hash
from kepubot.services.duplicates import refuse_duplicates
from kepubot.timeutil import parse_future_time, to_db

if TYPE_CHECKING:
    from collections.abc import Collection

    from kepubot.app import App
    from kepubot.channels.base import Problem
    from kepubot.sensitive import Hit

EDITABLE_STATES = ("draft", "in_review", "approved", "rejected")


@dataclass
class PostInput:
    """What an editor gives for a new post or an edit. ``None`` means "not given"."""

    title: str | None = None
    body: str | None = None
    summary: str | None = None
    link: str | None = None
    tags: list[str] | None = None
    images: list[Path] | None = None
    video: Path | None = None
    cover: Path | None = None
    # images added to those given or kept (the console's dropped or pasted uploads, already in
    # the media store; docs/architecture.md §15.2)
    add_images: list[Path] | None = None
    channels: list[str] | None = None
    at: str | None = None
    next_slot: bool = False
    # "as soon as approved": drop an earlier time or next-slot choice (edits only)
    unschedule: bool = False
    variants: dict[str, dict[str, str]] | None = None
    # [{title, url} | {title, doi}] (kepubot.sources; docs/architecture.md §14)
    sources: list[dict[str, str]] | None = None
    where: dict[str, str] = field(default_factory=dict)  # field -> "file row 3" for errors
    # how errors name a media file, and the name kept for it (the console: the uploaded
    # file's own name, never the temporary path it was saved under)
    file_names: dict[Path, str] = field(default_factory=dict)

    def place(self, name: str, default: str) -> str:
        return self.where.get(name, default)


# --- reading -----------------------------------------------------------------------------


def _loaded(app: App, post: Post) -> Post:
    """The post with each media record's file in the media store."""
    if not post.media:
        return post
    media = [m.model_copy(update={"file": app.media_file(m.path)}) for m in post.media]
    return post.model_copy(update={"media": media})


def get_post(app: App, post_id: int) -> Post:
    """The post (on the calling thread's connection)."""
    post = app.store.posts.get(post_id)
    if post is None:
        raise NotFound(f"post {post_id} does not exist; see `kepubot post list`")
    return _loaded(app, post)


def list_posts(
    app: App,
    *,
    state: str | None = None,
    channel: str | None = None,
    author: str | None = None,
    tag: str | None = None,
    title: str | None = None,
    review_level: int | None = None,
    created_from: datetime | None = None,
    created_before: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Post]:
    """Newest first, filtered (``kepubot.queue.posts.list_posts`` says which filters an
    index serves)."""
    found = app.store.posts.list_posts(
        state=state,
        channel=channel,
        author=author,
        tag=tag,
        title=title,
        review_level=review_level,
        created_from=created_from,
        created_before=created_before,
        limit=limit,
        offset=offset,
    )
    return [_loaded(app, p) for p in found]


def scheduled_between(app: App, start: datetime, end: datetime) -> list[Post]:
    """Posts with an explicit publish time in [start, end) that have no deliveries yet
    (drafts and posts in review): the calendar shows them as planned."""
    return [_loaded(app, p) for p in app.store.posts.scheduled_between(start, end)]


def count_in_state(app: App, state: str) -> int:
    return app.store.posts.count_in_state(state)


def titles_of(app: App, ids: set[int] | list[int]) -> dict[int, str]:
    """Titles of these posts in one query (list pages show titles next to deliveries)."""
    return app.store.posts.titles_of(ids)


def reviews_of(app: App, post_id: int) -> list[Review]:
    return app.store.posts.reviews_of(post_id)


# --- validating input --------------------------------------------------------------------

_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _clean_tags(tags: list[str]) -> list[str]:
    seen: list[str] = []
    for tag in tags:
        tag = tag.strip().lstrip("#").strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


@dataclass
class Prepared:
    """Validated fields ready to write (media already in the store)."""

    fields: dict[str, Any]
    scheduled_at: datetime | None
    next_slot: bool | None


def size_problems(data: PostInput, fields: dict[str, Any]) -> None:
    """Refuse text over the limits of ``kepubot.models`` (every problem, one line each)."""
    from kepubot.models import (
        MAX_BODY_CHARS,
        MAX_LINK_CHARS,
        MAX_SUMMARY_CHARS,
        MAX_TAG_CHARS,
        MAX_TAGS,
        MAX_TITLE_CHARS,
    )

    limits = {
        "title": ("--title", MAX_TITLE_CHARS),
        "body": ("--body", MAX_BODY_CHARS),
        "summary": ("--summary", MAX_SUMMARY_CHARS),
        "link": ("--link", MAX_LINK_CHARS),
    }
    problems = []

    def check(place: str, what: str, value: str, limit: int) -> None:
        if len(value) > limit:
            problems.append(
                f"{place}: the {what} has {len(value)} characters, at most {limit} are"
                " allowed; shorten it"
            )

    for name, (option, limit) in limits.items():
        value = fields.get(name)
        if isinstance(value, str):
            check(data.place(name, option), name, value, limit)
    tags = fields.get("tags") or []
    if len(tags) > MAX_TAGS:
        problems.append(
            f"{data.place('tags', '--tag')}: {len(tags)} tags, at most {MAX_TAGS} are allowed;"
            " keep the ones that matter most"
        )
    for tag in tags[: MAX_TAGS + 1]:
        if len(tag) > MAX_TAG_CHARS:
            shown = tag if len(tag) <= 40 else tag[:40] + "…"
            problems.append(
                f"{data.place('tags', '--tag')} {shown!r}: the tag has {len(tag)} characters,"
                f" at most {MAX_TAG_CHARS} are allowed; shorten it"
            )
    for channel, overrides in (fields.get("variants") or {}).items():
        for name, value in overrides.items():
            if name in limits and isinstance(value, str):
                place = data.place("variants", "variants")
                check(f"{place} {channel}.{name}", name, value, limits[name][1])
    if problems:
        raise InvalidInput("\n".join(problems))


def prepare(app: App, data: PostInput, *, now: datetime, base: Post | None = None) -> Prepared:
    """Validate ``data`` (over ``base`` for edits) and copy media into the store.

    Raises InvalidInput naming the field (and the file/row when ``data.where`` says so).
    """
    from kepubot.services.validate import clean_input

    # every problem of the text fields is one line of one InvalidInput (issue 11 item 17)
    problems: list[str] = []
    try:
        # control characters, text-direction overrides, line ends, zero-width characters and
        # links (kepubot.services.validate, the one place for those rules)
        data = clean_input(data)
    except InvalidInput as exc:
        problems.extend(str(exc).splitlines())
    fields: dict[str, Any] = {}
    if data.title is not None or base is None:
        title = (data.title or "").strip()
        if not title:
            problems.append(f"{data.place('title', '--title')}: the title is empty; give a title")
        fields["title"] = title
    if data.body is not None or base is None:
        body = (data.body or "").strip("\n")
        if not body.strip():
            problems.append(
                f"{data.place('body', '--body')}: the body is empty; give --body TEXT or --body-file F"
            )
        fields["body"] = body
    if data.summary is not None:
        fields["summary"] = data.summary.strip()
    if data.link is not None:
        fields["link"] = data.link.strip()  # checked by clean_input
    if data.tags is not None:
        fields["tags"] = _clean_tags(data.tags)
    if data.channels is not None or base is None:
        channels = list(dict.fromkeys(c.strip() for c in (data.channels or []) if c.strip()))
        if not channels:
            problems.append(
                f"{data.place('channels', '--channel')}: no target channel; give at least one"
                " --channel NAME"
            )
        configured = app.config.data.channels
        for name in channels:
            if name not in configured:
                known = ", ".join(sorted(configured)) or "none configured"
                problems.append(
                    f"{data.place('channels', '--channel')} {name!r}: no such channel in"
                    f" {app.config.path.name} (configured: {known})"
                )
        fields["channels"] = channels
    if data.variants is not None:
        for name in data.variants:
            if name not in app.config.data.channels:
                problems.append(
                    f"{data.place('variants', 'variants')} {name!r}: no such channel in"
                    f" {app.config.path.name}"
                )
        fields["variants"] = data.variants
    if data.sources is not None:
        fields["sources"] = data.sources  # checked by clean_input
    if problems:
        raise InvalidInput("\n".join(problems))

    size_problems(data, fields)  # before any media is copied
    media_given = (
        data.images is not None
        or data.video is not None
        or data.cover is not None
        or bool(data.add_images)
    )
    if media_given:
        kept = list(base.media) if base is not None else []
        media: list[dict[str, Any]] = []

        def add(path: Path, kind: str, option: str) -> dict[str, Any]:
            name = data.file_names.get(path)
            where = data.place(kind + "s" if kind == "image" else kind, option)
            return app.media.add(path, kind, where=where, shown=name, name=name)

        if data.images is not None:
            for path in data.images:
                media.append(add(path, "image", "--image"))
        else:
            media.extend(m.model_dump() for m in kept if m.kind == "image")
        for path in data.add_images or []:
            record = add(path, "image", "--image")
            # the same file under the same name once; under another name it is another
            # reference the body may use
            if all(
                (m["path"], m["name"]) != (record["path"], record["name"])
                for m in media
                if m["kind"] == "image"
            ):
                media.append(record)
        if data.video is not None:
            media.append(add(data.video, "video", "--video"))
        else:
            media.extend(m.model_dump() for m in kept if m.kind == "video")
        if data.cover is not None:
            media.append(add(data.cover, "cover", "--cover"))
        else:
            media.extend(m.model_dump() for m in kept if m.kind == "cover")
        fields["media"] = media

    scheduled_at: datetime | None = None
    next_slot: bool | None = None
    if data.at is not None and data.at.strip():
        if data.next_slot:
            where = data.where.get("next_slot")
            raise InvalidInput(
                f"{where}: give either at or next_slot, not both"
                if where
                else "give either --at or --next-slot, not both"
            )
        scheduled_at = parse_future_time(data.at, app.tz, now, what=data.place("at", "--at"))
        next_slot = False
    elif data.next_slot:
        next_slot = True
    return Prepared(fields, scheduled_at, next_slot)


def _hash_of(values: dict[str, Any]) -> str:
    return content_hash(
        title=values["title"],
        body=values["body"],
        summary=values["summary"],
        link=values["link"],
        tags=values["tags"],
        media=values["media"],
        channels=values["channels"],
        variants=values["variants"],
        sources=values.get("sources") or [],
    )


def _values_of(post: Post) -> dict[str, Any]:
    return {
        "title": post.title,
        "body": post.body,
        "summary": post.summary,
        "link": post.link,
        "tags": post.tags,
        "media": [m.model_dump() for m in post.media],
        "channels": post.channels,
        "variants": post.variants,
        "sources": [s.model_dump(exclude_defaults=True) for s in post.sources],
    }


# --- creating and editing ------------------------------------------------------------------


def _insert(app: App, prepared: Prepared, *, author: str, now: datetime, source: str) -> int:
    values = {
        "summary": "",
        "link": "",
        "tags": [],
        "media": [],
        "variants": {},
        "sources": [],
        **prepared.fields,
    }
    digest = _hash_of(values)
    post_id = app.store.posts.insert(
        values,
        author=author,
        scheduled_at=prepared.scheduled_at,
        next_slot=bool(prepared.next_slot),
        content_hash=digest,
        now=now,
    )
    app.store.audit.append(
        at=to_db(now),
        actor=author,
        action="post.created",
        post_id=post_id,
        detail={
            "title": values["title"],
            "channels": values["channels"],
            "source": source,
            "content_hash": digest,
        },
    )
    return post_id


def create_post(
    app: App,
    actor: str,
    data: PostInput,
    *,
    now: datetime,
    source: str = "cli",
    allow_duplicates: bool = True,
) -> int:
    """A new draft; ``source`` (cli, web) is recorded in the audit row. With
    ``allow_duplicates=False`` a post with the title and body of one that exists (not
    cancelled) is refused; ``post add`` and the console write it and warn instead
    (``duplicates.same_posts``): a person writing one post means it."""
    app.require_role(actor, "editor", action="writing a post")
    with removed_on_failure(app.media, app.store):  # a refused post leaves no media behind
        prepared = prepare(app, data, now=now)
        with app.store.transaction():
            _refuse_time(app, data, prepared)
            if not allow_duplicates:
                refuse_duplicates(app.store, [(prepared.fields, data.place("title", "--title"))])
            return _insert(app, prepared, author=actor, now=now, source=source)


def create_posts(
    app: App,
    actor: str,
    items: list[tuple[PostInput, str]],
    *,
    now: datetime,
    allow_duplicates: bool = True,
) -> list[int]:
    """All-or-nothing: every item is validated first, then all are written in one transaction.

    ``items`` are (input, source description) pairs. Raises InvalidInput listing every bad item
    (and, with ``allow_duplicates=False`` as ``post import`` passes unless told otherwise,
    every item repeating an existing post that is not cancelled or an earlier item). Media
    copied in for a refused import are taken out again.
    """
    app.require_role(actor, "editor", action="importing posts")
    with removed_on_failure(app.media, app.store):
        prepared: list[tuple[Prepared, str]] = []
        places: list[str] = []
        errors: list[str] = []
        inputs: list[PostInput] = []
        for data, source in items:
            try:
                prepared.append((prepare(app, data, now=now), source))
                places.append(data.place("title", source))
                inputs.append(data)
            except InvalidInput as exc:
                errors.append(str(exc))
        if errors:
            raise InvalidInput("\n".join(errors))
        with app.store.transaction():
            # each row's time as `post schedule --at` checks it, every refusal listed (read
            # in the writing transaction, as the duplicates are, once the rows are valid)
            for data, (item, _) in zip(inputs, prepared, strict=True):
                try:
                    _refuse_time(app, data, item)
                except InvalidInput as exc:
                    errors.append(str(exc))
            if errors:
                raise InvalidInput("\n".join(errors))
            if not allow_duplicates:
                refuse_duplicates(
                    app.store,
                    [(p.fields, place) for (p, _), place in zip(prepared, places, strict=True)],
                )
            return [_insert(app, p, author=actor, now=now, source=source) for p, source in prepared]


def edit_post(app: App, actor: str, post_id: int, data: PostInput, *, now: datetime) -> Post:
    """Change a post. An edit in review or after approval sends it back to review level 1.
    Media copied in for a refused edit are taken out again."""
    with removed_on_failure(app.media, app.store):
        return _edit_post(app, actor, post_id, data, now=now)


def _edit_post(app: App, actor: str, post_id: int, data: PostInput, *, now: datetime) -> Post:
    with app.store.transaction():
        post = get_post(app, post_id)
        roles = app.roles(actor)
        if post.author != actor and "admin" not in roles:
            raise NotAllowed(
                f"post {post_id} was written by {post.author}; only its author (or an admin) edits it"
            )
        if post.state not in EDITABLE_STATES:
            raise NotAllowed(f"post {post_id} is {post.state}; it can no longer be edited")
        started = app.store.deliveries.in_flight_or_done(post_id)
        if started:
            names = ", ".join(f"{d.channel} ({d.state})" for d in started)
            raise NotAllowed(
                f"post {post_id} has already gone out on {names}; it cannot change now —"
                " write a new post instead"
            )
        prepared = prepare(app, data, now=now, base=post)
        values = {**_values_of(post), **prepared.fields}
        added = set(values["channels"]) - set(post.channels)
        gone = [
            d.channel
            for d in app.store.deliveries.for_post(post_id)
            if d.channel in added and d.state == "cancelled"
        ]
        if gone:
            raise NotAllowed(
                f"post {post_id} was withdrawn from {', '.join(sorted(gone))} after an approval;"
                " it cannot be sent there again — write a new post for that channel"
            )
        if prepared.scheduled_at is not None:
            # a new time keeps the rule of `post schedule --at`, with its words
            reasons = time_refusals(
                app, channels=values["channels"], when=prepared.scheduled_at, post_id=post_id
            )
            if reasons:
                raise InvalidInput("\n".join(f"post {post_id} {reason}" for reason in reasons))
        digest = _hash_of(values)
        unschedule = data.unschedule and (post.scheduled_at is not None or post.next_slot)
        if (
            digest == post.content_hash
            and prepared.scheduled_at is None
            and prepared.next_slot is None
            and not unschedule
        ):
            return post  # nothing changed
        state, round_, level = post.state, post.review_round, post.review_level
        back_to_review = post.state in ("in_review", "approved") and digest != post.content_hash
        if back_to_review:
            _require_clean(app, post.model_copy(update=_model_fields(values)), "edited")
            state, round_, level = "in_review", post.review_round + 1, 1
            app.store.deliveries.hold_for_review(post_id=post_id, now=now, actor=actor)
        scheduled = (
            prepared.scheduled_at if prepared.scheduled_at is not None else post.scheduled_at
        )
        next_slot = prepared.next_slot if prepared.next_slot is not None else post.next_slot
        if prepared.next_slot:
            scheduled = None
        if unschedule and prepared.scheduled_at is None and prepared.next_slot is None:
            scheduled, next_slot = None, False
        app.store.posts.update(
            post_id,
            values,
            state=state,
            review_round=round_,
            review_level=level,
            scheduled_at=scheduled,
            next_slot=bool(next_slot),
            content_hash=digest,
            approved_hash=post.approved_hash if state == "approved" else None,
            now=now,
        )
        if values["channels"] != post.channels:
            app.store.posts.replace_channels(post_id, values["channels"])
            # Deliveries of dropped channels stay held (pending) until the post is approved
            # again: the approval cancels those still dropped, and a channel added back
            # before then is simply queued again.
        moved: dict[str, datetime] = {}
        if scheduled != post.scheduled_at or bool(next_slot) != post.next_slot:
            # the waiting deliveries (queued, or held for review) move with the time, as
            # `post schedule` moves them: they kept the old one, so the post went out then
            moved = _move_waiting(app, actor, post_id, now=now)
        changed = sorted(k for k in values if values[k] != _values_of(post)[k])
        app.store.audit.append(
            at=to_db(now),
            actor=actor,
            action="post.edited",
            post_id=post_id,
            detail={
                "changed": changed,
                "content_hash": digest,
                "back_to_review": back_to_review,
                "scheduled_at": to_db(scheduled) if scheduled else None,
                "next_slot": bool(next_slot),
                **({"deliveries": {k: to_db(v) for k, v in moved.items()}} if moved else {}),
            },
        )
        return get_post(app, post_id)


def _model_fields(values: dict[str, Any]) -> dict[str, Any]:
    return {
        **values,
        "media": [Media(**m) for m in values["media"]],
        "sources": [Source(**s) for s in values.get("sources") or []],
    }


# --- checks ----------------------------------------------------------------------------------


def problems_of(app: App, post: Post) -> list[str]:
    """Channel rules of every target channel plus the sensitive-word list, as readable lines."""
    lines: list[str] = []
    channels = app.channels
    for name in post.channels:
        channel = channels.get(name)
        if channel is None:
            lines.append(f"{name}: channel is no longer configured")
            continue
        problems: list[Problem] = channel.check(post.for_channel(name))
        lines.extend(f"{name}: {p.describe(app.language)}" for p in problems)
    for hit in _word_hits(app, post):
        if hit.level == "block":  # warn words: warnings_of (a reviewer accepts them)
            lines.append(f"sensitive word {hit.describe()}")
    from kepubot.services.validate import stored_problems

    # control characters or a hostile link stored before they were refused (issue 11 items 7, 8)
    lines.extend(stored_problems(post))
    from kepubot.sources import requirement_problem

    # tags that need an authoritative source (issue 13 §5, docs/architecture.md §14)
    missing = requirement_problem(post, app.config.data.review)
    if missing:
        lines.append(missing)
    from kepubot.bodyimages import attached_names, missing_image_problems

    # an image the body shows by name that is not attached (docs/architecture.md §15.2)
    names = attached_names(post.media)
    lines.extend(missing_image_problems(post.body, names))
    for channel_name, overrides in post.variants.items():
        if isinstance(overrides.get("body"), str):
            where = f"variants.{channel_name}.body"
            lines.extend(missing_image_problems(overrides["body"], names, where))
    return lines


def _word_hits(app: App, post: Post) -> list[Hit]:
    fields = {
        "title": post.title,
        "summary": post.summary,
        "body": post.body,
        "tags": "\n".join(post.tags),
    }
    for channel_name, overrides in post.variants.items():
        for key, value in overrides.items():
            fields[f"variants.{channel_name}.{key}"] = value
    return app.sensitive_words.scan(fields)


def warnings_of(app: App, post: Post) -> list[Hit]:
    """The post's ``warn`` sensitive words (docs/architecture.md §4.3): they do not stop a
    submit; each must be accepted by a reviewer with a reason before an approval."""
    return [hit for hit in _word_hits(app, post) if hit.level == "warn"]


def accepted_words(app: App, post: Post) -> dict[str, dict[str, Any]]:
    """Warning words accepted in the post's current review round for its current content:
    word -> the acceptance (reviewer, reason, level name, time). Read from the audit, where
    each acceptance is a ``post.word_accepted`` row."""
    found: dict[str, dict[str, Any]] = {}
    for row in app.store.audit.rows_for_post(post.id):
        if row.action != "post.word_accepted":
            continue
        detail = row.detail
        if detail.get("round") == post.review_round and (
            detail.get("content_hash") == post.content_hash
        ):
            found.setdefault(
                detail["word"],
                {
                    "reviewer": row.actor,
                    "reason": detail.get("reason", ""),
                    "level_name": detail.get("level_name", ""),
                    "at": row.at,
                },
            )
    return found


def _require_clean(app: App, post: Post, doing: str) -> None:
    problems = problems_of(app, post)
    if problems:
        # one line per problem (the command line prints each as its own "error:" line)
        raise NotAllowed("\n".join(f"post {post.id} cannot be {doing}: {p}" for p in problems))


# --- the workflow ------------------------------------------------------------------------------


def _batch(app: App, ids: list[int], step: Any) -> None:
    """Run ``step(post_id)`` for every id in one transaction; if any id is refused, none
    changes and every refusal is listed."""
    if not ids:
        raise InvalidInput("give at least one post id")
    refusals: list[str] = []
    with app.store.transaction():
        for post_id in dict.fromkeys(ids):
            try:
                step(post_id)
            except (NotAllowed, InvalidInput) as exc:
                refusals.append(str(exc))
        if refusals:
            raise NotAllowed("\n".join(refusals))


def submit(app: App, actor: str, ids: list[int], *, now: datetime, comment: str = "") -> None:
    roles = app.roles(actor)

    def step(post_id: int) -> None:
        post = get_post(app, post_id)
        if post.author != actor and "admin" not in roles:
            raise NotAllowed(
                f"post {post_id} was written by {post.author}; only its author submits it"
            )
        if "editor" not in roles and "admin" not in roles:
            raise NotAllowed(f"post {post_id}: submitting needs the editor role")
        if post.state not in ("draft", "rejected"):
            raise NotAllowed(
                f"post {post_id} is {post.state}; only draft or rejected posts can be submitted"
            )
        _require_clean(app, post, "submitted")
        app.store.posts.start_review(post_id, was=post.state, now=now)
        app.store.audit.append(
            at=to_db(now),
            actor=actor,
            action="post.submitted",
            post_id=post_id,
            detail={
                "round": post.review_round + 1,
                "content_hash": post.content_hash,
                "comment": comment,
            },
        )

    _batch(app, ids, step)
    notify_reviewers(app, ids)


def _level_name(app: App, level: int) -> str:
    levels = app.config.review_levels
    return levels[level - 1] if 1 <= level <= len(levels) else str(level)


def _check_reviewer(app: App, actor: str, post: Post, doing: str) -> None:
    roles = app.roles(actor)
    # the role of the level the post is at (`[review] levels`, e.g. expert for 科学性审核)
    # (a post no longer in review: any reviewing role reaches the state check below)
    in_review = post.state == "in_review"
    role = app.config.level_role(post.review_level) if in_review else "reviewer"
    wanted = {role} if in_review else {role, *app.config.review_roles}
    if not wanted & roles and "admin" not in roles:
        raise NotAllowed(f"post {post.id}: {doing} needs the {role} role; {actor} does not have it")
    if post.author == actor:
        raise NotAllowed(
            f"post {post.id} was written by {actor}; the author never reviews their own post"
        )
    if post.state != "in_review":
        raise NotAllowed(f"post {post.id} is {post.state}; only posts in review can be {doing}")


def review_refusal(app: App, actor: str, post: Post, doing: str = "approved") -> str | None:
    """Why ``actor`` may not approve (or reject) ``post`` now, or None. The workflow's rules
    in one place: the level's role, never one's own post, only posts in review, and one
    person approves at most one level of a post in one review round (an edit or a rejection
    starts a new round, where the same people may review again)."""
    try:
        _check_reviewer(app, actor, post, doing)
    except NotAllowed as exc:
        return str(exc)
    if doing != "approved":
        return None
    earlier = app.store.posts.other_level_approved_by(
        post.id, post.review_round, actor, level=post.review_level
    )
    if earlier is not None:
        return (
            f"post {post.id}: {actor} already approved it at level {_level_name(app, earlier)};"
            " one person approves at most one level of a post"
        )
    return None


@dataclass(frozen=True)
class Seen:
    """What the reviewer saw when they opened the post (docs/architecture.md §4.6): an
    approval or rejection commits only if the post still has this content hash and is still
    at this level (None: not pinned)."""

    content_hash: str | None = None
    level: int | None = None


@dataclass(frozen=True)
class Acceptance:
    """``warn`` sensitive words a reviewer accepts with a reason at approval
    (docs/architecture.md §4.3): the named ``words``, or every one (``all``)."""

    reason: str
    words: tuple[str, ...] = ()
    all: bool = False


def level_number(app: App, text: str) -> int:
    """A level given by its name (初审) or its number (1); InvalidInput otherwise."""
    levels = app.config.review_levels
    value = text.strip()
    if value in levels:
        return levels.index(value) + 1
    if value.isdigit() and 1 <= int(value) <= len(levels):
        return int(value)
    raise InvalidInput(
        f"--level {text!r}: no such review level; the levels are {', '.join(levels)}"
    )


def _check_seen(app: App, post: Post, seen: Seen | None, doing: str) -> None:
    """Refuse (nothing written) when the post changed since the reviewer opened it: another
    content, or another level (someone approved the level meanwhile). Runs inside the write
    transaction, so two reviewers acting at once cannot both pass it."""
    from kepubot.timeutil import show

    if seen is None:
        return
    if seen.content_hash is not None and seen.content_hash != post.content_hash:
        edits = [r for r in app.store.audit.rows_for_post(post.id) if r.action == "post.edited"]
        by = f", edited by {edits[-1].actor} at {show(edits[-1].at, app.tz)}" if edits else ""
        raise NotAllowed(
            f"post {post.id} changed since it was opened: its content hash"
            f" {seen.content_hash[:12]} is now {post.content_hash[:12]}{by}; nothing was"
            f" {doing} — read it again (kepubot post show {post.id}) and decide on what it"
            " says now"
        )
    moved = post.state != "in_review" or seen.level != post.review_level
    if seen.level is not None and moved:
        last = app.store.posts.last_review(post.id, post.review_round, seen.level)
        name = _level_name(app, seen.level)
        by = (
            f" ({name} was {last.decision}d by {last.reviewer} at {show(last.at, app.tz)})"
            if last is not None
            else ""
        )
        where = (
            f"but at {_level_name(app, post.review_level)}"
            if post.state == "in_review"
            else f"and is {post.state}"
        )
        raise NotAllowed(
            f"post {post.id} is no longer at level {name} {where}{by}; nothing was {doing} —"
            f" open it again (kepubot post show {post.id})"
        )


def _accept_warnings(
    app: App, actor: str, post: Post, accept: Acceptance | None, *, now: datetime
) -> list[str]:
    """Every ``warn`` word of the post must be accepted in this round: earlier (at a lower
    level) or now by ``actor``. Writes one audit row per word accepted now and returns those
    words; refuses (one line per word) what stays unaccepted or cannot be accepted."""
    hits = warnings_of(app, post)
    warn_words = list(dict.fromkeys(hit.word for hit in hits))
    done = accepted_words(app, post)
    problems: list[str] = []
    wanted: list[str] = []
    if accept is not None:
        if not accept.reason.strip():
            raise InvalidInput(
                "--reason: say why the warning words are acceptable; the reason is kept in the"
                " post's history"
            )
        for word in accept.words:
            if word in warn_words:
                wanted.append(word)
            elif app.sensitive_words.level_of(word) == "block":
                problems.append(
                    f"post {post.id}: {word!r} is a blocked sensitive word; it cannot be"
                    " accepted — the author must change the text"
                )
            else:
                listed = ", ".join(warn_words) or "none"
                problems.append(
                    f"post {post.id}: {word!r} is not a warning word of this post (its warning"
                    f" words: {listed})"
                )
        if accept.all:
            wanted = warn_words
    new = [w for w in dict.fromkeys(wanted) if w not in done]
    for hit in hits:
        if hit.word not in done and hit.word not in new:
            problems.append(
                f"post {post.id} cannot be approved: {hit.describe()} is not accepted; accept it"
                f" with --accept-word {hit.word} --reason TEXT (or --accept-warnings TEXT), or"
                " ask the author to change it"
            )
    if problems:
        raise NotAllowed("\n".join(dict.fromkeys(problems)))
    for word in new:
        places = [f"{h.field} {h.line}:{h.column}" for h in hits if h.word == word]
        app.store.audit.append(
            at=to_db(now),
            actor=actor,
            action="post.word_accepted",
            post_id=post.id,
            detail={
                "word": word,
                "reason": accept.reason.strip() if accept else "",
                "places": places,
                "round": post.review_round,
                "level": post.review_level,
                "level_name": _level_name(app, post.review_level),
                "content_hash": post.content_hash,
            },
        )
    return new


def approve(
    app: App,
    actor: str,
    ids: list[int],
    *,
    now: datetime,
    comment: str = "",
    seen: dict[int, Seen] | None = None,
    accept: Acceptance | None = None,
    ack_proofreading: bool | Collection[str] = False,
) -> None:
    """``ack_proofreading``: at the final level every remaining proofreading finding must be
    acknowledged, all of them (True, the command line's ``--ack-proofreading`` after the
    refusal listed them) or each by its key (the console's checkboxes); docs/architecture.md
    §13. ``seen``: what the reviewer saw of each post (docs/architecture.md §4.6);
    ``accept``: warning words accepted (§4.3)."""
    levels = app.config.review_levels

    def step(post_id: int) -> None:
        post = get_post(app, post_id)
        _check_seen(app, post, (seen or {}).get(post_id), "approved")
        refusal = review_refusal(app, actor, post, "approved")
        if refusal is not None:
            raise NotAllowed(refusal)
        level = post.review_level
        if app.store.posts.level_approved(post_id, post.review_round, level):
            raise NotAllowed(f"post {post_id}: level {_level_name(app, level)} is already approved")
        _require_clean(app, post, "approved")
        accepted = _accept_warnings(app, actor, post, accept, now=now)
        acknowledged = _proofreading_acknowledged(
            app, post, final=post.review_level >= len(levels), ack=ack_proofreading
        )
        app.store.posts.add_review(
            post_id=post_id,
            round=post.review_round,
            level=level,
            reviewer=actor,
            decision="approve",
            comment=comment,
            content_hash=post.content_hash,
            now=now,
        )
        final = level >= len(levels)
        detail: dict[str, Any] = {
            "level": level,
            "level_name": _level_name(app, level),
            "round": post.review_round,
            "content_hash": post.content_hash,
            "comment": comment,
            "final": final,
        }
        if acknowledged:
            detail["proofreading_acknowledged"] = acknowledged
        if accepted:
            detail["accepted_words"] = accepted
        if not final:
            app.store.posts.set_level(post_id, level + 1, now=now)
            app.store.audit.append(
                at=to_db(now),
                actor=actor,
                action="post.approved_level",
                post_id=post_id,
                detail=detail,
            )
            return
        # Every approval of this round must be of exactly this content.
        hashes = app.store.posts.approved_hashes(post_id, post.review_round)
        if hashes != {post.content_hash}:
            raise NotAllowed(f"post {post_id}: its content changed during review; review it again")
        app.store.posts.mark_approved(post_id, now=now)
        app.store.audit.append(
            at=to_db(now),
            actor=actor,
            action="post.approved",
            post_id=post_id,
            detail=detail,
        )
        due = _due_times(app, post, now)
        app.store.deliveries.queue_for_post(
            post_id=post_id,
            due_by_channel=due,
            content_hash=post.content_hash,
            now=now,
            actor=actor,
        )

    _batch(app, ids, step)
    notify_reviewers(app, ids)


def _proofreading_acknowledged(
    app: App, post: Post, *, final: bool, ack: bool | Collection[str]
) -> list[str]:
    """The findings the final reviewer acknowledges (described, for the audit); refuses the
    approval listing every finding not acknowledged. Earlier levels acknowledge nothing."""
    if not final:
        return []
    from kepubot.proofread import findings_for

    findings = findings_for(app, post)
    keys = set() if isinstance(ack, bool) else set(ack)
    missing = [f for f in findings if not (ack is True or f.key in keys)]
    if missing:
        raise NotAllowed(
            "\n".join(
                f"post {post.id} cannot be approved: proofreading finding not acknowledged:"
                f" {f.describe('en')} (pass --ack-proofreading after checking each one)"
                for f in missing
            )
        )
    return [f.describe("en") for f in findings]


def _due_times(
    app: App, post: Post, now: datetime, *, channels: list[str] | None = None
) -> dict[str, datetime]:
    """When each channel's delivery is due (``channels``, default the post's targets)."""
    from kepubot.services.pauses import blackout_days
    from kepubot.services.schedule import next_slot

    due: dict[str, datetime] = {}
    for name in channels if channels is not None else post.channels:
        if post.next_slot and name in app.channels:
            due[name] = next_slot(
                app.store,
                channel=name,
                settings=app.channels[name].settings,
                tz=app.tz,
                now=now,
                post_id=post.id,
                dates=blackout_days(app.config, name),
            )
        elif post.scheduled_at is not None and post.scheduled_at > now:
            due[name] = post.scheduled_at
        else:
            due[name] = now
    return due


def reject(
    app: App,
    actor: str,
    ids: list[int],
    *,
    reason: str,
    now: datetime,
    seen: dict[int, Seen] | None = None,
) -> None:
    if not reason or not reason.strip():
        raise InvalidInput("--reason: say why the post is rejected, so the author can fix it")

    def step(post_id: int) -> None:
        post = get_post(app, post_id)
        _check_seen(app, post, (seen or {}).get(post_id), "rejected")
        _check_reviewer(app, actor, post, "rejected")
        app.store.posts.add_review(
            post_id=post_id,
            round=post.review_round,
            level=post.review_level,
            reviewer=actor,
            decision="reject",
            comment=reason.strip(),
            content_hash=post.content_hash,
            now=now,
        )
        app.store.posts.mark_rejected(post_id, now=now)
        app.store.audit.append(
            at=to_db(now),
            actor=actor,
            action="post.rejected",
            post_id=post_id,
            detail={
                "level": post.review_level,
                "level_name": _level_name(app, post.review_level),
                "reason": reason.strip(),
            },
        )

    _batch(app, ids, step)


def schedule(
    app: App, actor: str, post_id: int, *, at: str | None, next_slot: bool, now: datetime
) -> dict[str, datetime]:
    """Set the publishing time. For an approved post the waiting deliveries move too."""
    if bool(at) == bool(next_slot):
        raise InvalidInput("give exactly one of --at TIME or --next-slot")
    when = parse_future_time(at, app.tz, now) if at else None
    with app.store.transaction():
        return _schedule_one(app, actor, post_id, when=when, next_slot=next_slot, now=now)


def schedule_many(
    app: App, actor: str, ids: list[int], *, at: str | None, next_slot: bool, now: datetime
) -> None:
    """Schedule several posts at one time, all or none (the console's bulk action): every
    refusal (a blackout, the min gap, a post that cannot be scheduled) is listed."""
    if bool(at) == bool(next_slot):
        raise InvalidInput("give exactly one of --at TIME or --next-slot")
    when = parse_future_time(at, app.tz, now) if at else None

    def step(post_id: int) -> None:
        _schedule_one(app, actor, post_id, when=when, next_slot=next_slot, now=now)

    _batch(app, ids, step)


def time_refusals(
    app: App, *, channels: list[str], when: datetime, post_id: int | None
) -> list[str]:
    """Why the explicit publishing time ``when`` cannot be used, one ``on CHANNEL: ...``
    reason each (``schedule.slot_refusals``): a blackout date or window of a channel, or
    another post's delivery within its ``min_gap_minutes``. The same rule wherever a time is
    given: ``post schedule --at``, the calendar's drag, ``post add/edit --at``, ``post import``
    and the console's form (docs/architecture.md §4.5). Checked on ``channels`` and, for an
    existing post, on every delivery that would move, also one held on a channel an edit
    dropped."""
    from kepubot.services.pauses import blackout_days
    from kepubot.services.schedule import slot_refusals

    moving = (
        [
            d.channel
            for d in app.store.deliveries.for_post(post_id)
            if d.state in ("pending", "queued")
        ]
        if post_id is not None
        else []
    )
    return [
        reason
        for name in dict.fromkeys([*channels, *moving])
        if name in app.channels
        for reason in slot_refusals(
            app.store,
            channel=name,
            settings=app.channels[name].settings,
            tz=app.tz,
            when=when,
            post_id=post_id,
            dates=blackout_days(app.config, name),
        )
    ]


def _refuse_time(app: App, data: PostInput, prepared: Prepared) -> None:
    """A new post's explicit time, checked as ``post schedule --at`` checks it: every reason
    on its own line, named by where the time was given (``--at``, the file and row of an
    import, the console's field)."""
    if prepared.scheduled_at is None:
        return
    reasons = time_refusals(
        app, channels=prepared.fields["channels"], when=prepared.scheduled_at, post_id=None
    )
    if reasons:
        place = data.place("at", "--at")
        raise InvalidInput("\n".join(f"{place}: {reason}" for reason in reasons))


def _move_waiting(app: App, actor: str, post_id: int, *, now: datetime) -> dict[str, datetime]:
    """Move the post's waiting deliveries to its (new) time; each channel's new due time."""
    post = get_post(app, post_id)
    result: dict[str, datetime] = {}
    waiting = [
        d for d in app.store.deliveries.for_post(post_id) if d.state in ("pending", "queued")
    ]
    if waiting:
        # held deliveries of a channel an edit dropped move too (the next approval cancels
        # them, or queues them if the channel is added back)
        due = _due_times(app, post, now, channels=[d.channel for d in waiting])
        for delivery in waiting:
            app.store.deliveries.reschedule(
                delivery=delivery, due=due[delivery.channel], now=now, actor=actor
            )
            result[delivery.channel] = due[delivery.channel]
    return result


def _schedule_one(
    app: App, actor: str, post_id: int, *, when: datetime | None, next_slot: bool, now: datetime
) -> dict[str, datetime]:
    """The schedule step inside the caller's transaction."""
    post = get_post(app, post_id)
    roles = app.roles(actor)
    if post.author != actor and not roles & {"reviewer", "admin", "operator"}:
        raise NotAllowed(
            f"post {post_id} was written by {post.author}; only its author, a reviewer or an"
            " operator schedules it"
        )
    if post.state == "cancelled":
        raise NotAllowed(f"post {post_id} is cancelled; it cannot be scheduled")
    if when is not None:
        # an explicit time keeps each channel's blackout windows and min gap (the
        # console's calendar drag uses this same rule); every refusal is listed
        reasons = time_refusals(app, channels=post.channels, when=when, post_id=post_id)
        if reasons:
            raise InvalidInput("\n".join(f"post {post_id} {reason}" for reason in reasons))
    app.store.posts.set_schedule(post_id, scheduled_at=when, next_slot=next_slot, now=now)
    result = _move_waiting(app, actor, post_id, now=now)
    app.store.audit.append(
        at=to_db(now),
        actor=actor,
        action="post.scheduled",
        post_id=post_id,
        detail={
            "at": to_db(when) if when else None,
            "next_slot": next_slot,
            "deliveries": {k: to_db(v) for k, v in result.items()},
        },
    )
    return result


def cancel(app: App, actor: str, post_id: int, *, now: datetime) -> int:
    """Withdraw a post; its deliveries that have not started sending are cancelled."""
    with app.store.transaction():
        return _cancel_one(app, actor, post_id, now=now)


def cancel_many(app: App, actor: str, ids: list[int], *, now: datetime) -> None:
    """Withdraw several posts, all or none; every refusal is listed."""

    def step(post_id: int) -> None:
        _cancel_one(app, actor, post_id, now=now)

    _batch(app, ids, step)


def _cancel_one(app: App, actor: str, post_id: int, *, now: datetime) -> int:
    """The cancel step inside the caller's transaction."""
    post = get_post(app, post_id)
    roles = app.roles(actor)
    if post.author != actor and not roles & {"operator", "admin"}:
        raise NotAllowed(
            f"post {post_id} was written by {post.author}; only its author or an operator"
            " cancels it"
        )
    if post.state == "cancelled":
        raise NotAllowed(f"post {post_id} is already cancelled")
    # cancelling cannot take back what is live: that is a retraction (docs/delivery.md §14)
    live = [
        d.channel
        for d in app.store.deliveries.for_post(post_id)
        if d.state == "published" or d.kind == "retract"
    ]
    if live:
        raise NotAllowed(
            f"post {post_id} is already published on {', '.join(live)}; cancelling cannot"
            f" take it back: run `kepubot post retract {post_id} --reason 原因`"
        )
    busy = [
        d
        for d in app.store.deliveries.for_post(post_id)
        if d.state in ("sending", "processing", "unknown", "needs_attention")
    ]
    if busy:
        names = ", ".join(f"{d.channel} ({d.state})" for d in busy)
        raise NotAllowed(
            f"post {post_id} is being sent on {names}; wait until that settles, then cancel"
        )
    # an assisted task nobody has confirmed is cancelled too (docs/delivery.md §17.1)
    count = app.store.deliveries.cancel_for_post(
        post_id=post_id, now=now, actor=actor, awaiting_person=True
    )
    app.store.posts.mark_cancelled(post_id, now=now)
    app.store.audit.append(
        at=to_db(now),
        actor=actor,
        action="post.cancelled",
        post_id=post_id,
        detail={"from": post.state, "deliveries_cancelled": count},
    )
    # a cancelled post has nothing left to hold back: its pause is lifted, audited like every
    # other state the cancel changes (each delivery's ``delivery.cancelled``), so the trail
    # says when and why it stopped showing 已暂停 (docs/delivery.md §18)
    app.store.post_pauses.remove(post_id=post_id, actor=actor, now=now, cause="cancelled")
    return count


def _notify_urls(user: str, urls: list[Any]) -> list[str]:
    """A reviewer's notify URLs whose ${ENV} is set; a missing one is logged and skipped (a
    notification never fails the workflow)."""
    import logging

    from kepubot.config import EnvSecret

    usable = []
    for url in urls:
        if isinstance(url, EnvSecret) and not url.is_set():
            logging.getLogger("kepubot.services.posts").warning(
                "users.%s.notify: environment variable %s is not set; not notified there",
                user,
                url.env_name,
            )
            continue
        usable.append(url.get_secret_value())
    return usable


def notify_reviewers(app: App, ids: list[int]) -> None:
    """With ``[alerts] notify_reviewers``, tell each reviewer who may act on a post that it
    awaits them (through their ``notify`` URLs). Never blocks the workflow for long and never
    fails it: a destination that does not answer is logged."""
    if not app.config.data.alerts.notify_reviewers:
        return
    from kepubot.alerts import notify

    levels = app.config.review_levels
    for post_id in dict.fromkeys(ids):
        post = get_post(app, post_id)
        if post.state != "in_review":
            continue
        approved_by = app.store.posts.approvers(post_id, post.review_round)
        role = app.config.level_role(post.review_level)
        level_name = levels[post.review_level - 1]
        for name, user in app.config.data.users.items():
            if not user.notify or name == post.author:
                continue
            if not set(user.roles) & {role, "admin"}:
                continue
            if name in approved_by and approved_by[name] != post.review_level:
                continue
            urls = _notify_urls(name, user.notify)
            if not urls:
                continue
            notify(
                urls,
                f"待审核：{post.title}",
                f"稿件 {post.id}《{post.title}》（作者 {post.author}）等待{level_name}。"
                f"\nkepubot post show {post.id}",
            )
