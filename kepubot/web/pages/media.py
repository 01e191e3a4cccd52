"""Images: the upload a dropped or pasted image makes from the compose page, and the media
page listing the association's images with where each is used (docs/architecture.md §15.2)."""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request, url_for
from werkzeug.wrappers import Response

from kepubot.errors import InvalidInput
from kepubot.web.app import requires
from kepubot.web.labels import text
from kepubot.web.messages import translate

# names a browser gives a pasted picture; two of them in one body would be ambiguous
_GENERIC = re.compile(r"^(image|blob|clipboard|untitled|screenshot)?(\.\w+)?$", re.I)


def register(app: Flask) -> None:
    @app.post("/media/upload")
    @requires("editor")
    def media_upload() -> Response:
        """One image, checked by the media store (its type sniffed, decoded by Pillow) and
        copied in; the answer names the Markdown reference to put in the body."""
        item = request.files.get("file")
        if item is None or not item.filename:
            return _refused(InvalidInput("file: choose an image to upload"))
        original = Path((item.filename or "").replace("\\", "/")).name
        name = re.sub(r"[\x00-\x1f/()\[\]<>]", "_", original).strip().lstrip(".")[-100:]
        folder = Path(tempfile.mkdtemp(prefix="kepubot-upload-"))
        try:
            target = folder / "upload"
            item.save(target)
            limit = g.service.config.data.web.max_image_mb
            size = target.stat().st_size
            if size > limit * 1024 * 1024:
                return _refused(
                    InvalidInput(
                        text(
                            g.lang,
                            "file_too_large",
                            field=text(g.lang, "images"),
                            name=name or "upload",
                            size=f"{size / 1048576:.1f}",
                            limit=f"{limit:g}",
                        )
                    ),
                    413,
                )
            if _GENERIC.match(name or ""):
                digest = hashlib.sha256(target.read_bytes()).hexdigest()[:8]
                suffix = Path(name).suffix.lower() if name else ""
                name = f"pasted-{digest}{suffix or '.png'}"
            try:
                record = g.service.media.add(
                    target, "image", where=text(g.lang, "images"), shown=name, name=name
                )
            except InvalidInput as exc:
                return _refused(exc)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return jsonify(
            {
                "path": record["path"],
                "name": record["name"],
                "url": url_for("media", relative=record["path"]),
                "markdown": f"![{Path(record['name']).stem}]({record['name']})",
            }
        )

    @app.get("/media")
    @requires()
    def media_library() -> str:
        from kepubot.queue.media import LIBRARY_POSTS

        return render_template(
            "media.html", images=g.service.store.media.library(), library_posts=LIBRARY_POSTS
        )


def _refused(exc: InvalidInput, status: int = 400) -> Response:
    response = jsonify({"error": translate(str(exc), g.lang)})
    response.status_code = status
    return response
