"""Both storage backends for the test suite (docs/architecture.md §11.4).

Every test that uses the ``backend`` fixture (autouse, see conftest.py) runs twice: on SQLite
(a file in the test's folder) and on PostgreSQL (a database of its own on the server at
127.0.0.1:5432, trust authentication, user postgres; made from a template that already holds
every migration and dropped afterwards). The database reaches kepubot, also in daemon
subprocesses, through ``KEPUBOT_DATABASE``. Tests start no server: when none answers, the
PostgreSQL runs are skipped and the summary says so loudly.

``--backend sqlite|postgresql|both`` (or ``KEPUBOT_TEST_BACKEND``) picks; ``KEPUBOT_TEST_PG``
names another server (an admin URL).
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SERVER = os.environ.get("KEPUBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
# tests that open no kepubot database of their own: channel unit tests against `responses`
# and the sandbox's own tests run once
ONCE_DIRS = ("channels", "sandbox")

_state: dict[str, Any] = {"template": None, "unreachable": None}


def addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=("both", "sqlite", "postgresql"),
        default=os.environ.get("KEPUBOT_TEST_BACKEND", "both"),
        help="storage backend(s) the database tests run on (default: both)",
    )


def generate(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("sqlite_only") is not None:
        return
    if Path(str(metafunc.definition.path)).parent.name in ONCE_DIRS:
        return
    choice = metafunc.config.getoption("backend")
    backends = ["sqlite", "postgresql"] if choice == "both" else [choice]
    metafunc.parametrize("backend", backends, indirect=True)


def _server_url(database: str) -> str:
    base, _, _ = SERVER.rpartition("/")
    return f"{base}/{database}"


def _admin() -> Any:
    import psycopg

    return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)


def _template() -> str | None:
    """The migrated template database (made once per session), or None without a server."""
    if _state["template"] is not None or _state["unreachable"] is not None:
        return _state["template"]
    try:
        admin = _admin()
    except Exception as exc:  # psycopg.OperationalError, or psycopg missing
        _state["unreachable"] = str(exc).strip().splitlines()[0] if str(exc) else repr(exc)
        return None
    from kepubot.queue.store import Store

    name = f"kp_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    store = Store(_server_url(name))
    store.conn()  # applies every migration
    store.close()
    _state["template"] = name
    return name


def finish() -> None:
    name = _state["template"]
    if name is None:
        return
    _state["finishing"] = True
    if _threads:
        _threads[0].join(timeout=30)
        while True:
            try:
                _drops.put(_spare.get_nowait())
            except queue.Empty:
                break
        _drops.put(None)
        _threads[1].join(timeout=120)
    try:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:
        pass


def summary(terminalreporter: Any) -> None:
    unreachable = _state["unreachable"]
    wanted = terminalreporter.config.getoption("backend") in ("both", "postgresql")
    if unreachable is None and _state["template"] is None and wanted:
        # the pytest-xdist controller runs no test itself: it asks the server here, so that
        # the loud line below appears under `-n` as well
        try:
            _admin().close()
        except Exception as exc:
            unreachable = str(exc).strip().splitlines()[0] if str(exc) else repr(exc)
    if unreachable is not None:
        terminalreporter.write_sep(
            "!",
            "PostgreSQL TESTS SKIPPED: no server at "
            f"{SERVER} ({unreachable}); run .ci/run or start one",
            red=True,
            bold=True,
        )


def backend_fixture(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    kind = getattr(request, "param", "sqlite")
    if kind == "sqlite":
        monkeypatch.delenv("KEPUBOT_DATABASE", raising=False)
        yield kind
        return
    template = _template()
    if template is None:
        pytest.skip(f"PostgreSQL not reachable at {SERVER}: {_state['unreachable']}")
    url = _take()
    monkeypatch.setenv("KEPUBOT_DATABASE", url)
    try:
        yield kind
    finally:
        drop_pg_database(url)


def connect_db(path: Path | str) -> Any:
    """The test's kepubot database: the SQLite file at ``path``, or, on the PostgreSQL run,
    the test's PostgreSQL database (rows by index and by name, ``?`` placeholders)."""
    url = os.environ.get("KEPUBOT_DATABASE")
    if url and url.startswith("postgresql://"):
        from kepubot.queue.store import Store

        return Store(url).connect()
    return sqlite3.connect(path)


def on_postgresql() -> bool:
    return bool(os.environ.get("KEPUBOT_DATABASE", "").startswith("postgresql://"))


def dump(path: Path) -> list[str]:
    """Every row of every table of the test's database, in a stable text form."""
    if not on_postgresql():
        if not path.exists():
            return []
        conn = sqlite3.connect(path)
        try:
            return list(conn.iterdump())
        finally:
            conn.close()
    conn = connect_db(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = current_schema()"
                " ORDER BY tablename"
            )
        ]
        lines: list[str] = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY 1'):
                lines.append(f"{table}: {tuple(row)!r}")
        return lines
    finally:
        conn.close()


def open_db(path: Path | str) -> Any:
    """A kepubot connection (``Store.connect``) to the test's database, migrated: the SQLite
    file at ``path`` or the test's PostgreSQL database."""
    from kepubot.queue.db import open_database
    from kepubot.queue.store import Store
    from kepubot.timeutil import to_db, utcnow

    url = os.environ.get("KEPUBOT_DATABASE")
    if url and url.startswith("postgresql://"):
        store = Store(url)
        store.conn()  # applies migrations (none left on a database made from the template)
        return store.connect()
    return open_database(path, to_db(utcnow()))


def new_pg_database() -> str | None:
    """A fresh migrated PostgreSQL database (its URL) for a test that makes databases itself
    (one per Hypothesis example); None without a server. Drop it with ``drop_pg_database``."""
    if _template() is None:
        return None
    return _take()


def _make(template: str) -> str:
    """CREATE DATABASE from the template: a copy of the migrated files, no migration run."""
    import psycopg

    name = f"kp_t_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        # the tests kill kepubot, never the server: a commit need not wait for the disk
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = _server_url(name)
    with psycopg.connect(url, autocommit=True) as conn:  # each database its own instance id
        conn.execute("UPDATE meta SET value = %s WHERE key = 'instance'", (uuid.uuid4().hex[:12],))
    return url


# Making and dropping a database take a few tenths of a second each; a helper thread makes the
# next one while a test runs and drops finished ones behind it (tests/backends.py docstring).
_spare: queue.Queue[str] = queue.Queue(maxsize=1)
_drops: queue.Queue[str | None] = queue.Queue()
_threads: list[threading.Thread] = []


def _maker(template: str) -> None:
    while not _state.get("finishing"):
        try:
            url = _make(template)
        except Exception:
            return
        while True:
            try:
                _spare.put(url, timeout=0.5)
                break
            except queue.Full:
                if _state.get("finishing"):
                    _drops.put(url)
                    return


def _dropper() -> None:
    while (url := _drops.get()) is not None:
        name = url.rpartition("/")[2]
        try:
            with _admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except Exception:
            pass


def _take() -> str:
    template = _template()
    assert template is not None
    if not _threads:
        for target, args in ((_maker, (template,)), (_dropper, ())):
            thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
            thread.start()
            _threads.append(thread)
    try:
        return _spare.get(timeout=30)
    except queue.Empty:
        return _make(template)


def drop_pg_database(url: str) -> None:
    _drops.put(url)


def unreachable() -> str | None:
    """Why no PostgreSQL server can be had (None: one answers); asks it once per session."""
    _template()
    return _state["unreachable"]  # type: ignore[no-any-return]
