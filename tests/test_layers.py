"""The layers of docs/architecture.md §17, checked on the source (AST, no import).

Storage: nothing outside ``kepubot/queue/`` executes SQL or touches a connection; it asks the
``Store`` for repositories and ``store.transaction()``. So no module outside it

- calls ``.execute(`` or ``.executemany(``,
- calls or reads ``.conn`` / ``.thread_conn`` (of a store, an App, a service context …),
  or calls ``.connect(`` of a store, an App or a database driver,
- imports ``transaction`` (or ``connect``) from ``kepubot.queue.db``, or calls ``db.transaction``,
- has a function parameter named ``conn``.

Services and files sit under the front ends and the daemon: ``kepubot/services/`` and
``kepubot/files/`` import nothing from ``kepubot.web``, ``kepubot.cli`` or ``kepubot.bot``.
Storage sits under everything: ``kepubot/queue/`` imports none of those nor the services, the
files or ``kepubot.app``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

# no database: the source is read, once (tests/backends.py would run it per backend)
pytestmark = pytest.mark.sqlite_only

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kepubot"
STORAGE = PACKAGE / "queue"
LOWER = (PACKAGE / "services", PACKAGE / "files")
FRONT_ENDS = ("kepubot.web", "kepubot.cli", "kepubot.bot")

SQL_CALLS = {"execute", "executemany"}
CONNECTION_ATTRS = {"conn", "thread_conn"}
# receivers whose ``.connect(`` opens a database connection (a socket's is not ours)
DRIVERS = {"sqlite3", "psycopg", "psycopg2", "pg", "db"}
DB_MODULE = "kepubot.queue.db"
DB_NAMES = {"transaction", "connect"}


def _name_of(node: ast.expr) -> str | None:
    """The last name of a receiver: ``app`` for ``app``, ``store`` for ``self.app.store``,
    ``Store`` for ``Store(url)``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return None


def _store_or_app(node: ast.expr) -> bool:
    name = _name_of(node)
    if name is None:
        return False
    lowered = name.lower()
    return (
        name in DRIVERS
        or lowered.endswith(("store", "app", "service", "services"))
        or lowered in ("self", "cls")
    )


def storage_violations(source: str, where: str) -> list[str]:
    """``where:line: what`` for each way ``source`` reaches past the repositories."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            attr = node.func.attr
            if attr in SQL_CALLS:
                found.append((node.lineno, f"calls .{attr}( (SQL belongs in kepubot/queue/)"))
            elif attr == "connect" and _store_or_app(node.func.value):
                found.append((node.lineno, "calls .connect( of a store, an App or a driver"))
            elif attr == "transaction" and _name_of(node.func.value) == "db":
                found.append((node.lineno, "calls db.transaction (use store.transaction())"))
        if isinstance(node, ast.Attribute) and node.attr in CONNECTION_ATTRS:
            found.append((node.lineno, f"uses .{node.attr} (ask the store for a repository)"))
        if isinstance(node, ast.ImportFrom) and node.module == DB_MODULE:
            for alias in node.names:
                if alias.name in DB_NAMES:
                    found.append(
                        (node.lineno, f"imports {alias.name} from {DB_MODULE} (use the Store)")
                    )
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs):
                if arg.arg == "conn":
                    found.append((arg.lineno, "has a parameter named conn"))
    return [f"{where}:{line}: {what}" for line, what in sorted(set(found))]


def import_violations(
    source: str, where: str, forbidden: tuple[str, ...] = FRONT_ENDS
) -> list[str]:
    """``where:line: what`` for each import of a package in ``forbidden`` (by default the
    front ends and the daemon)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "kepubot":
                modules = [f"kepubot.{alias.name}" for alias in node.names]
            else:
                modules = [node.module]
        for module in modules:
            if any(module == top or module.startswith(top + ".") for top in forbidden):
                found.append((node.lineno, f"imports {module}"))
    return [f"{where}:{line}: {what}" for line, what in sorted(set(found))]


def _modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py") if "__pycache__" not in p.parts)


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_only_storage_touches_the_database() -> None:
    problems: list[str] = []
    for path in _modules(PACKAGE):
        if path.is_relative_to(STORAGE):
            continue
        problems += storage_violations(path.read_text(encoding="utf-8"), _relative(path))
    assert not problems, (
        "outside kepubot/queue/, use repositories and store.transaction()"
        " (docs/architecture.md §17):\n" + "\n".join(problems)
    )


def test_services_and_files_do_not_import_front_ends() -> None:
    problems: list[str] = []
    for under in LOWER:
        for path in _modules(under):
            problems += import_violations(path.read_text(encoding="utf-8"), _relative(path))
    assert not problems, (
        "kepubot/services/ and kepubot/files/ sit under the front ends and the daemon"
        " (docs/architecture.md §17):\n" + "\n".join(problems)
    )


ABOVE_STORAGE = (*FRONT_ENDS, "kepubot.services", "kepubot.files", "kepubot.app")


def test_storage_imports_nothing_above_it() -> None:
    problems: list[str] = []
    for path in _modules(STORAGE):
        source = path.read_text(encoding="utf-8")
        problems += import_violations(source, _relative(path), ABOVE_STORAGE)
    assert not problems, (
        "kepubot/queue/ is the storage layer under the services, files and front ends"
        " (docs/architecture.md §17):\n" + "\n".join(problems)
    )


def test_the_checks_see_each_kind_of_violation() -> None:
    """The checks find what they are for, each on its line, and pass what is allowed."""
    bad = (
        "from kepubot.queue.db import transaction\n"  # 1
        "def f(app, conn):\n"  # 2
        "    conn.execute('SELECT 1')\n"  # 3
        "    app.conn.executemany('X', [])\n"  # 4 (both)
        "    c = app.thread_conn()\n"  # 5
        "    other = app.store.connect()\n"  # 6
        "    with db.transaction(c):\n"  # 7
        "        pass\n"
        "    g = lambda conn: conn\n"  # 9
        "    return sqlite3.connect('x')\n"  # 10
    )
    found = storage_violations(bad, "m.py")
    assert [line.split(":")[1] for line in found] == [
        "1",
        "2",
        "3",
        "4",
        "4",
        "5",
        "6",
        "7",
        "9",
        "10",
    ], found
    assert all(line.startswith("m.py:") for line in found)
    fine = (
        "from kepubot.queue.db import PG_WRITER_LOCK\n"
        "def f(app, sock):\n"
        "    sock.connect(('host', 443))\n"
        "    with app.store.transaction():\n"
        "        return app.store.deliveries.get(7)\n"
    )
    assert storage_violations(fine, "ok.py") == []

    imports = (
        "from kepubot.web.app import App\n"
        "import kepubot.bot.dispatch\n"
        "from kepubot import cli\n"
        "from kepubot.webhooks import x\n"
        "from kepubot.queue import repos\n"
    )
    assert import_violations(imports, "s.py") == [
        "s.py:1: imports kepubot.web.app",
        "s.py:2: imports kepubot.bot.dispatch",
        "s.py:3: imports kepubot.cli",
    ]
    upward = "from kepubot.services.posts import get_post\nimport kepubot.app\n"
    assert import_violations(upward, "q.py", ABOVE_STORAGE) == [
        "q.py:1: imports kepubot.services.posts",
        "q.py:2: imports kepubot.app",
    ]
