"""What the console's pages share: form and query parsing, sanitized HTML, the compose
form as the service layer's PostInput, and the preview as pages show it."""

from __future__ import annotations

import re
import shutil
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from flask import g, request
from markupsafe import Markup
from werkzeug.datastructures import FileStorage
from werkzeug.routing import IntegerConverter

from kepubot.errors import InvalidInput
from kepubot.models import Post
from kepubot.queue import MAX_ROW_ID
from kepubot.web.labels import text

PAGE_SIZE = 50

# form fields the service layer's messages name (shown by their labels, not as CLI options)
_FORM_FIELDS = ("title", "body", "link", "channels", "at", "images", "video", "cover")


_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")')


def html_of(markdown_text: str, images: dict[str, str] | None = None) -> Markup:
    """The body as HTML (sanitized by nh3). ``images``: attached file name -> the address
    the console serves it at, so that ``![说明](handwashing.png)`` shows the attached
    picture rather than a broken one (docs/architecture.md §15.2)."""
    import html as htmllib
    from pathlib import PurePosixPath

    from kepubot.channels.base import markdown_to_html

    rendered = markdown_to_html(markdown_text)
    if images:

        def resolve(match: re.Match[str]) -> str:
            src = htmllib.unescape(match.group(2))
            found = images.get(src) or images.get(PurePosixPath(src).name)
            if found is None:
                return match.group(0)
            return match.group(1) + htmllib.escape(found) + match.group(3)

        rendered = _IMG_SRC.sub(resolve, rendered)
    return Markup(rendered)


def media_urls(media: Any, uploaded: list[str] | None = None) -> dict[str, str]:
    """Attached image name (and store name) -> its /media/ address; ``uploaded``: the compose
    form's "store path|name" entries of dropped images not yet saved."""
    from pathlib import PurePosixPath

    from flask import url_for

    found: dict[str, str] = {}
    for item in media or []:
        if getattr(item, "kind", None) == "video":
            continue
        address = url_for("media", relative=item.path)
        found.setdefault(item.name, address)
        found.setdefault(PurePosixPath(item.path).name, address)
    for entry in uploaded or []:
        relative, _, name = entry.partition("|")
        if name and g.service.media.stored(relative.strip()) is not None:
            found.setdefault(name, url_for("media", relative=relative.strip()))
    return found


def clean_html(html: str) -> Markup:
    from kepubot.channels.base import sanitize_html

    return Markup(sanitize_html(html))  # sanitized by nh3


def tags_of(raw: str) -> list[str]:
    return [t for t in re.split(r"[,，\s]+", raw or "") if t]


def day_arg(name: str) -> date | None:
    from kepubot.timeutil import parse_date

    raw = (request.args.get(name) or "").strip()
    return parse_date(raw, name) if raw else None


def local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=g.service.tz)


def when_text(form: Any) -> tuple[str | None, bool]:
    """The compose form's "when" choice as the service layer's (at, next_slot)."""
    choice = form.get("when", "now")
    if choice == "at":
        # <input type=datetime-local> sends 2026-12-01T08:30 in the configured zone
        return (form.get("at") or "").replace("T", " ").strip(), False
    if choice == "next":
        return None, True
    return None, False


class IdConverter(IntegerConverter):
    """A row id: an integer SQLite can hold (a longer number is a 404, not an overflow)."""

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, max=MAX_ROW_ID)


def page_number() -> int:
    raw = request.args.get("page", "")
    return min(int(raw), 1_000_000) if raw.isdigit() and int(raw) > 0 else 1


def preview_view(items: list[dict[str, Any]], post: Post | None) -> list[dict[str, Any]]:
    """Preview items as the pages draw them: HTML through the sanitizer, media by their
    original names, problems next to the part they concern (``kepubot.web.previews``)."""
    from kepubot.web.previews import shown

    return shown(items, post)


def post_input(form: Any, files: Any, *, new: bool) -> tuple[Any, Any]:
    """The compose form as the service layer's PostInput, uploads saved to a temporary
    folder (removed by the returned ``cleanup`` once the media store has copied them)."""
    from kepubot.services.posts import PostInput

    folder = Path(tempfile.mkdtemp(prefix="kepubot-upload-"))
    web = g.service.config.data.web
    file_names: dict[Path, str] = {}

    def cleanup() -> None:
        shutil.rmtree(folder, ignore_errors=True)

    def save(item: FileStorage, index: int, field: str, limit_mb: float) -> Path:
        # keep the original name (people recognise it in previews), minus anything that
        # could leave the folder: separators, control characters, a leading dot
        original = Path((item.filename or "").replace("\\", "/")).name
        name = re.sub(r"[\x00-\x1f/]", "_", original).strip().lstrip(".")[-100:] or "upload"
        target = folder / str(index) / name
        target.parent.mkdir()
        item.save(target)
        size = target.stat().st_size
        if size > limit_mb * 1024 * 1024:
            raise UploadTooLarge(
                text(
                    g.lang,
                    "file_too_large",
                    field=text(g.lang, field),
                    name=name,
                    size=f"{size / 1048576:.1f}",
                    limit=f"{limit_mb:g}",
                )
            )
        file_names[target] = name  # errors name the upload, never the temporary path
        return target

    count = 0

    def saved(field: str, limit_mb: float) -> list[Path]:
        nonlocal count
        paths = []
        for item in files.getlist(field):
            if item and item.filename:
                count += 1
                paths.append(save(item, count, field, limit_mb))
        return paths

    try:
        images = saved("images", web.max_image_mb)
        video = saved("video", web.max_video_mb)
        cover = saved("cover", web.max_image_mb)
    except BaseException:
        cleanup()
        raise
    # images dropped or pasted into the body, already uploaded to the media store by
    # /media/upload: "store path|file name" each (docs/architecture.md §15.2)
    added: list[Path] = []
    for entry in form.getlist("uploaded"):
        relative, _, name = entry.partition("|")
        stored = g.service.media.stored(relative.strip())
        if stored is None:
            cleanup()
            raise InvalidInput(
                f"{text(g.lang, 'images')} {name or relative}: the upload is gone; upload it again"
            )
        added.append(stored)
        file_names[stored] = re.sub(r"[\x00-\x1f/]", "_", name).strip()[-100:] or stored.name
    at, next_slot = when_text(form)
    body = form.get("body")
    # the repeatable sources field, "标题|https://…" each (docs/architecture.md §14); only a
    # form that has the field changes the sources
    sources: list[dict[str, str]] | None = None
    if form.get("sources_field"):
        from kepubot.sources import parse

        sources, shape = [], []
        for entry in (v for v in form.getlist("sources") if v.strip()):
            item, problem = parse(entry, text(g.lang, "sources"))
            if problem:
                shape.append(problem)
            elif item is not None:
                sources.append(item)
        if shape:
            cleanup()
            raise InvalidInput("\n".join(shape))
    data = PostInput(
        sources=sources,
        title=form.get("title", ""),
        body=body if body is not None else ("" if new else None),
        summary=form.get("summary", ""),
        link=form.get("link", ""),
        tags=tags_of(form.get("tags", "")),
        # new images replace the old ones; "remove images" with none chosen drops them
        images=images or ([] if not new and form.get("remove_images") else None),
        add_images=added or None,
        video=video[0] if video else None,
        cover=cover[0] if cover else None,
        channels=form.getlist("channels") if (new or form.get("channels_field")) else None,
        at=at,
        next_slot=next_slot,
        unschedule=not new and form.get("when", "now") == "now",
        where={field: text(g.lang, field) for field in _FORM_FIELDS},
        file_names=file_names,
    )
    return data, cleanup


class UploadTooLarge(InvalidInput):
    """An uploaded file is over its [web] limit (the message is already in the reader's
    language); the compose page shows it with status 413."""
