"""Random keys kept in files beside the database (0600), made once without a race."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from kepubot.errors import ConfigError


def read_or_create(path: Path, size: int = 32) -> bytes:
    """The key in ``path``; created with ``size`` random bytes when missing.

    Processes (or threads) starting together agree on one key: each writes a temporary file
    of its own and links it into place, which fails for all but the first; the others then
    read the winner's key. The file never exists half-written under its final name.
    """
    for _ in range(50):
        try:
            text = path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise ConfigError(f"cannot read the key file {path}: {exc.strerror}") from None
        if text:
            try:
                return bytes.fromhex(text)
            except ValueError:
                raise ConfigError(
                    f"{path} does not hold a key (hex digits expected); remove it to make a new one"
                ) from None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(os.urandom(size).hex())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # only the first one lands
        except OSError as exc:
            raise ConfigError(f"cannot create the key file {path}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        time.sleep(0.01)
    raise ConfigError(f"cannot read the key file {path}; check its permissions")
