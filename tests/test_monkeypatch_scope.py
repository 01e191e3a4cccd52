"""No test calls ``monkeypatch.undo()``.

The autouse fixtures of tests/conftest.py use the same ``monkeypatch``: ``backend`` sets
``KEPUBOT_DATABASE`` for the PostgreSQL run (tests/backends.py) and ``isolated`` sets the test
secrets and the working folder. ``undo()`` takes all of that back in the middle of the test,
so what follows would quietly run against an empty SQLite file in the repository folder
instead of the test's PostgreSQL database. Put back only what the test patched (set the
original again, or patch inside ``with monkeypatch.context():``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_only  # reads source files, opens no database

TESTS = Path(__file__).resolve().parent


def undo_calls(source: str) -> list[int]:
    """Lines of ``<name>.undo()`` calls where ``<name>`` is a monkeypatch fixture."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "undo"
            and isinstance(node.func.value, ast.Name)
            and "monkeypatch" in node.func.value.id
        ):
            lines.append(node.lineno)
    return lines


def test_the_scan_finds_an_undo_call() -> None:
    assert undo_calls("def test(monkeypatch):\n    monkeypatch.undo()\n") == [2]
    assert undo_calls("# monkeypatch.undo() would drop KEPUBOT_DATABASE\n") == []


def test_no_test_undoes_the_whole_monkeypatch() -> None:
    found = [
        f"{path.relative_to(TESTS.parent)}:{line}"
        for path in sorted(TESTS.rglob("*.py"))
        for line in undo_calls(path.read_text(encoding="utf-8"))
    ]
    assert found == [], f"monkeypatch.undo() also undoes the autouse fixtures: {found}"
