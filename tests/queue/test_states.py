"""The delivery state machine is data in kepubot/states.py, and the migrations keep frozen copies
of what they created (docs/delivery.md §2.4): these tests fail until a change to the live table
comes with the migration that lets the database allow it too."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kepubot import models, states
from kepubot.errors import InvalidTransition
from kepubot.queue import deliveries, migrations
from kepubot.queue.db import open_database

NOW = "2026-03-02T01:00:00+00:00"


def migrated(tmp_path: Path):  # type: ignore[no-untyped-def]
    return open_database(tmp_path / "states.db", NOW)


def test_the_database_allows_exactly_the_live_transitions(tmp_path: Path) -> None:
    conn = migrated(tmp_path)
    query = "SELECT from_state, to_state FROM delivery_transitions"
    rows = {(a, b) for a, b in conn.execute(query)}
    conn.close()
    assert rows == set(states.DELIVERY_TRANSITIONS), (
        "kepubot/states.py and the migrations disagree: add a migration that inserts the new"
        " transitions (docs/delivery.md §2.4)"
    )


def test_the_database_accepts_exactly_the_live_states(tmp_path: Path) -> None:
    conn = migrated(tmp_path)
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'deliveries'").fetchone()
    conn.close()
    match = re.search(r"state\s+TEXT NOT NULL CHECK \(state IN \(([^)]*)\)\)", sql)
    assert match, sql
    accepted = {s.strip().strip("'") for s in match.group(1).split(",")}
    assert accepted == set(states.DELIVERY_STATES)


def test_migrations_do_not_import_the_live_state_machine() -> None:
    tree = ast.parse(Path(migrations.__file__).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    assert not imported & {"kepubot.states", "kepubot.models", "kepubot.queue.deliveries"}


def test_each_transition_names_the_migration_that_allows_it() -> None:
    shipped = {version: body for version, _, body in migrations.MIGRATIONS}
    for t in states.TRANSITIONS:
        pair = (t.source, t.target)
        if t.migration == 1:
            assert pair in migrations.M001_DELIVERY_TRANSITIONS, t
            continue
        assert pair not in migrations.M001_DELIVERY_TRANSITIONS, t
        assert t.migration in shipped, f"{t}: there is no migration {t.migration}"
        body = shipped[t.migration]
        if isinstance(body, str):  # (a Python migration is checked by the database test above)
            assert f"('{t.source}', '{t.target}')" in body, t


def test_transitions_sql_is_what_migration_12_shipped() -> None:
    text = migrations.transitions_sql((("unknown", "processing"),))
    assert text.strip() == (
        "INSERT INTO delivery_transitions (from_state, to_state) VALUES\n"
        "  ('unknown', 'processing');"
    )


def test_the_python_check_reads_the_same_table() -> None:
    for source in states.DELIVERY_STATES:
        for target in states.DELIVERY_STATES:
            assert deliveries.allowed(source, target) == (
                (source, target) in states.DELIVERY_TRANSITIONS
            )
    assert models.DELIVERY_STATES is states.DELIVERY_STATES
    assert not deliveries.allowed("cancelled", "queued")
    with pytest.raises(InvalidTransition, match="cannot go from cancelled to queued"):
        deliveries._require("cancelled", "queued", 7)


def test_every_state_has_a_meaning_and_the_groups_name_real_states() -> None:
    assert set(states.STATE_MEANINGS) == set(states.DELIVERY_STATES)
    for group in (states.TERMINAL_DELIVERY_STATES, states.ACTIVE_STATES, states.CANCELLABLE_STATES):
        assert set(group) <= set(states.DELIVERY_STATES)
    assert not states.ALLOWED["cancelled"]


def test_every_state_has_a_label_people_read() -> None:
    from kepubot.i18n import LABELS

    missing = [s for s in states.DELIVERY_STATES if s not in LABELS]
    assert not missing, f"add these delivery states to kepubot/i18n.py LABELS: {missing}"
