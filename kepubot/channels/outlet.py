"""What the channels without a publishing interface share (docs/platforms.md §14): an output
folder relative to the configuration file, a media file's place in the store, and writing a
whole folder so that it appears complete or not at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field

from kepubot.channels.base import Capabilities, Channel, ChannelSettings
from kepubot.channels.feed import _fsync_folder
from kepubot.errors import Permanent, Transient
from kepubot.models import Media


class OutletSettings(ChannelSettings):
    output_dir: str = Field(min_length=1)


class OutletChannel(Channel):
    """A channel that writes files into ``output_dir`` instead of calling a platform."""

    settings: OutletSettings
    capabilities = Capabilities(verify=True)

    def _base_dir(self) -> Path:
        config = getattr(self.context, "config", None)
        base = getattr(config, "base_dir", None)
        return Path(base) if base is not None else Path.cwd()

    @property
    def output_path(self) -> Path:
        path = Path(self.settings.output_dir).expanduser()
        return path if path.is_absolute() else self._base_dir() / path

    def _now(self) -> datetime:
        now = self.context.now() if self.context is not None else datetime.now(UTC)
        return now if now.tzinfo is not None else now.replace(tzinfo=UTC)

    def media_source(self, media: Media) -> Path:
        if media.file:
            source = Path(media.file)
        elif self.context is not None:
            source = Path(self.context.media_file(media.path))
        else:
            raise Permanent(f"{self.type_name()}: no media store available to copy files from")
        if not source.is_file():
            raise Permanent(
                f"{self.type_name()}: media file {media.name!r} ({media.path}) is missing from"
                " the media store; restore it or remove it from the post"
            )
        return source

    def verify(self) -> str:
        folder = self.output_path
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise Permanent(
                f"{self.type_name()}: cannot write in {existing}; fix output_dir or its permissions"
            )
        return f"writes into {folder}"


def write_folder(target: Path, fill: Callable[[Path], None]) -> bool:
    """Create the folder ``target`` complete or not at all: ``fill`` writes into a temporary
    folder next to it, which is then renamed to ``target``. An existing ``target`` is a
    finished earlier write (a rename is atomic) and is kept: returns False. A crash mid-write
    leaves only a hidden ``.tmp-*`` folder, removed by the next write."""
    if target.is_dir():
        return False
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for stale in parent.glob(f".tmp-{target.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        temp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=parent))
    except OSError as exc:
        raise Transient(f"cannot write in {parent}: {exc.strerror or exc}") from None
    try:
        fill(temp)
        os.chmod(temp, 0o755)
        os.rename(temp, target)
    except FileExistsError:  # another worker finished the same folder first
        shutil.rmtree(temp, ignore_errors=True)
        return False
    except OSError as exc:
        if target.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
            return False
        with suppress(OSError):
            shutil.rmtree(temp, ignore_errors=True)
        raise Transient(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _fsync_folder(parent)
    return True
