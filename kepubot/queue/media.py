"""The content-addressed media store.

Files are copied in when a post is created or edited, named by their SHA-256, so moving or
editing the source later cannot change what is published.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kepubot.errors import InvalidInput

IMAGE_TYPES = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "image/bmp": ".bmp",
}
VIDEO_TYPES = {"video/mp4": ".mp4", "video/quicktime": ".mov"}


def sniff(head: bytes) -> str | None:
    """The MIME type from the file's first bytes (extensions lie)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:2] == b"BM":
        return "image/bmp"
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    return None


# how ``MediaStore.add`` names a file: the first two hex digits of its sha256 as a folder
_STORED = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,5}")


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def file(self, relative: str) -> Path:
        return self.root / relative

    def stored(self, relative: str) -> Path | None:
        """The file behind a path ``add`` gave ("ab/<sha256>.<ext>"), or None for any other
        path (nothing outside the store) or a file that is not there."""
        if not _STORED.fullmatch(relative):
            return None
        path = self.file(relative)
        return path if path.is_file() else None

    def add(self, source: Path, kind: str, *, where: str, alt: str = "") -> dict[str, Any]:
        """Copy ``source`` in; returns the media record. ``where`` names the input for errors."""
        if not source.is_file():
            raise InvalidInput(f"{where} {source}: file not found; check the path")
        try:
            with source.open("rb") as handle:
                head = handle.read(16)
        except OSError as exc:
            raise InvalidInput(f"{where} {source}: cannot be read ({exc.strerror})") from None
        mime = sniff(head)
        allowed = VIDEO_TYPES if kind == "video" else IMAGE_TYPES
        if mime not in allowed:
            wanted = (
                "an MP4 or MOV video" if kind == "video" else "a PNG, JPEG, GIF, WebP or BMP image"
            )
            raise InvalidInput(f"{where} {source}: not {wanted}; pick another file")
        digest = hashlib.sha256()
        with source.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        sha = digest.hexdigest()
        relative = f"{sha[:2]}/{sha}{allowed[mime]}"
        target = self.root / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Copy to a temporary name and rename, so a crash never leaves a half file
            # under the final (content-addressed, hence trusted) name.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            os.close(fd)
            try:
                shutil.copyfile(source, tmp)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return {
            "kind": kind,
            "path": relative,
            "sha256": sha,
            "name": source.name,
            "size": target.stat().st_size,
            "mime": mime,
            "alt": alt,
        }
