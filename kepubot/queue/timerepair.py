"""Migration 10: stored times that no page or listing could show.

Before every accepted time was bounded (timeutil.FIRST_YEAR..LAST_YEAR), a post could be
scheduled for 9999-12-31, which no zone east of UTC can display, and a hand-edited database can
hold anything. This repair finds every such value in the columns a person's input reaches
(``posts.scheduled_at``, ``deliveries.due_at``, ``deliveries.not_before``) and sets it to the
nearest bound that every zone can show:

- later than LAST_YEAR, or not a stored time at all: ``HELD_UNTIL`` (the last day of
  LAST_YEAR). The post or delivery keeps its state and is simply held: what was meant to wait
  practically forever still waits, nothing is published because of the repair;
- earlier than FIRST_YEAR: ``EARLIEST`` (the second day of FIRST_YEAR), which is just as much
  in the past, so a delivery that was due stays due.

Each repaired value gets an audit row (``time.repaired``: the column, the value it had, the value
it has now), so a person sees what changed and can schedule the post again.
"""

from __future__ import annotations

import logging
import sqlite3

from kepubot.queue import audit
from kepubot.queue.db import dialect

log = logging.getLogger("kepubot.queue.timerepair")

# the stored form (timeutil.to_db) as a GLOB pattern
STORED = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z"
)
# the same as a POSIX regular expression (PostgreSQL)
STORED_RE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
# inside FIRST_YEAR..LAST_YEAR in every zone (offsets -12:00..+14:00)
EARLIEST = "1970-01-02T00:00:00.000Z"
HELD_UNTIL = "2100-12-31T00:00:00.000Z"
LOW = "1970-01-01T00:00:00.000Z"
HIGH = "2100-12-31T23:59:59.999Z"

COLUMNS = (
    ("posts", "scheduled_at", "post_id"),
    ("deliveries", "due_at", "delivery_id"),
    ("deliveries", "not_before", "delivery_id"),
)


def repair_out_of_range(conn: sqlite3.Connection, now_text: str) -> int:
    """Runs inside the migration's transaction. Returns how many values were repaired."""
    repaired = 0
    for table, column, ref in COLUMNS:
        post_column = "id" if table == "posts" else "post_id"
        if dialect(conn) == "postgresql":
            # columns are typed TEXT there: only the pattern and the range need checking
            rows = conn.execute(
                f"SELECT id, {post_column} AS post_id, {column} AS value,"
                f" ({column} ~ ? AND {column} < ?) AS low"
                f" FROM {table} WHERE {column} IS NOT NULL"
                f" AND ({column} !~ ? OR {column} < ? OR {column} > ?) ORDER BY id",
                (STORED_RE, LOW, STORED_RE, LOW, HIGH),
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT id, {post_column} AS post_id, {column} AS value,"
                f" (typeof({column}) = 'text' AND {column} GLOB ? AND {column} < ?) AS low"
                f" FROM {table} WHERE {column} IS NOT NULL"
                f" AND (typeof({column}) != 'text' OR {column} NOT GLOB ? OR {column} < ?"
                f" OR {column} > ?) ORDER BY id",
                (STORED, LOW, STORED, LOW, HIGH),
            ).fetchall()
        for row in rows:
            text = str(row["value"])
            low = bool(row["low"])
            new = EARLIEST if low else HELD_UNTIL
            conn.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (new, row["id"]))
            audit.append(
                conn,
                at=now_text,
                actor="kepubot-migration",
                action="time.repaired",
                post_id=row["post_id"],
                delivery_id=row["id"] if ref == "delivery_id" else None,
                detail={
                    "field": f"{table}.{column}",
                    "was": text,
                    "now": new,
                    "reason": "out of range (1970-2100) or unreadable; "
                    + ("still in the past" if low else "held; schedule it again"),
                },
            )
            repaired += 1
    if repaired:
        log.warning(
            "stored times out of range or unreadable: %d, each set to the nearest bound"
            " (held until %s, or %s); `kepubot audit` lists them as time.repaired",
            repaired,
            HELD_UNTIL,
            EARLIEST,
        )
    return repaired
