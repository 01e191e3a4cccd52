"""The Store: connections, transactions and migrations for one database (docs/architecture.md
§11).

``[kepubot] database`` (or the environment variable ``KEPUBOT_DATABASE``) is a SQLite file
path, the default, or a ``postgresql://`` URL whose password, if any, is a ``${ENV}``
reference. ``Store.conn()`` is the one way to get a connection: each thread gets its own,
made on first use; the first connection of a store applies the migrations. Callers use the
connection as before (``execute`` with ``?`` placeholders, rows by name and index) and
``kepubot.queue.db.transaction`` for writes, on either backend.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from kepubot.errors import ConfigError, StoreError
from kepubot.queue import repos

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
ENV_OVERRIDE = "KEPUBOT_DATABASE"


def is_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def check_url(url: str) -> str | None:
    """What is wrong with a configured PostgreSQL URL (a literal password), or None."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    password = parts.password
    if password is not None and not _ENV.fullmatch(password):
        return (
            "the password in the URL must be a ${ENV_NAME} reference, never literal;"
            " put it in an environment variable (or use ~/.pgpass) and reference it"
        )
    return None


def expand(url: str) -> str:
    """The URL with its ``${ENV}`` references replaced by their (URL-quoted) values."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        got = os.environ.get(name)
        if not got:
            raise ConfigError(
                f"kepubot.database: environment variable {name} is not set; export it before"
                " starting"
            )
        return quote(got, safe="")

    return _ENV.sub(value, url)


def redact(url: str) -> str:
    """The URL without its password, to name the database in messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, ""))


class Store:
    """One database: SQLite file or PostgreSQL URL."""

    def __init__(self, target: str | Path) -> None:
        text = str(target)
        self.url: str | None = text if is_url(text) else None
        self.path: Path | None = None if self.url else Path(text)
        self.dialect = "postgresql" if self.url else "sqlite"
        self.label = redact(self.url) if self.url else str(self.path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Any] = []
        self._migrated = False

    @classmethod
    def for_config(cls, config: Any) -> Store:
        override = os.environ.get(ENV_OVERRIDE)
        if override:
            return cls(override if is_url(override) else config.resolve(override))
        configured = config.data.kepubot.database
        return cls(configured if is_url(configured) else config.database_path)

    def connect(self) -> Any:
        """A new connection (no migration); the caller closes it."""
        if self.url is not None:
            from kepubot.queue import pg

            return pg.connect(expand(self.url), self.label)
        from kepubot.queue.db import connect

        assert self.path is not None
        return connect(self.path)

    def migrate(self) -> None:
        """Create the database or bring it up to date, once per store, before any thread
        opens it (``kepubot init``, the daemon and the console call it at start)."""
        if not self._migrated:
            with self._lock:
                if not self._migrated:
                    self._migrate_once()
                    self._migrated = True

    def conn(self) -> Any:
        """The calling thread's connection; the store's first one applies the migrations."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and not getattr(conn, "closed", False):
            return conn
        # (a PostgreSQL connection the server dropped is replaced by a new one)
        self.migrate()
        conn = self.connect()
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction on the calling thread's connection: every repository call
        inside it commits together or not at all (``BEGIN IMMEDIATE`` on SQLite)."""
        from kepubot.queue.db import transaction

        with transaction(self.conn()):
            yield

    @functools.cached_property
    def deliveries(self) -> repos.Deliveries:
        return repos.Deliveries(self)

    @functools.cached_property
    def audit(self) -> repos.Audit:
        return repos.Audit(self)

    @functools.cached_property
    def metrics(self) -> repos.Metrics:
        return repos.Metrics(self)

    @functools.cached_property
    def limits(self) -> repos.Limits:
        return repos.Limits(self)

    @functools.cached_property
    def ops(self) -> repos.Ops:
        return repos.Ops(self)

    @functools.cached_property
    def wakeup(self) -> repos.Wakeup:
        return repos.Wakeup(self)

    @functools.cached_property
    def posts(self) -> repos.Posts:
        return repos.Posts(self)

    @functools.cached_property
    def calendar(self) -> repos.Calendar:
        return repos.Calendar(self)

    @functools.cached_property
    def pauses(self) -> repos.Pauses:
        return repos.Pauses(self)

    @functools.cached_property
    def retraction(self) -> repos.Retraction:
        return repos.Retraction(self)

    @functools.cached_property
    def assisted(self) -> repos.Assisted:
        return repos.Assisted(self)

    @functools.cached_property
    def reporting(self) -> repos.Reporting:
        return repos.Reporting(self)

    @functools.cached_property
    def accounts(self) -> repos.Accounts:
        return repos.Accounts(self)

    @functools.cached_property
    def media(self) -> repos.Media:
        return repos.Media(self)

    @functools.cached_property
    def post_pauses(self) -> repos.PostPauses:
        return repos.PostPauses(self)

    def current(self) -> Any:
        """The calling thread's connection if it has one (no new connection)."""
        return getattr(self._local, "conn", None)

    def rollback_open(self) -> None:
        """Roll back a transaction the calling thread left open (a console request that
        failed half-way); nothing when it has no connection or no open transaction."""
        conn = self.current()
        if conn is not None and not getattr(conn, "closed", False) and conn.in_transaction:
            conn.rollback()

    def _migrate_once(self) -> None:
        from kepubot.queue.db import migrate
        from kepubot.timeutil import to_db, utcnow

        conn = self.connect()
        try:
            migrate(conn, to_db(utcnow()))
        except StoreError:
            raise
        except Exception as exc:  # sqlite3.DatabaseError or its PostgreSQL translations
            import sqlite3

            if not isinstance(exc, sqlite3.DatabaseError):
                raise
            raise StoreError(f"{self.label}: cannot prepare the database: {exc}") from None
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def close(self, *, keep_current: bool = False) -> None:
        """Close the connections this store made (all, or all but the calling thread's)."""
        current = self.current()
        with self._lock:
            keep = [c for c in self._connections if keep_current and c is current]
            closing = [c for c in self._connections if c not in keep]
            self._connections = keep
        for conn in closing:
            with contextlib.suppress(Exception):
                conn.close()
        if not keep_current:
            self._local = threading.local()


def host_name() -> str:
    """This host's name as lease owners and the daemons table give it (``host:pid``).
    ``KEPUBOT_HOSTNAME`` overrides it, e.g. for containers that all call themselves
    ``localhost``, or for tests that stand in several hosts on one machine."""
    import socket

    return os.environ.get("KEPUBOT_HOSTNAME") or socket.gethostname()
