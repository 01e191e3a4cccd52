"""RSS 2.0 / Atom 1.0 / JSON Feed 1.1 files (docs/platforms.md §5).

The feed channel writes files into ``output_dir`` (a web server publishes them) and may ping
a WebSub hub, which is why it is an HTTP channel. Rewriting the files is harmless, so the
channel is idempotent: an unknown outcome is simply redone.

What the feeds hold lives in a small state file next to them (``.kepubot-feed.json``): the
newest ``max_items`` items, each with a stable id built from the post id. Publishing replaces
the item of the same post (keeping its first publication time) or adds it, then rewrites every
configured format. Every file is written to a temporary file in the same folder, flushed to
disk and renamed over the old one, so readers never see a half-written feed. Images are copied
next to the feeds (``media/<content-addressed name>``) and listed as enclosures.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from kepubot.channels.base import (
    Capabilities,
    HttpChannel,
    HttpChannelSettings,
    Published,
    Rendered,
    Retracted,
    display_name,
    markdown_to_html,
)
from kepubot.errors import ChannelError, Permanent, Transient
from kepubot.models import Delivery, Media, Post
from kepubot.sources import html_list

FeedFormat = Literal["rss", "atom", "json"]
_URL = re.compile(r"^https?://[^\s/]+")
# A BCP 47-like tag: "zh-CN", "en", "zh-Hans-CN".
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _all_formats() -> list[FeedFormat]:
    return ["rss", "atom", "json"]


def _http_url(name: str, value: str) -> str:
    value = value.strip()
    if not _URL.match(value):
        raise ValueError(f"{name} {value!r} must be an http(s) URL")
    return value


class FeedSettings(HttpChannelSettings):
    output_dir: str = Field(min_length=1)
    # The site the items link to; feed ids and self links are built from it.
    site_url: str
    title: str = Field(min_length=1)
    description: str = ""
    language: str = "zh-CN"
    formats: list[FeedFormat] = Field(default_factory=_all_formats, min_length=1)
    max_items: int = Field(50, ge=1)
    websub_hub: str | None = None
    # Public URL of the folder holding the feed files (self links, WebSub); default
    # f"{site_url}/feeds".
    feed_url: str | None = None
    # Public URL of the copied media (``output_dir/media``); default f"{feed_url}/media".
    media_url: str | None = None

    @field_validator("site_url")
    @classmethod
    def _site(cls, value: str) -> str:
        return _http_url("site_url", value).rstrip("/")

    @field_validator("feed_url")
    @classmethod
    def _feed_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url("feed_url", value).rstrip("/")

    @field_validator("media_url")
    @classmethod
    def _media_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url("media_url", value).rstrip("/")

    @property
    def public_feed_url(self) -> str:
        return self.feed_url or f"{self.site_url}/feeds"

    @property
    def public_media_url(self) -> str:
        return self.media_url or f"{self.public_feed_url}/media"

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str | None) -> str | None:
        return None if value is None else _http_url("websub_hub", value)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("title must not be empty (RSS, Atom and JSON Feed all require one)")
        return value.strip()

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _LANGUAGE.match(value):
            raise ValueError(f"language {value!r} must be a language tag such as 'zh-CN'")
        return value

    @field_validator("formats")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("formats must not repeat a format")
        return value


# --- files -----------------------------------------------------------------------------------

STATE_FILE = ".kepubot-feed.json"
LOCK_FILE = ".kepubot-feed.lock"
MEDIA_DIR = "media"
FILE_NAMES: dict[str, str] = {"rss": "feed.xml", "atom": "atom.xml", "json": "feed.json"}
_MIME: dict[str, str] = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
DC_NS = "http://purl.org/dc/elements/1.1/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "kepubot"

# Characters XML 1.0 does not allow at all; a stray one would make the whole feed unreadable.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")

# One lock per output folder inside this process (the daemon runs workers in threads), plus an
# advisory file lock across processes where the platform has one.
_FOLDER_LOCKS: dict[str, threading.Lock] = {}
_FOLDER_LOCKS_GUARD = threading.Lock()


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    with _FOLDER_LOCKS_GUARD:
        lock = _FOLDER_LOCKS.setdefault(str(folder), threading.Lock())
    with lock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the thread lock is all we have
            yield
            return
        with open(folder / LOCK_FILE, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``target``, fsync it, then rename it over ``target``.

    The new file keeps the mode of the file it replaces (a web server must still read it);
    a new file gets 0644 rather than the 0600 of temp files.
    """
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_folder(target.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def _text_as_html(text: str) -> str:
    """Plain text as HTML that shows exactly that text: for RSS 2.0 elements that readers
    take as (entity-encoded) HTML. ElementTree then escapes it once more for XML, so a reader
    decoding the XML gets ``&lt;script&gt;`` — text, never markup."""
    return html.escape(text, quote=False)


def _iso(dt: datetime) -> str:
    """RFC 3339 in UTC, whole seconds: ``2024-05-01T08:30:00Z``."""
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _rfc822(text: str) -> str:
    return format_datetime(_parse_iso(text).astimezone(UTC), usegmt=True)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrib.items()})
    if text is not None:
        element.text = _clean(text)
    return element


def _xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


# --- the channel ----------------------------------------------------------------------------


class FeedChannel(HttpChannel):
    channel_type = "feed"
    Settings = FeedSettings
    settings: FeedSettings
    capabilities = Capabilities(idempotent=True, verify=True, retract=True)

    # check() is the base one: every feed format accepts any item that has a title.

    def render(self, post: Post) -> Rendered:
        post = post.for_channel(self.name)
        return Rendered(
            channel=self.name,
            kind="feed-item",
            title=post.title,
            text=post.summary,
            html=markdown_to_html(post.body) + html_list(post.sources),
            link=post.link,
            media=[m.path for m in post.media],
            extra={"tags": list(post.tags)},
        )

    # --- where things are ---------------------------------------------------------------------

    def _base_dir(self) -> Path:
        """Relative paths in the config are relative to the config file's folder."""
        config = getattr(self.context, "config", None)
        base = getattr(config, "base_dir", None)
        return Path(base) if base is not None else Path.cwd()

    @property
    def output_path(self) -> Path:
        path = Path(self.settings.output_dir).expanduser()
        return path if path.is_absolute() else self._base_dir() / path

    def item_id(self, post: Post) -> str:
        return f"{self.settings.site_url.rstrip('/')}/kepubot/posts/{post.id}"

    def file_url(self, fmt: str) -> str:
        return f"{self.settings.public_feed_url}/{FILE_NAMES[fmt]}"

    def _now(self) -> datetime:
        now = self.context.now() if self.context is not None else datetime.now(UTC)
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    # --- publishing ---------------------------------------------------------------------------

    def publish(self, post: Post, progress: dict[str, Any]) -> Published:
        post = post.for_channel(self.name)
        folder = self.output_path
        now = _iso(self._now())
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with _folder_lock(folder):
                item = self._item(post, folder)
                items = self._public_authors(self._load_items(folder))
                item = self._merge(item, items, now)
                items = [old for old in items if old["id"] != item["id"]] + [item]
                items.sort(key=lambda i: (i["published"], i.get("post_id", 0)), reverse=True)
                items = items[: self.settings.max_items]
                self._write_all(folder, items)
        except ChannelError:
            raise
        except OSError as exc:
            raise Transient(
                f"feed: cannot write the feed files in {folder}: {exc.strerror or exc};"
                " check that the folder exists and is writable"
            ) from None
        if self.settings.websub_hub:
            self._ping_hub(self.settings.websub_hub)
        return Published(
            remote_id=item["id"], remote_url=item["url"], published_at=_parse_iso(item["published"])
        )

    # --- retraction (docs/delivery.md §14) ----------------------------------------------------

    def retract(self, delivery: Delivery, post: Post, progress: dict[str, Any]) -> Retracted:
        """The item leaves every feed format at once (one rewrite of all files); removing an
        item that is already gone is harmless, so a redo is always safe (idempotent)."""
        folder = self.output_path
        item_id = delivery.remote_id or self.item_id(post)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with _folder_lock(folder):
                items = self._public_authors(self._load_items(folder))
                kept = [i for i in items if i["id"] != item_id]
                gone = len(kept) == len(items)
                if not gone:
                    self._write_all(folder, kept)
        except ChannelError:
            raise
        except OSError as exc:
            raise Transient(
                f"feed: cannot write the feed files in {folder}: {exc.strerror or exc};"
                " check that the folder exists and is writable"
            ) from None
        if not gone and self.settings.websub_hub:
            self._ping_hub(self.settings.websub_hub)
        return Retracted(how="already_gone" if gone else "removed")

    def _item(self, post: Post, folder: Path) -> dict[str, Any]:
        """The feed item of ``post`` (without times), copying its images next to the feeds."""
        pictures = [m for m in (post.cover, *post.images) if m is not None]
        return {
            "id": self.item_id(post),
            "post_id": post.id,
            "title": _clean(post.title),
            "url": _clean(post.link) or self.settings.site_url,
            "summary": _clean(post.summary),
            # the sources as a linked 参考资料 list, in all three formats (docs/architecture.md §14)
            "content_html": _clean(
                self._correction_note(post) + markdown_to_html(post.body) + html_list(post.sources)
            ),
            "tags": list(dict.fromkeys(_clean(t) for t in post.tags if t.strip())),
            "author": _clean(self._author(post.author)),
            "enclosures": [self._copy_media(m, folder) for m in pictures],
        }

    def _correction_note(self, post: Post) -> str:
        """A correction links the item it corrects (docs/delivery.md §15)."""
        corrects = post.corrects
        if not corrects:
            return ""
        url = (corrects.get("urls") or {}).get(self.name) or corrects.get("link") or ""
        title = html.escape(str(corrects.get("title") or ""))
        if not url:
            return f"<p>更正：本文更正此前发布的《{title}》。</p>"
        href = html.escape(url, quote=True)
        return f'<p>更正：本文更正此前发布的<a href="{href}">《{title}》</a>。</p>'

    def _author(self, login: str) -> str:
        """The byline: the user's configured display name (``[users.LOGIN] name``), else the
        feed's own title (the organisation). Never the login name (issue 11)."""
        return display_name(self.context, login) or self.settings.title

    def _public_authors(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Items written before bylines used display names carry the login: replace it."""
        config = getattr(self.context, "config", None)
        users = getattr(getattr(config, "data", None), "users", None)
        if not isinstance(users, dict):
            return items
        return [
            {**i, "author": self._author(i["author"])} if i.get("author") in users else i
            for i in items
        ]

    def _copy_media(self, media: Media, folder: Path) -> dict[str, Any]:
        name = Path(media.path).name
        target = folder / MEDIA_DIR / name
        if not target.is_file():  # content-addressed: an existing file is the same file
            if media.file:
                source = Path(media.file)
            elif self.context is not None:
                source = Path(self.context.media_file(media.path))
            else:
                raise Permanent("feed: no media store available to copy images from")
            if not source.is_file():
                raise Permanent(
                    f"feed: media file {media.name!r} ({media.path}) is missing from the media"
                    " store; restore it or remove it from the post"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            with source.open("rb") as handle:
                write_atomically(target, handle.read())
        return {
            "url": f"{self.settings.public_media_url}/{name}",
            "type": media.mime,
            "length": target.stat().st_size,
            "title": media.alt or media.name,
        }

    def _load_items(self, folder: Path) -> list[dict[str, Any]]:
        path = folder / STATE_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (ValueError, UnicodeDecodeError) as exc:
            raise Permanent(
                f"feed: state file {path} is damaged ({exc}); restore it from a backup or delete"
                " it to start the feed afresh"
            ) from None
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise Permanent(
                f"feed: state file {path} has no 'items' list; restore it or delete it to start"
                " the feed afresh"
            )
        return [i for i in items if isinstance(i, dict) and "id" in i and "published" in i]

    @staticmethod
    def _merge(item: dict[str, Any], items: list[dict[str, Any]], now: str) -> dict[str, Any]:
        """Times of ``item``: a redo keeps the first publication time, and ``updated`` moves
        only when what readers see changed."""
        old = next((i for i in items if i["id"] == item["id"]), None)
        if old is None:
            return {**item, "published": now, "updated": now}
        unchanged = all(old.get(k) == v for k, v in item.items())
        return {
            **item,
            "published": old["published"],
            "updated": old.get("updated", old["published"]) if unchanged else now,
        }

    def _write_all(self, folder: Path, items: list[dict[str, Any]]) -> None:
        state = {"version": 1, "channel": self.name, "items": items}
        state_bytes = json.dumps(state, ensure_ascii=False, indent=2).encode("utf-8")
        write_atomically(folder / STATE_FILE, state_bytes + b"\n")
        builders = {"rss": self.rss, "atom": self.atom, "json": self.json_feed}
        for fmt in self.settings.formats:
            write_atomically(folder / FILE_NAMES[fmt], builders[fmt](items))

    def _ping_hub(self, hub: str) -> None:
        """Tell the WebSub hub every written feed changed. The feeds are already written, so a
        failing hub is worth a warning, never a failed delivery."""
        for fmt in self.settings.formats:
            url = self.file_url(fmt)
            try:
                response = self.request(
                    "POST",
                    hub,
                    what="WebSub ping",
                    data={"hub.mode": "publish", "hub.url": url},
                )
            except ChannelError as exc:
                self.log.warning("WebSub ping of %s for %s failed: %s", hub, url, exc)
                continue
            if response.status_code >= 300:
                self.log.warning(
                    "WebSub hub %s refused the ping for %s: HTTP %s",
                    hub,
                    url,
                    response.status_code,
                )

    # --- the formats --------------------------------------------------------------------------

    def _updated(self, items: list[dict[str, Any]]) -> str:
        times = [i.get("updated", i["published"]) for i in items]
        return max(times, key=_parse_iso) if times else _iso(self._now())

    def rss(self, items: list[dict[str, Any]]) -> bytes:
        s = self.settings
        namespaces = {"xmlns:atom": ATOM_NS, "xmlns:content": CONTENT_NS, "xmlns:dc": DC_NS}
        root = ET.Element("rss", {"version": "2.0", **namespaces})
        channel = _sub(root, "channel")
        _sub(channel, "title", _text_as_html(s.title))
        _sub(channel, "link", s.site_url)
        # RSS 2.0 readers take <title> and <description> as HTML: plain text goes in escaped
        _sub(channel, "description", _text_as_html(s.description or s.title))
        _sub(channel, "language", s.language)
        _sub(channel, "lastBuildDate", _rfc822(self._updated(items)))
        _sub(channel, "generator", GENERATOR)
        _sub(channel, "atom:link", href=self.file_url("rss"), rel="self", type=_MIME["rss"])
        if s.websub_hub:
            _sub(channel, "atom:link", href=s.websub_hub, rel="hub")
        for item in items:
            entry = _sub(channel, "item")
            _sub(entry, "title", _text_as_html(item["title"]))
            _sub(entry, "link", item["url"])
            _sub(entry, "guid", item["id"], isPermaLink="false")
            _sub(entry, "pubDate", _rfc822(item["published"]))
            # the summary is plain text (escaped into HTML); the body is sanitised HTML
            description = (
                _text_as_html(item["summary"]) if item["summary"] else item["content_html"]
            )
            _sub(entry, "description", description)
            _sub(entry, "content:encoded", item["content_html"])
            if item.get("author"):
                _sub(entry, "dc:creator", item["author"])
            for tag in item.get("tags", []):
                _sub(entry, "category", tag)
            enclosures = item.get("enclosures", [])
            if enclosures:  # most readers take one enclosure per item
                first = enclosures[0]
                _sub(
                    entry,
                    "enclosure",
                    url=first["url"],
                    length=str(first["length"]),
                    type=first["type"],
                )
        return _xml_bytes(root)

    def atom(self, items: list[dict[str, Any]]) -> bytes:
        s = self.settings
        root = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": s.language})
        _sub(root, "id", self.file_url("atom"))
        _sub(root, "title", s.title)
        if s.description:
            _sub(root, "subtitle", s.description)
        _sub(root, "updated", self._updated(items))
        author = _sub(root, "author")
        _sub(author, "name", s.title)
        _sub(root, "link", rel="self", href=self.file_url("atom"), type=_MIME["atom"])
        _sub(root, "link", rel="alternate", href=s.site_url, type="text/html")
        if s.websub_hub:
            _sub(root, "link", rel="hub", href=s.websub_hub)
        _sub(root, "generator", GENERATOR)
        for item in items:
            entry = _sub(root, "entry")
            _sub(entry, "id", item["id"])
            _sub(entry, "title", item["title"])
            _sub(entry, "updated", item.get("updated", item["published"]))
            _sub(entry, "published", item["published"])
            _sub(entry, "link", rel="alternate", href=item["url"], type="text/html")
            if item.get("author"):
                _sub(_sub(entry, "author"), "name", item["author"])
            for tag in item.get("tags", []):
                _sub(entry, "category", term=tag)
            for enclosure in item.get("enclosures", []):
                _sub(
                    entry,
                    "link",
                    rel="enclosure",
                    href=enclosure["url"],
                    type=enclosure["type"],
                    length=str(enclosure["length"]),
                )
            if item["summary"]:
                _sub(entry, "summary", item["summary"])
            _sub(entry, "content", item["content_html"], type="html")
        return _xml_bytes(root)

    def json_feed(self, items: list[dict[str, Any]]) -> bytes:
        s = self.settings
        feed: dict[str, Any] = {
            "version": JSON_FEED_VERSION,
            "title": s.title,
            "home_page_url": s.site_url,
            "feed_url": self.file_url("json"),
            "language": s.language,
        }
        if s.description:
            feed["description"] = s.description
        if s.websub_hub:
            feed["hubs"] = [{"type": "WebSub", "url": s.websub_hub}]
        feed["items"] = [self._json_item(item) for item in items]
        return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")

    @staticmethod
    def _json_item(item: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": item["id"],
            "url": item["url"],
            "title": item["title"],
            "content_html": item["content_html"],
        }
        if item["summary"]:
            out["summary"] = item["summary"]
        enclosures = item.get("enclosures", [])
        if enclosures:
            out["image"] = enclosures[0]["url"]
        out["date_published"] = item["published"]
        out["date_modified"] = item.get("updated", item["published"])
        if item.get("author"):
            out["authors"] = [{"name": item["author"]}]
        if item.get("tags"):
            out["tags"] = list(item["tags"])
        if enclosures:
            out["attachments"] = [
                {
                    "url": e["url"],
                    "mime_type": e["type"],
                    "size_in_bytes": e["length"],
                    **({"title": e["title"]} if e.get("title") else {}),
                }
                for e in enclosures
            ]
        return out

    # --- checks -------------------------------------------------------------------------------

    def verify(self) -> str:
        """The feeds need no credentials: check that the output folder is (or can be) written."""
        folder = self.output_path
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            raise Permanent(f"feed: output_dir {folder} is not a folder; fix output_dir")
        if existing == folder:
            try:
                fd, probe = tempfile.mkstemp(prefix=".kepubot-probe.", dir=folder)
                os.close(fd)
                os.unlink(probe)
            except OSError as exc:
                raise Permanent(
                    f"feed: cannot write in {folder} ({exc.strerror or exc}); fix its permissions"
                ) from None
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise Permanent(
                f"feed: cannot create {folder}: {existing} is not writable; fix its permissions"
            )
        formats = ", ".join(FILE_NAMES[f] for f in self.settings.formats)
        hub = f"; WebSub hub {self.settings.websub_hub}" if self.settings.websub_hub else ""
        return f"writes {formats} to {folder}, published at {self.settings.public_feed_url}{hub}"
