"""What posts say about the media store (docs/architecture.md §17): the store paths they
reference (the media store's garbage collection, kepubot/files/media.py) and the console's
media page (docs/architecture.md §15.2).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any


def referenced_paths(conn: sqlite3.Connection) -> set[str]:
    """Every store path a post names (any state: a cancelled post keeps its media)."""
    # read in Python: JSON functions differ between SQLite and PostgreSQL
    rows = conn.execute("SELECT media FROM posts WHERE media != '[]'")
    found: set[str] = set()
    for row in rows:
        try:
            items = json.loads(row[0])
        except ValueError:
            continue
        for item in items if isinstance(items, list) else []:
            path = item.get("path") if isinstance(item, dict) else None
            if isinstance(path, str) and path:
                found.add(path)
    return found


#: how many of the newest posts with media the media page reads (a page, not a scan of 10⁵)
LIBRARY_POSTS = 2000


def library(
    conn: sqlite3.Connection, *, limit: int = 500, posts: int = LIBRARY_POSTS
) -> list[dict[str, Any]]:
    """The association's images (attached images and covers) of the newest ``posts`` posts
    that have media, newest first, each once with every one of those posts that attaches it:
    ``{path, name, size, mime, kind, posts: [{id, title, state, in_body}]}``. ``in_body``:
    the post's body shows it by name."""
    from kepubot.bodyimages import referenced_images

    # read in Python: JSON functions differ between SQLite and PostgreSQL
    rows = conn.execute(
        "SELECT id, title, state, body, media FROM posts WHERE media != '[]'"
        " ORDER BY id DESC LIMIT ?",
        (posts,),
    )
    found: dict[str, dict[str, Any]] = {}
    for row in rows:
        try:
            items = json.loads(row[4])
        except ValueError:
            continue
        shown = set(referenced_images(row[3] or ""))
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict) or item.get("kind") not in ("image", "cover"):
                continue
            path = item.get("path")
            if not isinstance(path, str) or not path:
                continue
            entry = found.get(path)
            if entry is None:
                if len(found) >= limit:
                    continue
                entry = found[path] = {
                    "path": path,
                    "name": str(item.get("name") or path),
                    "size": int(item.get("size") or 0),
                    "mime": str(item.get("mime") or ""),
                    "kind": item.get("kind"),
                    "posts": [],
                }
            name = str(item.get("name") or "")
            entry["posts"].append(
                {
                    "id": row[0],
                    "title": row[1],
                    "state": row[2],
                    "in_body": bool(name and name in shown) or path in shown,
                }
            )
    return list(found.values())
