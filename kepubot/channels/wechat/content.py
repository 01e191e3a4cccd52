"""What a WeChat article may contain (docs/platforms.md §3.3-§3.4): limits, HTML the editor keeps.

The HTML uses inline styles only, because the editor strips ``<style>`` blocks, scripts and
classes. Local images become ``kepubot-media:PATH`` placeholders that publishing replaces with
the URLs ``media/uploadimg`` returns; external images are dropped (WeChat filters them anyway).
"""

from __future__ import annotations

import html as htmllib
import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from kepubot.channels.base import Problem, markdown_to_html, markdown_to_text
from kepubot.models import Media, Post

# draft/add limits [src: docs/platforms.md §3.4].
MAX_TITLE = 32
MAX_AUTHOR = 16
MAX_DIGEST = 128
MAX_CONTENT = 19_999  # "fewer than 20,000 characters"; the < 1 MB limit can never bind first
DIGEST_FALLBACK = 54  # what WeChat itself takes from the body when the digest is empty
# Permanent image material (the cover) and article images: bmp/png/jpeg/gif up to 10 MB.
# These limits are [gk] (general knowledge, not confirmed by a source; docs/platforms.md §3.3).
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/bmp")
MAX_IMAGE_BYTES = 10 * 1024 * 1024
# Images in the article body go through media/uploadimg, said to take jpg/png under 1 MB
# [gk]: refused at submit, where the editor can still fix it, rather than at publish time.
INLINE_IMAGE_TYPES = ("image/jpeg", "image/png")
MAX_INLINE_IMAGE_BYTES = 1024 * 1024

#: In rendered HTML a local image's src is this prefix plus its media-store path; publishing
#: uploads the file (media/uploadimg) and puts the returned mmbiz URL in its place.
MEDIA_PLACEHOLDER = "kepubot-media:"

#: Hosts whose links an article body may keep. Every other hyperlink is written out as text
#: ("文字（https://…）") by ``article_html``, so draft/add never sees an ``<a href>`` to an
#: outside domain, which the platform refuses with 45166 (unsupported content such as
#: hyperlink tags [src: docs/platforms.md §3.2, §3.4]; the sandbox refuses it the same way). The rule
#: is applied by construction rather than checked at submit: no body can produce such a link
#: (raw HTML in the Markdown is escaped). That links to WeChat's own articles are accepted is
#: [gk]; only https ones are kept.
LINK_HOSTS = ("mp.weixin.qq.com",)

_STYLES = {
    "p": "margin:0 0 1em;line-height:1.75;font-size:16px;color:#333;",
    "h1": "margin:1.2em 0 0.6em;font-size:20px;font-weight:bold;",
    "h2": "margin:1.2em 0 0.6em;font-size:18px;font-weight:bold;",
    "h3": "margin:1em 0 0.5em;font-size:17px;font-weight:bold;",
    "blockquote": "margin:1em 0;padding:0.5em 1em;border-left:3px solid #ccc;color:#666;",
    "pre": "padding:0.8em;background:#f6f6f6;font-size:14px;overflow-x:auto;",
    "ul": "margin:0 0 1em;padding-left:1.5em;",
    "ol": "margin:0 0 1em;padding-left:1.5em;",
    "li": "margin:0.3em 0;line-height:1.75;",
}
_IMG_STYLE = "max-width:100%;height:auto;display:block;margin:1em auto;"
_OPEN_TAG = re.compile(r"<(" + "|".join(_STYLES) + r")>")
_IMG = re.compile(r"<img\b([^>]*)>")
_LINK = re.compile(r"<a\b([^>]*)>(.*?)</a>", re.S)
_TAG = re.compile(r"<[^>]+>")
_ATTR = re.compile(r'(\w+)="([^"]*)"')


def _image_tag(path: str, alt: str) -> str:
    src = htmllib.escape(MEDIA_PLACEHOLDER + path)
    return f'<img src="{src}" alt="{htmllib.escape(alt)}" style="{_IMG_STYLE}">'


def placeholder(path: str) -> str:
    """The ``src`` value (HTML-escaped) standing for the media-store file ``path``."""
    return htmllib.escape(MEDIA_PLACEHOLDER + path)


def _link(match: re.Match[str]) -> str:
    attrs = {k: htmllib.unescape(v) for k, v in _ATTR.findall(match.group(1))}
    href = attrs.get("href", "")
    inner = match.group(2)
    host = (urlsplit(href).hostname or "").lower()
    if href.startswith("https://") and host in LINK_HOSTS:
        return f'<a href="{htmllib.escape(href)}">{inner}</a>'
    text = htmllib.unescape(_TAG.sub("", inner)).strip()
    if not href or href.startswith("mailto:") or text == href:
        return inner
    return f"{inner}（{htmllib.escape(href)}）"


def article_html(post: Post) -> tuple[str, list[str]]:
    """The article HTML and the media paths its placeholders refer to, in order."""
    by_name: dict[str, Media] = {}
    for item in post.media:
        if item.kind == "image":
            by_name.setdefault(item.path, item)
            by_name.setdefault(item.name, item)
    used: list[str] = []

    def replace_img(match: re.Match[str]) -> str:
        attrs = {k: htmllib.unescape(v) for k, v in _ATTR.findall(match.group(1))}
        src = attrs.get("src", "")
        item = by_name.get(src) or by_name.get(PurePosixPath(src).name)
        if item is None:
            # WeChat filters external images anyway, and an unknown local file cannot be
            # uploaded: show the alt text instead of a broken picture.
            alt = attrs.get("alt", "")
            return htmllib.escape(f"[{alt}]") if alt else ""
        used.append(item.path)
        return _image_tag(item.path, attrs.get("alt") or item.alt)

    html = _IMG.sub(replace_img, markdown_to_html(post.body))
    html = _LINK.sub(_link, html)
    # Attached images the body does not show would otherwise only ever serve as the cover.
    extra = [m for m in post.images if m.path not in used]
    if extra:
        html += "".join(f"<p>{_image_tag(m.path, m.alt)}</p>" for m in extra)
        used.extend(m.path for m in extra)
    if post.sources:
        from kepubot.sources import html_list

        # a 参考资料 section (docs/architecture.md §14); addresses as text, never <a>: WeChat
        # refuses hyperlinks to outside domains (45166)
        html += html_list(post.sources, links=False)
    html = _OPEN_TAG.sub(lambda m: f'<{m.group(1)} style="{_STYLES[m.group(1)]}">', html)
    return html.strip(), used


def body_text(post: Post) -> str:
    return " ".join(markdown_to_text(post.body).split())


def thumb(post: Post) -> Media | None:
    """thumb_media_id is mandatory for news articles: the cover, else the first image."""
    images = post.images
    return post.cover or (images[0] if images else None)


def digest(post: Post) -> str:
    return post.summary.strip() or body_text(post)[:DIGEST_FALLBACK]


def content_problems(post: Post, author: str) -> list[Problem]:
    """The draft API's limits and the media rules (``post`` already has its variant applied)."""
    problems = []
    for name, value, limit in (
        ("title", post.title, MAX_TITLE),
        ("author", author, MAX_AUTHOR),
        ("digest", digest(post), MAX_DIGEST),
    ):
        if len(value) > limit:
            problems.append(Problem(name, "too_long", limit=limit, actual=len(value)))
    html, _ = article_html(post)
    if len(html) > MAX_CONTENT:
        problems.append(Problem("content", "too_long", limit=MAX_CONTENT, actual=len(html)))
    if thumb(post) is None:
        problems.append(
            Problem("cover", "required", detail="公众号图文必须有封面，请添加 --cover 或 --image")
        )
    if post.cover:
        problems.extend(image_problems("cover", post.cover))
    for image in post.images:
        problems.extend(image_problems("image", image, INLINE_IMAGE_TYPES, MAX_INLINE_IMAGE_BYTES))
    return problems


def image_problems(
    field: str,
    item: Media,
    types: tuple[str, ...] = IMAGE_TYPES,
    max_bytes: int = MAX_IMAGE_BYTES,
) -> list[Problem]:
    problems = []
    if item.mime not in types:
        problems.append(Problem(field, "media_type", limit=", ".join(types), actual=item.mime))
    if item.size > max_bytes:
        problems.append(
            Problem(
                field,
                "media_size",
                limit=f"{max_bytes / 1048576:g} MB",
                actual=f"{item.size / 1048576:.1f} MB",
            )
        )
    return problems
