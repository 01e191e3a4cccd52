"""Connections and migrations (docs/architecture.md §8.1, §11).

Two backends: SQLite (a file path, the default) and PostgreSQL (``postgresql://`` URLs, see
kepubot/queue/pg.py and kepubot/queue/store.py). Both connection kinds carry ``dialect``.

Connections run in autocommit mode (``isolation_level=None``) so that Python never opens a
transaction behind our back; every write goes through ``transaction()``, which is
``BEGIN IMMEDIATE`` and therefore never hits the read-to-write upgrade BUSY (docs/architecture.md §8.3).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kepubot.errors import StoreError
from kepubot.queue.migrations import MIGRATIONS, pg_form, split_pg

log = logging.getLogger("kepubot.queue.db")

BUSY_TIMEOUT_MS = 30_000
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, 517}  # 517: SQLITE_BUSY_SNAPSHOT


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does; SQLite gives -wal/-shm the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


_WRITE_LOCKS: dict[str, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


class Connection(sqlite3.Connection):
    """A connection that knows its database's in-process write lock (see ``transaction``)."""

    write_lock: Any = None
    dialect = "sqlite"


#: Key of the database-wide advisory lock every PostgreSQL write transaction takes first.
#: Taken exclusively (the default), it keeps SQLite's one-writer-at-a-time rule (BEGIN
#: IMMEDIATE), on which every read-then-write of the service code relies, across hosts. The
#: delivery engine's hot path takes it shared (``transaction(conn, shared=True)``): those
#: transactions run side by side, each made safe by its own row and key locks, and together
#: they still exclude every exclusive writer (docs/architecture.md §11.3).
PG_WRITER_LOCK = 0x6B657075  # "kepu"


def dialect(conn: Any) -> str:
    """``"sqlite"`` or ``"postgresql"``."""
    return str(getattr(conn, "dialect", "sqlite"))


def advisory_lock(conn: Any, name: str, *, wait: bool = True) -> bool:
    """Serialise this transaction against every other holding ``name`` until it ends.

    PostgreSQL: ``pg_advisory_xact_lock`` on a key derived from ``name`` (released at COMMIT or
    ROLLBACK). With ``wait=False`` it is ``pg_try_advisory_xact_lock``: returns False at once
    when another transaction holds ``name``. SQLite: nothing to do, ``BEGIN IMMEDIATE``
    already serialises every writer (always True)."""
    if dialect(conn) != "postgresql":
        return True
    import hashlib

    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    if wait:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (key,))
        return True
    return bool(conn.execute("SELECT pg_try_advisory_xact_lock(?)", (key,)).fetchone()[0])


def _write_lock(path: Path) -> Any:
    key = str(path.resolve())
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


def connect(path: Path | str) -> sqlite3.Connection:
    path = Path(path)
    if sqlite3.sqlite_version_info < (3, 35, 0):
        raise StoreError(
            f"SQLite {sqlite3.sqlite_version} is too old; kepubot needs 3.35 or later (RETURNING)"
        )
    _create_private(path)
    old_umask = os.umask(0o077)
    try:
        conn = sqlite3.connect(
            path,
            timeout=BUSY_TIMEOUT_MS / 1000,
            isolation_level=None,
            check_same_thread=False,
            factory=Connection,
        )
        conn.write_lock = _write_lock(path)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the database: {exc}") from None
    finally:
        os.umask(old_umask)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{path}{suffix}")
        if side.exists():
            with contextlib.suppress(OSError):
                os.chmod(side, 0o600)
    return conn


def is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES or "locked" in str(exc)
    )


def for_update(conn: Any) -> str:
    """`` FOR UPDATE`` on PostgreSQL: lock the rows read until the transaction ends (a
    read-then-write inside a shared transaction, docs/architecture.md §11.3); nothing on
    SQLite, where BEGIN IMMEDIATE already admits one writer."""
    return " FOR UPDATE" if dialect(conn) == "postgresql" else ""


def skip_locked(conn: Any) -> str:
    """`` FOR UPDATE SKIP LOCKED`` for a claim's SELECT on PostgreSQL (rows another
    transaction holds are passed over, not waited for); nothing on SQLite, where BEGIN
    IMMEDIATE already admits one writer."""
    return " FOR UPDATE SKIP LOCKED" if dialect(conn) == "postgresql" else ""


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, *, shared: bool = False) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception.

    Threads of one process queue on an in-process lock first: SQLite's busy handler sleeps
    1-100 ms between tries even when the lock has just been freed, which made eight worker
    threads no faster than one. Other processes still meet at SQLite's own lock.

    On PostgreSQL the transaction first takes ``PG_WRITER_LOCK``: exclusively by default (no
    other write transaction runs meanwhile, as on SQLite), or with ``shared=True`` beside the
    other shared ones. Only a function whose every read-then-write is made safe by its own
    row or key locks may pass ``shared=True`` (the delivery engine's hot path; each says why,
    docs/architecture.md §11.3). SQLite ignores ``shared``: it has one writer at a time.
    """
    if dialect(conn) == "postgresql":
        with _pg_transaction(conn, shared):
            yield conn
        return
    lock = getattr(conn, "write_lock", None)
    if lock is None:
        with _transaction(conn):
            yield conn
        return
    with lock, _transaction(conn):
        yield conn


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        for attempt in range(20):
            try:
                conn.execute("COMMIT")
                break
            except sqlite3.OperationalError as exc:
                # A COMMIT that returns BUSY leaves the transaction open; retrying is safe.
                if not is_busy(exc) or attempt == 19:
                    conn.execute("ROLLBACK")
                    raise
                time.sleep(random.uniform(0.005, 0.05))


@contextlib.contextmanager
def _pg_transaction(conn: Any, shared: bool = False) -> Iterator[Any]:
    conn.execute("BEGIN")
    try:
        # the first statement, so no row or key lock is ever held while waiting for it: an
        # exclusive request queues behind the shared holders and new shared requests queue
        # behind it (PostgreSQL grants in order), so neither side starves
        if shared:
            conn.execute("SELECT pg_advisory_xact_lock_shared(?)", (PG_WRITER_LOCK,))
        else:
            conn.execute("SELECT pg_advisory_xact_lock(?)", (PG_WRITER_LOCK,))
        yield conn
    except BaseException:
        if not getattr(conn, "closed", False):
            conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


def has_table(conn: Any, name: str) -> bool:
    if dialect(conn) == "postgresql":
        sql = "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = ?"
    else:
        sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name = ?"
    return conn.execute(sql, (name,)).fetchone() is not None


def schema_version(conn: sqlite3.Connection) -> int:
    if not has_table(conn, "schema_migrations"):
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def _applied(conn: sqlite3.Connection) -> set[int]:
    if not has_table(conn, "schema_migrations"):
        return set()
    return {int(row[0]) for row in conn.execute("SELECT version FROM schema_migrations")}


def migrate(conn: sqlite3.Connection, now_text: str) -> int:
    """Apply every migration not yet recorded; returns the resulting schema version."""
    latest = MIGRATIONS[-1][0]
    known = {version for version, _, _ in MIGRATIONS}
    if schema_version(conn) == latest and known <= _applied(conn):
        return latest
    postgresql = dialect(conn) == "postgresql"
    with transaction(conn):
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
        )
        current = schema_version(conn)
        if current > latest:
            raise StoreError(
                f"the database has schema version {current} but this kepubot knows only up to"
                f" {latest}; upgrade kepubot"
            )
        # every migration not recorded yet, also one numbered below the newest applied (a
        # reserved number that shipped after a later one)
        applied = _applied(conn)
        for version, name, sql in MIGRATIONS:
            if version in applied:
                continue
            log.debug("applying migration %03d_%s", version, name)
            if postgresql:
                sql = pg_form(version, name, sql)
            if callable(sql):
                sql(conn, now_text)
                statements: list[str] = []
            elif postgresql:
                statements = split_pg(sql)
            else:
                statements = _split_sql(sql)
            # executescript() would COMMIT our transaction; run statement by statement instead.
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, now_text),
            )
    return latest


def _split_sql(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN ... END;) whole."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise StoreError("incomplete SQL statement in a migration")
    return statements


def open_database(path: Path | str, now_text: str) -> sqlite3.Connection:
    conn = connect(path)
    try:
        migrate(conn, now_text)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: cannot prepare the database: {exc}") from None
    return conn
