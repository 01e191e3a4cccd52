"""Plumbing the open-platform video channels (Douyin, Bilibili, Kuaishou) share: finding the
media file, an upload in parts that resumes after a crash, the content checks and the
permission report (docs/platforms.md §4, §12, §13).

Each channel keeps its own steps, paths, field names, limits and progress keys (they are
stored in deliveries in flight: a rename would break resuming one after an upgrade); these
helpers take them as arguments.

An upload in parts checkpoints each part in the delivery's progress (``checkpoint``) as soon as
the platform took it, so a restarted attempt sends only the parts not recorded. A step the
platform refuses for good while uploading (e.g. an upload session it no longer knows [?])
forgets the session's keys and asks for a new attempt (``restart_upload_on_refusal``):
nothing was published with it, so a fresh upload is safe.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from kepubot.channels.base import HttpChannel, Permission, Problem, checkpoint, mask_secrets
from kepubot.errors import Permanent, Transient
from kepubot.models import Media

PART_UNIT = 1024 * 1024  # bytes per chunk_size_mb
DESCRIPTION_CHARS = 160  # of a platform's error text, in an error message


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_int(value: Any) -> int | None:
    """An integer from an answer's field (a number or a decimal string); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def one_line(text: str, secrets: list[str], limit: int = DESCRIPTION_CHARS) -> str:
    """A platform's error text for a message: secrets masked, one line, at most ``limit``
    characters (then "…")."""
    detail = " ".join(mask_secrets(text, secrets).split())
    return detail[:limit] + "…" if len(detail) > limit else detail


def topic(tag: str) -> str:
    """A tag as a topic: a topic ends at the first space, and a tag written as "#科普" must not
    become "##科普"."""
    return "".join(tag.strip().lstrip("#＃").split())


def media_path(channel: HttpChannel, media: Media, missing: str | None = None) -> str:
    """The media file of ``media`` in the media store; Permanent (``missing``, or a default
    message) when it is not there."""
    who = f"{channel.type_name()} {channel.name}"
    if channel.context is None:
        raise RuntimeError(f"{who}: no context to find media files in")
    path = channel.context.media_file(media.path)
    if not os.path.isfile(path):
        raise Permanent(
            missing
            or f"{who}: the file {media.path} is missing from the media store; add it to the"
            " post again"
        )
    return path


def forget_changed_video(progress: dict[str, Any], video: Media, keys: Iterable[str]) -> None:
    """The post's video changed since the checkpointed upload: that upload is of no use."""
    if progress.get("video_sha256") not in (None, video.sha256):
        for key in keys:
            progress.pop(key, None)


def never_sent(progress: dict[str, Any], needed: str, sent_at: str) -> bool:
    """Whether the delivery's own checkpoints prove the creating call was never sent
    (docs/proof-of-absence.md): it needs ``progress[needed]`` (the upload's id), checkpointed
    before it is sent, or ``progress[sent_at]`` is still null (it is set to null with the
    upload and stamped just before the call)."""
    if not progress.get(needed):
        return True
    return sent_at in progress and progress[sent_at] is None


def upload_parts(
    progress: dict[str, Any],
    key: str,
    path: str,
    chunk: int,
    send: Callable[[int, int, bytes], None],
    *,
    first: int = 1,
) -> int:
    """Send the file in parts of ``chunk`` bytes, numbered from ``first``: ``send(number,
    parts, content)`` for each part not yet in ``progress[key]``, which records each part
    once sent. Returns the number of parts."""
    parts = max(1, math.ceil(os.path.getsize(path) / chunk))
    done = {int(n) for n in progress.get(key) or []}
    with open(path, "rb") as file:
        for index in range(parts):
            number = first + index
            if number in done:
                continue
            file.seek(index * chunk)
            send(number, parts, file.read(chunk))
            done.add(number)
            checkpoint(progress, **{key: sorted(done)})
    return parts


@contextmanager
def restart_upload_on_refusal(progress: dict[str, Any], keys: Iterable[str]) -> Iterator[None]:
    """A Permanent refusal inside forgets the upload's ``keys`` and becomes Transient: the next
    attempt uploads the video again rather than failing for good."""
    try:
        yield
    except Permanent as exc:
        for key in keys:
            progress.pop(key, None)
        checkpoint(progress)
        raise Transient(f"{exc}; the next attempt uploads the video again") from None


def video_problems(
    video: Media | None, types: tuple[str, ...], max_bytes: int, required: str
) -> list[Problem]:
    """A video is required (``required``: what the person reads), of ``types``, at most
    ``max_bytes`` (4 GB on every platform)."""
    if video is None:
        return [Problem("video", "required", detail=required)]
    if video.mime not in types:
        return [Problem("video", "media_type", limit=", ".join(types), actual=video.mime)]
    if video.size > max_bytes:
        return [Problem("video", "media_size", limit="4 GB", actual=video.size)]
    return []


def cover_problems(
    cover: Media | None, max_bytes: int, who: str, types: tuple[str, ...]
) -> list[Problem]:
    """A cover is required: of ``types`` (JPEG or PNG), at most ``max_bytes``. (No readable
    page gives a smallest size in pixels; 1146x717 is only the recommended one [gk].)"""
    if cover is None:
        return [Problem("cover", "required", detail=f"{who}投稿需要封面，请添加 --cover")]
    if cover.mime not in types:
        return [Problem("cover", "media_type", limit=", ".join(types), actual=cover.mime)]
    if cover.size > max_bytes:
        limit = f"{max_bytes // (1024 * 1024)} MB"
        return [Problem("cover", "media_size", limit=limit, actual=cover.size)]
    return []


def granted_permissions(
    stored: str | None,
    needed: Iterable[tuple[str, frozenset[str], str]],
    unknown: str,
) -> list[Permission]:
    """Each needed permission (name, the granted names that count for it, what it is for)
    against ``stored``, the comma-separated scopes the platform last reported; ``unknown``
    says why none are known yet."""
    if stored is None:
        return [Permission(name, needed_for, None, unknown) for name, _, needed_for in needed]
    granted = {part.strip() for part in stored.split(",") if part.strip()}
    return [
        Permission(
            name,
            needed_for,
            bool(granted & accepted),
            "" if granted & accepted else f"granted: {', '.join(sorted(granted)) or 'none'}",
        )
        for name, accepted, needed_for in needed
    ]
