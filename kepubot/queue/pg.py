"""PostgreSQL connections that behave like our SQLite ones (docs/architecture.md §11).

Callers keep writing ``conn.execute(sql, params)`` with ``?`` placeholders and read rows by
name or by index, exactly as with ``sqlite3.Row``. This module translates each statement
once (cached): ``?`` outside string literals, quoted names and comments becomes ``%s``, every
``%`` is doubled (psycopg reads ``%`` everywhere, also inside literals), ``BEGIN IMMEDIATE``
becomes ``BEGIN``. Errors are raised as subclasses of the ``sqlite3`` exception classes the
code already catches (``IntegrityError`` for constraint and trigger refusals, otherwise
``OperationalError``), so a refusal reads the same on both backends.

psycopg is imported only here, and only when a ``postgresql://`` database is configured.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

#: ``sqlstate`` classes that are refusals of the data (SQLite: IntegrityError). P0001 is a
#: plpgsql ``RAISE EXCEPTION``, which our triggers use like SQLite's ``RAISE(ABORT, ...)``.
_INTEGRITY = ("23", "P0001")


class PgIntegrityError(sqlite3.IntegrityError):
    sqlstate: str | None = None


class PgOperationalError(sqlite3.OperationalError):
    sqlstate: str | None = None


def _translate_error(exc: Exception) -> sqlite3.Error:
    state = getattr(exc, "sqlstate", None) or ""
    message = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
    cls: type[PgIntegrityError | PgOperationalError]
    cls = PgIntegrityError if state.startswith(_INTEGRITY) else PgOperationalError
    error = cls(message)
    error.sqlstate = state or None
    return error


_INDEXED_BY = re.compile(r"\s+(?:INDEXED\s+BY\s+\w+|NOT\s+INDEXED)\b", re.IGNORECASE)
_LIKE = re.compile(r"(?<![\w.])LIKE\b", re.IGNORECASE)
# SQLite's null-safe comparison `a IS b` / `a IS NOT b` (b not NULL/TRUE/FALSE)
_KEYWORDS = r"(?:NULL|TRUE|FALSE|UNKNOWN|DISTINCT)\b"
_IS_NOT = re.compile(r"\bIS\s+NOT\s+(?!" + _KEYWORDS + ")", re.IGNORECASE)
_IS = re.compile(r"\bIS\s+(?!NOT\b|" + _KEYWORDS + ")", re.IGNORECASE)


def _plain(text: str) -> str:
    """SQL outside literals and comments: placeholders, ``%``, SQLite-only planner hints
    (``INDEXED BY``: PostgreSQL plans on its own), ``LIKE``, which is case-insensitive for
    ASCII in SQLite and becomes ``ILIKE`` here to keep that, and SQLite's null-safe ``IS`` /
    ``IS NOT`` between values (``IS [NOT] DISTINCT FROM``)."""
    text = _INDEXED_BY.sub("", text)
    text = _LIKE.sub("ILIKE", text)
    text = _IS_NOT.sub("IS DISTINCT FROM ", text)
    text = _IS.sub("IS NOT DISTINCT FROM ", text)
    return text.replace("%", "%%").replace("?", "%s")


@functools.lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """Our SQL (``?`` placeholders, SQLite spellings) as psycopg SQL; see the module docstring."""
    stripped = sql.strip()
    if stripped.upper() in ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "BEGIN DEFERRED"):
        return "BEGIN"
    out: list[str] = []
    plain: list[str] = []

    def flush() -> None:
        if plain:
            out.append(_plain("".join(plain)))
            plain.clear()

    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        end = -1
        if ch in ("'", '"'):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # doubled quote inside
                        end += 2
                        continue
                    break
                end += 1
            end += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif sql.startswith("$$", i):  # plpgsql bodies in migrations
            end = sql.find("$$", i + 2)
            end = n if end < 0 else end + 2
        if end < 0:
            plain.append(ch)
            i += 1
            continue
        flush()
        out.append(sql[i:end].replace("%", "%%"))
        i = end
    flush()
    return "".join(out)


class Row(Sequence[Any]):
    """A row addressable by index and (case-insensitively) by column name, like sqlite3.Row."""

    __slots__ = ("_index", "_names", "_values")

    def __init__(self, values: Sequence[Any], names: tuple[str, ...], index: dict[str, int]):
        self._values = tuple(values)
        self._names = names
        self._index = index

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key.lower()]]
            except KeyError:
                raise IndexError(f"No item with that key: {key!r}") from None
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values and self._names == other._names
        if isinstance(other, tuple):  # as a plain sqlite3 row (a tuple) compares
            return self._values == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._names, self._values, strict=True))!r})"


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    names = tuple(column.name for column in description)
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        index.setdefault(name.lower(), position)

    def make(values: Sequence[Any]) -> Row:
        return Row(values, names, index)

    return make


class Cursor:
    """The part of a sqlite3 cursor our code uses."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def fetchone(self) -> Any:
        try:
            return self._cursor.fetchone()
        except Exception as exc:  # no result set (e.g. an UPDATE without RETURNING)
            if _is_psycopg_error(exc):
                return None
            raise

    def fetchall(self) -> list[Any]:
        try:
            return list(self._cursor.fetchall())
        except Exception as exc:
            if _is_psycopg_error(exc):
                return []
            raise

    def fetchmany(self, size: int = 1) -> list[Any]:
        return list(self._cursor.fetchmany(size))

    def __iter__(self) -> Iterator[Any]:
        if self._cursor.description is None:
            return iter(())
        return iter(self._cursor)

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def description(self) -> Any:
        description = self._cursor.description
        if description is None:
            return None
        return tuple((column.name, None, None, None, None, None, None) for column in description)

    @property
    def lastrowid(self) -> None:
        raise sqlite3.NotSupportedError(
            "lastrowid is SQLite-only; use INSERT ... RETURNING id (docs/architecture.md §11)"
        )

    def close(self) -> None:
        self._cursor.close()


def _is_psycopg_error(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.Error)


class PgConnection:
    """A psycopg connection in autocommit mode with the sqlite3.Connection interface our code
    uses; ``transaction()`` (kepubot.queue.db) issues BEGIN/COMMIT/ROLLBACK itself."""

    dialect = "postgresql"
    write_lock: Any = None

    def __init__(self, raw: Any, label: str) -> None:
        self.raw = raw
        self.label = label

    def execute(self, sql: str, params: Iterable[Any] | None = None) -> Cursor:
        import psycopg

        try:
            cursor = self.raw.execute(translate(sql), tuple(params or ()))
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc
        return Cursor(cursor)

    def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> Cursor:
        import psycopg

        cursor = self.raw.cursor()
        try:
            cursor.executemany(translate(sql), [tuple(p) for p in seq])
        except psycopg.Error as exc:
            raise _translate_error(exc) from exc
        return Cursor(cursor)

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    def commit(self) -> None:
        if self.in_transaction:
            self.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        """As sqlite3: commits an open transaction, or rolls it back on an exception."""
        if kind is None:
            self.commit()
        else:
            self.rollback()

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)


def _register_loaders(raw: Any) -> None:
    """SQLite hands back int/float; so do we: ``SUM(bigint)`` is numeric in PostgreSQL (an
    int here when whole), booleans from comparisons are 0/1."""
    from psycopg.adapt import Loader

    class NumericLoader(Loader):
        def load(self, data: Any) -> Any:
            text = bytes(data).decode()
            if text in ("NaN", "Infinity", "-Infinity"):
                return float(text)
            if "." in text or "e" in text.lower():
                return float(text)  # AVG(), a division: SQLite gives a float too
            return int(text)

    class BoolLoader(Loader):
        def load(self, data: Any) -> int:
            return 1 if bytes(data) in (b"t", b"true") else 0

    raw.adapters.register_loader("numeric", NumericLoader)
    raw.adapters.register_loader("bool", BoolLoader)


def connect(url: str, label: str) -> PgConnection:
    """A new autocommit connection; ``label`` (the URL without its password) names it in errors."""
    import psycopg

    from kepubot.errors import StoreError

    try:
        raw = psycopg.connect(url, autocommit=True, row_factory=_row_factory, connect_timeout=10)
    except psycopg.Error as exc:
        raise StoreError(f"{label}: cannot connect to PostgreSQL: {_first_line(exc)}") from None
    _register_loaders(raw)
    raw.execute("SET TIME ZONE 'UTC'")
    return PgConnection(raw, label)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
