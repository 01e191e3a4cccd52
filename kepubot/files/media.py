"""The content-addressed media store.

Files are copied in when a post is created or edited, named by their SHA-256, so moving or
editing the source later cannot change what is published. Which store paths posts
reference, and the console's media page, are read by kepubot/queue/media.py
(``store.media``, docs/architecture.md §17).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepubot.errors import InvalidInput

if TYPE_CHECKING:
    from kepubot.queue.store import Store

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


# Pillow's format names for the image types we store ("MPO" is the JPEG of many cameras)
_PIL_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
}
# Decoding an image needs memory for every pixel; a small file can claim an enormous size (a
# "decompression bomb"). 40 megapixels holds a 7200 x 5400 photo and a 1080 x 30000 long image,
# and is checked from the header before anything is decoded.
MAX_IMAGE_PIXELS = 40_000_000


def check_image(path: Path, *, where: str) -> str:
    """Decode the image at ``path`` with Pillow; its MIME type, or InvalidInput naming
    ``where`` (never Pillow's own message, which carries the file's path)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    wanted = "a PNG, JPEG, GIF, WebP or BMP image"
    try:
        with warnings.catch_warnings():
            # our pixel limit is lower than Pillow's warning threshold; its check stays as a
            # backstop (DecompressionBombError above twice its limit)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # only these decoders are tried (JPEG's also answers "MPO")
            with Image.open(path, formats=["PNG", "JPEG", "GIF", "WEBP", "BMP"]) as image:
                mime = _PIL_FORMATS.get(image.format or "")
                if mime is None:
                    raise InvalidInput(f"{where}: not {wanted}; pick another file")
                width, height = image.size
                if width < 1 or height < 1:
                    raise InvalidInput(f"{where}: the image has no pixels ({width}x{height})")
                if width * height > MAX_IMAGE_PIXELS:
                    raise InvalidInput(
                        f"{where}: the image is {width}x{height} pixels, more than"
                        f" {MAX_IMAGE_PIXELS // 1_000_000} megapixels; scale it down"
                    )
                image.load()  # decodes every pixel of the (first) frame: a broken file fails
    except InvalidInput:
        raise
    except Image.DecompressionBombError:
        raise InvalidInput(
            f"{where}: the image claims more than {MAX_IMAGE_PIXELS // 1_000_000} megapixels;"
            " scale it down"
        ) from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{where}: not {wanted}; pick another file") from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError):
        # truncated or corrupt image data (Pillow raises these while decoding)
        raise InvalidInput(
            f"{where}: the image data is broken or cut short; export the image again"
        ) from None
    return mime


# how ``MediaStore.add`` names a file: the first two hex digits of its sha256 as a folder
_STORED = re.compile(r"[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]{1,5}")


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        # store paths this object copied in (not those already there): what a failed write
        # may take out again (see ``removed_on_failure``)
        self.created: list[str] = []

    def file(self, relative: str) -> Path:
        return self.root / relative

    def stored(self, relative: str) -> Path | None:
        """The file behind a path ``add`` gave ("ab/<sha256>.<ext>"), or None for any other
        path (nothing outside the store) or a file that is not there."""
        if not _STORED.fullmatch(relative):
            return None
        path = self.file(relative)
        return path if path.is_file() else None

    def add(
        self,
        source: Path,
        kind: str,
        *,
        where: str,
        alt: str = "",
        shown: str | None = None,
        name: str | None = None,
    ) -> dict[str, Any]:
        """Copy ``source`` in; returns the media record. ``where`` names the input for errors,
        ``shown`` the file (default: its path; the console gives the uploaded file's name,
        never its temporary path), ``name`` the original file name kept in the record."""
        label = shown or str(source)
        if not source.is_file():
            raise InvalidInput(f"{where} {label}: file not found; check the path")
        try:
            with source.open("rb") as handle:
                head = handle.read(16)
        except OSError as exc:
            raise InvalidInput(f"{where} {label}: cannot be read ({exc.strerror})") from None
        if kind == "video":
            mime = sniff(head)
            if mime not in VIDEO_TYPES:
                raise InvalidInput(f"{where} {label}: not an MP4 or MOV video; pick another file")
            allowed = VIDEO_TYPES
        else:
            mime = check_image(source, where=f"{where} {label}")
            allowed = IMAGE_TYPES
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
                self.created.append(relative)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        return {
            "kind": kind,
            "path": relative,
            "sha256": sha,
            "name": name or source.name,
            "size": target.stat().st_size,
            "mime": mime,
            "alt": alt,
        }


# --- what nothing references ----------------------------------------------------------------


def _remove(store: MediaStore, relative: str) -> None:
    path = store.file(relative)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    with contextlib.suppress(OSError):  # the two-hex-digit folder, once empty
        path.parent.rmdir()


@contextlib.contextmanager
def removed_on_failure(store: MediaStore, db: Store) -> Iterator[None]:
    """Run a write that copies media in; if it fails, take out again every file it copied in
    that no post references (the database has rolled back by then), so a refused import or
    edit leaves nothing behind. A file that was already in the store is never touched.
    ``db`` is asked only when there is something to check."""
    mark = len(store.created)
    try:
        yield
    except BaseException:
        added = store.created[mark:]
        del store.created[mark:]
        keep: set[str] | None = None
        if added:
            try:
                keep = db.media.referenced_paths()
            except sqlite3.Error:  # cannot tell what is referenced: keep everything
                keep = None
        if keep is not None:
            for relative in added:
                if relative not in keep:
                    _remove(store, relative)
        raise


def unreferenced(
    store: MediaStore, db: Store, *, now: float, min_age_seconds: float
) -> list[tuple[str, int]]:
    """Files in the store that no post references, older than ``min_age_seconds`` (a write in
    progress elsewhere may have copied a file it has not committed yet), plus temporary files
    of interrupted copies: (store path, size), sorted. Only the store's own files count; a file
    not named the store's way is left alone."""
    if not store.root.is_dir():
        return []
    keep = db.media.referenced_paths()
    found: list[tuple[str, int]] = []
    for path in store.root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        relative = path.relative_to(store.root).as_posix()
        ours = _STORED.fullmatch(relative) or re.fullmatch(
            r"[0-9a-f]{2}/\.incoming-[^/]+", relative
        )
        if not ours or relative in keep:
            continue
        info = path.stat()
        if now - info.st_mtime < min_age_seconds:
            continue
        found.append((relative, info.st_size))
    return sorted(found)


def collect_garbage(
    store: MediaStore,
    db: Store,
    *,
    now: float,
    min_age_seconds: float,
    dry_run: bool = False,
) -> list[tuple[str, int]]:
    """Remove (unless ``dry_run``) what ``unreferenced`` lists; returns that list. Each file is
    checked again right before it goes, against posts written in the meantime."""
    found = unreferenced(store, db, now=now, min_age_seconds=min_age_seconds)
    if dry_run or not found:
        return found
    keep = db.media.referenced_paths()
    removed = []
    for relative, size in found:
        if relative in keep:
            continue
        _remove(store, relative)
        removed.append((relative, size))
    return removed
