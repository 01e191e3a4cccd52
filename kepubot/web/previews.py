"""The channel previews as the console shows them (docs/operations.md §12): what each channel
would send (``kepubot.preview``), arranged the way its readers will see it.

Nothing here decides anything: the text, the HTML, the media and the problems are the
service layer's; this module only adds what a page needs to draw them (media URLs and
original file names, the caption's topics, each problem placed next to the part it
concerns, extra fields under their Chinese names).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import g, url_for

from kepubot.models import Media, Post

# which problem fields belong to which part of each kind of preview; a problem about any other
# field is shown under the whole card
PART_FIELDS: dict[str, dict[str, frozenset[str]]] = {
    "status": {
        "text": frozenset({"text", "title", "summary", "tags", "body"}),
        "link": frozenset({"link"}),
        "media": frozenset({"image", "cover", "video"}),
    },
    "article": {
        "title": frozenset({"title"}),
        "author": frozenset({"author"}),
        "digest": frozenset({"digest", "summary"}),
        "cover": frozenset({"cover", "image"}),
        "body": frozenset({"body", "content", "text"}),
        "link": frozenset({"link"}),
    },
    "video": {
        "media": frozenset({"video", "cover", "image"}),
        "caption": frozenset({"text", "title", "tags", "summary", "body"}),
        "link": frozenset({"link"}),
    },
    "feed-item": {
        "title": frozenset({"title"}),
        "summary": frozenset({"summary", "text"}),
        "body": frozenset({"body", "content"}),
        "link": frozenset({"link"}),
        "media": frozenset({"image", "cover", "video"}),
    },
    "message": {
        "message": frozenset({"text", "title", "summary", "body", "tags"}),
        "link": frozenset({"link"}),
    },
}

# the platforms' own field names, as editors read them
EXTRA_LABELS: dict[str, tuple[str, str]] = {
    "digest": ("摘要", "Digest"),
    "author": ("作者", "Author"),
    "content_source_url": ("阅读原文链接", "Read-more link"),
    "thumb": ("封面", "Cover"),
    "cover_tsp": ("封面取自视频第几秒", "Cover frame (seconds)"),
    "tags": ("标签", "Tags"),
    "tag": ("标签", "Tags"),
    "tid": ("分区编号", "Category id"),
    "copyright": ("版权类型", "Copyright"),
    "source": ("转载来源", "Source"),
    "no_reprint": ("禁止转载", "No reprint"),
}
# extra fields a preview already draws in its frame (not repeated in "other settings")
DRAWN = frozenset({"digest", "author", "content_source_url", "thumb", "message", "tags"})
TOPIC = re.compile(r"(#[^#\s]+#?)")


def shown(items: list[dict[str, Any]], post: Post | None) -> list[dict[str, Any]]:
    """Preview items with what the page draws added (see the module's docstring)."""
    from kepubot.web.forms import clean_html

    media = {m.path: m for m in (post.media if post else [])}
    lang = g.get("lang", "zh")
    out = []
    for item in items:
        rendered = dict(item["rendered"])
        kind = rendered.get("kind", "")
        paths = list(rendered.get("media") or [])
        rendered["media_names"] = [_name(media, p) for p in paths]
        rendered["html_safe"] = clean_html(rendered["html"]) if rendered.get("html") else None
        extra = rendered.get("extra") or {}
        rendered["extra_shown"] = {
            _label(key, lang): _value(key, value, media)
            for key, value in extra.items()
            if key not in DRAWN
            and isinstance(value, str | int | float)
            and not isinstance(value, bool)
            and value != ""
        }
        images = [_file(media, p) for p in paths if _kind(media, p) in ("image", "cover", "")]
        rendered["images"] = [i for i in images if i["url"]]
        cover = None
        if kind == "article":
            thumb = extra.get("thumb")
            cover = _file(media, thumb) if thumb else None
        elif kind == "video":
            chosen = (post.cover if post else None) or next(
                (m for m in (post.images if post else [])), None
            )
            cover = _file(media, chosen.path) if chosen else None
            video = next((p for p in paths if _kind(media, p) == "video"), None)
            rendered["video_name"] = _name(media, video) if video else ""
        rendered["cover"] = cover
        rendered["caption_parts"] = [
            (part, bool(TOPIC.fullmatch(part))) for part in TOPIC.split(rendered.get("text") or "")
        ]
        tags = extra.get("tags")
        rendered["tag_list"] = list(tags) if isinstance(tags, list) else []
        message = extra.get("message")
        rendered["message_json"] = (
            json.dumps(message, ensure_ascii=False, indent=2) if message is not None else ""
        )
        if kind == "json":
            rendered["request_json"] = json.dumps(extra, ensure_ascii=False, indent=2)
        parts = PART_FIELDS.get(kind, {})
        at: dict[str, list[str]] = {name: [] for name in parts}
        rest: list[str] = []
        pairs = item.get("problem_fields") or [["", p] for p in item.get("problems", [])]
        for field, message_text in pairs:
            place = next((name for name, fields in parts.items() if field in fields), None)
            (at[place] if place else rest).append(message_text)
        out.append({**item, "rendered": rendered, "problems_at": at, "problems_rest": rest})
    return out


def _label(key: str, lang: str) -> str:
    pair = EXTRA_LABELS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]


def _value(key: str, value: Any, media: dict[str, Media]) -> Any:
    if key == "thumb" and isinstance(value, str):
        return _name(media, value)
    if key == "no_reprint":
        return ("Yes" if value else "No") if g.get("lang") == "en" else ("是" if value else "否")
    return value


def _kind(media: dict[str, Media], path: str) -> str:
    found = media.get(path)
    return found.kind if found else ""


def _name(media: dict[str, Media], path: str) -> str:
    """A stored file by its original name (the store's path is a hash)."""
    found = media.get(path)
    return found.name if found else path.rsplit("/", 1)[-1]


def _file(media: dict[str, Media], path: str) -> dict[str, str]:
    found = media.get(path)
    return {
        "url": url_for("media", relative=path) if found and found.kind != "video" else "",
        "name": _name(media, path),
        "alt": (found.alt or found.name) if found else path,
    }


# the fields a channel's own version may set on the compose page (import also takes "link")
VARIANT_KEYS = ("title", "summary", "body")


def variants_from_form(
    form: Any, saved: dict[str, dict[str, str]] | None
) -> dict[str, dict[str, str]] | None:
    """The per-channel versions the compose page sent (fields ``variant_<key>:<channel>``
    next to each channel's preview), or None when the page had no such fields. A channel
    whose fields were not on the page (not targeted at the moment) keeps its saved version;
    a channel whose fields are all empty has none. The service layer validates the result."""
    if not form.get("variants_field"):
        return None
    shown: dict[str, dict[str, str]] = {}
    for name in form.getlist("variant_channels"):
        shown[name] = {}
    for key in form:
        prefix, _, channel = key.partition(":")
        if not prefix.startswith("variant_") or not channel:
            continue
        field = prefix.removeprefix("variant_")
        if field not in VARIANT_KEYS:
            continue
        shown.setdefault(channel, {})
        value = form.get(key, "")
        if value.strip():
            shown[channel][field] = value
    result = {k: dict(v) for k, v in (saved or {}).items() if k not in shown}
    for channel, fields in shown.items():
        kept = {k: v for k, v in (saved or {}).get(channel, {}).items() if k not in VARIANT_KEYS}
        if fields or kept:
            result[channel] = {**kept, **fields}
    return result
