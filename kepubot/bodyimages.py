"""Images a post's body shows by name (docs/architecture.md §15.2).

A body places an attached image with a Markdown reference to its file name,
``![alt](handwashing.png)``; the channels resolve the name against the post's media (WeChat
uploads it into the article, feeds link the stored file). A name nothing is attached under
would be a broken picture on every platform, so it is a problem before submit, listed by the
same check that the preview and the submit use."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

# ![alt](src) and ![alt](<src> "title"); an HTML <img src="..."> too (Markdown allows it)
_MARKDOWN_IMAGE = re.compile(r"!\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+[\"'][^\"'\n]*[\"'])?\s*\)")
_HTML_IMAGE = re.compile(r"<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.I)
# an address, not a file of the post (external images are the channel's concern)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.I)


def referenced_images(body: str) -> list[str]:
    """The local image names ``body`` shows, in order, each once."""
    found = [m.group(1) for m in _MARKDOWN_IMAGE.finditer(body or "")]
    found += [m.group(1) for m in _HTML_IMAGE.finditer(body or "")]
    return list(dict.fromkeys(src for src in found if not _EXTERNAL.match(src)))


def attached_names(media: Iterable[object]) -> set[str]:
    """The names a body may use for ``media`` (records or dicts): each file's own name and
    its store name."""
    names: set[str] = set()
    for item in media:
        get = item.get if isinstance(item, dict) else lambda key, i=item: getattr(i, key, None)
        for key in ("name", "path"):
            value = get(key)
            if isinstance(value, str) and value:
                names.add(value)
                names.add(PurePosixPath(value).name)
    return names


def missing_images(body: str, names: set[str]) -> list[str]:
    """The names ``body`` shows that are not among ``names``."""
    return [
        src
        for src in referenced_images(body)
        if src not in names and PurePosixPath(src).name not in names
    ]


def missing_image_problems(body: str, names: set[str], where: str = "body") -> list[str]:
    """One readable line per image the body shows but the post does not attach."""
    return [
        f"{where} shows image '{src}', which is not attached to the post: attach a file of"
        " that name, or remove the reference"
        for src in missing_images(body, names)
    ]
