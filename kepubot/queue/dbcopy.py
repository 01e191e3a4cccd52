"""``kepubot db copy --to postgresql://…``: a SQLite database into an empty PostgreSQL one
(docs/architecture.md §11.6, docs/operations.md §15).

Everything in the schema is copied, table by table in foreign-key order, in one PostgreSQL
transaction with the tables' own (user) triggers disabled: those triggers guard changes the
service code makes (state machine, append-only audit, derived tables), while here the rows
arrive as they already are, derived tables included. Identity sequences are set past the
copied ids. Then, still before COMMIT, the copy is verified: every table's row count, and the
audit chain walked on the target. Any failure rolls everything back.
"""

from __future__ import annotations

import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kepubot.errors import InvalidInput, StoreError

if TYPE_CHECKING:
    from kepubot.queue.store import Store

BATCH = 1000


@dataclass
class CopyResult:
    counts: dict[str, int] = field(default_factory=dict)
    audit_rows: int = 0
    audit_head: str | None = None


def _tables(conn: sqlite3.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY name"
        )
    ]


def _fk_order(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    """Tables so that every table comes after those its foreign keys reference."""
    deps = {
        t: {r[2] for r in conn.execute(f'PRAGMA foreign_key_list("{t}")')} - {t} for t in tables
    }
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(tables):
        ready = [t for t in tables if t not in done and deps[t] <= done | (deps[t] - set(tables))]
        if not ready:  # a cycle: cannot happen in our schema; say so rather than guess
            raise StoreError(f"foreign keys form a cycle among {sorted(set(tables) - done)}")
        for t in ready:
            order.append(t)
            done.add(t)
    return order


def _seeded_tables() -> set[str]:
    """Tables the migrations themselves fill (state tables, meta): in a fresh database."""
    from kepubot.queue.db import open_database
    from kepubot.timeutil import to_db, utcnow

    with tempfile.TemporaryDirectory() as folder:
        conn = open_database(Path(folder) / "fresh.db", to_db(utcnow()))
        try:
            return {
                t
                for t in _tables(conn)
                if conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone() is not None
            }
        finally:
            conn.close()


def _pg_count(target: Any, table: str) -> int:
    return int(target.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])


def copy_sqlite_to_pg(source: sqlite3.Connection, target: Any, label: str) -> CopyResult:
    """Copy ``source`` (a migrated SQLite connection) into ``target`` (a migrated, empty
    PostgreSQL connection). Raises InvalidInput when the target holds data."""
    from kepubot.queue import audit
    from kepubot.queue.db import schema_version

    source_version = schema_version(source)
    target_version = schema_version(target)
    if source_version != target_version:
        raise StoreError(
            f"{label}: schema version {target_version} but the SQLite database has"
            f" {source_version}; run both with the same kepubot"
        )
    tables = [t for t in _fk_order(source, _tables(source)) if t != "schema_migrations"]
    seeded = _seeded_tables()
    holding = [t for t in tables if t not in seeded and _pg_count(target, t) > 0]
    if holding:
        raise InvalidInput(
            f"{label}: the target database is not empty (rows in {', '.join(holding[:5])}"
            f"{' …' if len(holding) > 5 else ''}); copy only into a new, empty database"
        )
    pg_columns: dict[str, list[str]] = {}
    identity: dict[str, str] = {}
    for row in target.execute(
        "SELECT table_name, column_name, is_identity FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        pg_columns.setdefault(row[0], []).append(row[1])
        if row[2] == "YES":
            identity[row[0]] = row[1]
    missing = [t for t in tables if t not in pg_columns]
    if missing:
        raise StoreError(f"{label}: tables missing on the target: {', '.join(missing)}")

    result = CopyResult()
    from kepubot.queue.db import PG_WRITER_LOCK

    target.execute("BEGIN")
    try:
        # no daemon or console writes while the copy runs (docs/architecture.md §11.3)
        target.execute("SELECT pg_advisory_xact_lock(?)", (PG_WRITER_LOCK,))
        for table in tables:
            target.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')
        # rows the target's migrations seeded are replaced by the source's (children first)
        for table in reversed(tables):
            if table in seeded:
                target.execute(f'DELETE FROM "{table}"')
        for table in tables:
            columns = [r[1] for r in source.execute(f'PRAGMA table_info("{table}")')]
            unknown = [c for c in columns if c not in pg_columns[table]]
            if unknown:
                raise StoreError(f"{label}: {table} has no column {', '.join(unknown)}")
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            overriding = " OVERRIDING SYSTEM VALUE" if table in identity else ""
            insert = f'INSERT INTO "{table}" ({names}){overriding} VALUES ({marks})'
            cursor = source.execute(f'SELECT {names} FROM "{table}"')
            copied = 0
            while True:
                rows = cursor.fetchmany(BATCH)
                if not rows:
                    break
                target.executemany(insert, [tuple(r) for r in rows])
                copied += len(rows)
            result.counts[table] = copied
        for table, column in identity.items():
            if table in result.counts:
                target.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'),"
                    f' COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1, false)'
                )
        for table in tables:
            target.execute(f'ALTER TABLE "{table}" ENABLE TRIGGER USER')
        # verify before COMMIT: counts per table, and the audit chain on the target
        for table in tables:
            source_count = int(source.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
            target_count = _pg_count(target, table)
            if source_count != target_count or target_count != result.counts[table]:
                raise StoreError(
                    f"{label}: {table} has {target_count} rows after the copy, the SQLite"
                    f" database {source_count}; nothing was copied"
                )
        checked = audit.verify(target)
        if not checked.ok:
            raise StoreError(
                f"{label}: audit row {checked.broken_id} does not verify on the target:"
                f" {checked.reason}; nothing was copied"
            )
        result.audit_rows = checked.rows
        result.audit_head = audit.head_hash(target)
        source_head = audit.head_hash(source)
        if result.audit_head != source_head:
            raise StoreError(
                f"{label}: the audit head differs after the copy ({result.audit_head} vs"
                f" {source_head}); nothing was copied"
            )
    except BaseException:
        target.execute("ROLLBACK")
        raise
    target.execute("COMMIT")
    return result


def copy_store(source: Store, target: Store) -> CopyResult:
    """Copy the SQLite database of ``source`` into the empty PostgreSQL database of
    ``target``, which is migrated first (a new database gets every table). The copy runs on
    a connection of its own, closed afterwards; the caller closes ``target``."""
    target.migrate()
    conn = target.connect()
    try:
        return copy_sqlite_to_pg(source.conn(), conn, target.label)
    finally:
        conn.close()


def target_url(url: str) -> str:
    """The ``--to`` URL checked: PostgreSQL, password only as a ``${ENV}`` reference."""
    from kepubot.queue.store import check_url, is_url

    if not is_url(url):
        raise InvalidInput(
            f"--to: {url[:60]!r} is not a postgresql:// URL; give the empty PostgreSQL"
            " database to copy into"
        )
    problem = check_url(url)
    if problem:
        raise InvalidInput(f"--to: {problem}")
    return url
