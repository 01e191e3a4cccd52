"""The service context one command (or one web request) works in: config, database, channels.

Both front ends build an ``App`` and call the services (``kepubot.services``) and the
repositories of ``app.store``; neither holds business rules nor a database connection
(docs/architecture.md §17). Everything is opened lazily so that ``kepubot --help`` stays fast.
"""

from __future__ import annotations

from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from kepubot.config import Config
from kepubot.errors import ConfigError, NotAllowed
from kepubot.timeutil import utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable

    from kepubot.channels.base import Channel
    from kepubot.files.media import MediaStore
    from kepubot.proofread import MisusedWords
    from kepubot.queue.credentials import CredentialStore
    from kepubot.queue.store import Store
    from kepubot.sensitive import SensitiveWords


def holds(roles: set[str], *wanted: str) -> bool:
    """Whether ``roles`` include one of ``wanted``; admin counts as every role."""
    return "admin" in roles or bool(roles & set(wanted))


class App:
    def __init__(
        self, config: Config, *, language: str | None = None, store: Store | None = None
    ) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.language = language or config.data.kepubot.language
        # a store passed in (the console's threads share one) is closed by its owner
        self._owns_store = store is None
        if store is not None:
            self.__dict__["store"] = store

    # ChannelContext
    def now(self) -> datetime:
        return utcnow()

    def media_file(self, relative: str) -> str:
        return str(self.media.file(relative))

    def alert(self, key: str, title: str, body: str) -> bool:
        """An alert a channel raises (e.g. Douyin: the last refresh token runs out soon): an
        ERROR log line and the [alerts] urls, at most once per repeat_minutes per key."""
        from kepubot.services.alerts import raise_alert

        return raise_alert(self, key=key, now=self.now(), title=title, body=body)

    @cached_property
    def store(self) -> Store:
        """The database (docs/architecture.md §11): SQLite file or PostgreSQL."""
        from kepubot.queue.store import Store

        return Store.for_config(self.config)

    @cached_property
    def credentials(self) -> CredentialStore:
        import os

        from kepubot.queue.credentials import CredentialStore, load_cipher
        from kepubot.queue.store import host_name

        configured = self.config.data.kepubot.token_key
        cipher = load_cipher(
            configured.get_secret_value() if configured is not None else None,
            self.config.database_path.parent / "token.key",
        )
        return CredentialStore(self.store, owner=f"{host_name()}:{os.getpid()}", cipher=cipher)

    @cached_property
    def channels(self) -> dict[str, Channel]:
        from kepubot import logsafe
        from kepubot.channels.base import load_channels

        channels = load_channels(self.config, self)
        secrets = logsafe.secret_values(self.config.data)
        for channel in channels.values():
            secrets += logsafe.secret_values(channel.settings)
        logsafe.install(secrets)
        return channels

    @cached_property
    def media(self) -> MediaStore:
        from kepubot.files.media import MediaStore

        return MediaStore(self.config.media_path)

    @cached_property
    def sensitive_words(self) -> SensitiveWords:
        from kepubot.sensitive import SensitiveWords

        path = self.config.data.review.sensitive_words
        if path is None:
            return SensitiveWords([])
        return SensitiveWords.load(self.config.resolve(path))

    @cached_property
    def misused_words(self) -> MisusedWords | None:
        """The 三校 misused-words list (docs/architecture.md §13), or None when not configured."""
        from kepubot.proofread import MisusedWords

        path = self.config.data.review.misused_words
        if path is None:
            return None
        return MisusedWords.load(self.config.resolve(path))

    def roles(self, user: str) -> set[str]:
        roles = self.config.roles_of(user)
        if roles is None:
            raise NotAllowed(
                f"user {user!r} is not configured in [users] of {Path(self.config.path).name};"
                " pass --as USER (or set KEPUBOT_USER) or add the user"
            )
        return roles

    def require_secrets(
        self, channels: Iterable[str] | None = None, *, sections: Iterable[str] = ()
    ) -> None:
        """Every ``${ENV}`` reference the caller is about to use must be set: those of the
        named channels (None: every channel) and of the named config sections (``web``,
        ``alerts``, ``kepubot``). One ConfigError line per missing variable, all at once."""
        from kepubot.config import env_references, missing_env

        refs: list[tuple[str, str]] = []
        names = list(self.channels) if channels is None else list(channels)
        for name in names:
            channel = self.channels.get(name)
            if channel is not None:
                refs += env_references(channel.settings, f"channels.{name}")
        for section in sections:
            refs += env_references(getattr(self.config.data, section), section)
        problems = missing_env(refs)
        if problems:
            where = self.config.path
            raise ConfigError("\n".join(f"{where}: {line}" for line in problems))

    def require_role(self, user: str, *wanted: str, action: str) -> set[str]:
        roles = self.roles(user)
        if holds(roles, *wanted):
            return roles
        need = " or ".join(wanted)
        have = ", ".join(sorted(roles))
        raise NotAllowed(f"{action} needs the {need} role; user {user!r} has: {have}")

    def close(self) -> None:
        if "store" in self.__dict__ and self._owns_store:
            self.store.close()
