"""Numbered, append-only migrations. Never edit a shipped one; add the next number.

Two backends (docs/architecture.md §11.2). Each migration is SQLite text (or a
``PythonMigration``) in ``MIGRATIONS``; its PostgreSQL form is found by ``pg_form``:

- ``PG[number]`` when present (see the end of this file): PostgreSQL text, run as it stands
  (plpgsql triggers, ``$$`` bodies allowed), or a ``PythonMigration`` (whose function may also
  branch on ``kepubot.queue.db.dialect(conn)``);
- otherwise the SQLite text passed through ``pg_ddl``, a mechanical translation of plain DDL
  (INTEGER -> BIGINT, INTEGER PRIMARY KEY -> identity, REAL -> DOUBLE PRECISION, TEXT ->
  TEXT COLLATE "C" so that ISO times and names order byte-wise as in SQLite, no WITHOUT ROWID).
  Text with a trigger or a SQLite-only function (json_each, INSERT OR ..., randomblob,
  strftime, julianday, datetime(), GLOB, typeof) is refused: ``db.migrate`` stops with an error
  naming the migration, so a missing PostgreSQL form can never pass silently.

To add migration N with SQLite-only parts, write both and register the second with
``PG[N] = "..."`` below the ``MIGRATIONS`` list (tests run every migration on both).
"""

from __future__ import annotations

import re
from typing import Any

# Frozen copies (docs/delivery.md §2.4): what migration 1 created, exactly as it shipped. The
# live state machine is kepubot/states.py; migrations never import it, so changing it never
# changes a migration that has already run somewhere. A later state or transition is added
# there and in a new migration (as migration 12 added unknown -> processing).
M001_DELIVERY_STATES: tuple[str, ...] = (
    "pending",
    "queued",
    "claimed",
    "sending",
    "processing",
    "unknown",
    "needs_attention",
    "published",
    "failed",
    "cancelled",
)
M001_DELIVERY_TRANSITIONS: tuple[tuple[str, str], ...] = (
    ("pending", "queued"),
    ("pending", "cancelled"),
    ("queued", "claimed"),
    ("queued", "pending"),
    ("queued", "cancelled"),
    ("claimed", "sending"),
    ("claimed", "queued"),
    ("claimed", "cancelled"),
    ("sending", "published"),
    ("sending", "processing"),
    ("sending", "queued"),
    ("sending", "failed"),
    ("sending", "unknown"),
    ("processing", "published"),
    ("processing", "failed"),
    ("processing", "unknown"),
    ("unknown", "published"),
    ("unknown", "queued"),
    ("unknown", "needs_attention"),
    ("needs_attention", "published"),
    ("needs_attention", "queued"),
    ("failed", "queued"),
)


def transitions_sql(pairs: tuple[tuple[str, str], ...]) -> str:
    """``INSERT INTO delivery_transitions`` of these (from, to) pairs: a migration that allows
    new transitions passes its own literal pairs (a frozen copy), never the live table."""
    rows = ",\n".join(f"  ('{a}', '{b}')" for a, b in pairs)
    return f"INSERT INTO delivery_transitions (from_state, to_state) VALUES\n{rows};\n"


def _states_sql(states: tuple[str, ...]) -> str:
    return ", ".join(f"'{s}'" for s in states)


def m001_initial() -> str:
    transitions = ",\n".join(f"  ('{a}', '{b}')" for a, b in M001_DELIVERY_TRANSITIONS)
    return f"""
CREATE TABLE posts (
  id            INTEGER PRIMARY KEY,
  title         TEXT NOT NULL,
  body          TEXT NOT NULL,
  summary       TEXT NOT NULL DEFAULT '',
  link          TEXT NOT NULL DEFAULT '',
  tags          TEXT NOT NULL DEFAULT '[]',
  media         TEXT NOT NULL DEFAULT '[]',
  channels      TEXT NOT NULL DEFAULT '[]',
  variants      TEXT NOT NULL DEFAULT '{{}}',
  author        TEXT NOT NULL,
  state         TEXT NOT NULL DEFAULT 'draft'
                CHECK (state IN ('draft', 'in_review', 'approved', 'rejected', 'cancelled')),
  review_round  INTEGER NOT NULL DEFAULT 0,
  review_level  INTEGER NOT NULL DEFAULT 0,
  scheduled_at  TEXT,
  next_slot     INTEGER NOT NULL DEFAULT 0,
  content_hash  TEXT NOT NULL,
  approved_hash TEXT,
  created_at    TEXT NOT NULL,
  updated_at    TEXT NOT NULL,
  CHECK (state != 'approved' OR approved_hash = content_hash)
);
CREATE INDEX posts_state ON posts(state, id);
CREATE INDEX posts_author ON posts(author, id);

CREATE TABLE post_channels (
  post_id INTEGER NOT NULL REFERENCES posts(id),
  channel TEXT NOT NULL,
  PRIMARY KEY (post_id, channel)
) WITHOUT ROWID;
CREATE INDEX post_channels_channel ON post_channels(channel, post_id);

CREATE TABLE deliveries (
  id              INTEGER PRIMARY KEY,
  post_id         INTEGER NOT NULL REFERENCES posts(id),
  channel         TEXT NOT NULL,
  state           TEXT NOT NULL CHECK (state IN ({_states_sql(M001_DELIVERY_STATES)})),
  due_at          TEXT NOT NULL,
  not_before      TEXT NOT NULL,
  attempts        INTEGER NOT NULL DEFAULT 0,
  lease_owner     TEXT,
  lease_until     TEXT,
  lease_version   INTEGER NOT NULL DEFAULT 0,
  progress        TEXT NOT NULL DEFAULT '{{}}',
  content_hash    TEXT NOT NULL,
  remote_id       TEXT,
  remote_url      TEXT,
  error_kind      TEXT,
  last_error      TEXT,
  published_at    TEXT,
  next_metrics_at TEXT,
  created_at      TEXT NOT NULL,
  updated_at      TEXT NOT NULL,
  UNIQUE (post_id, channel),
  CHECK (state NOT IN ('claimed', 'sending') OR (lease_owner IS NOT NULL AND lease_until IS NOT NULL)),
  CHECK (state != 'published' OR published_at IS NOT NULL)
);
CREATE INDEX deliveries_due ON deliveries(state, not_before, id);
CREATE INDEX deliveries_channel ON deliveries(channel, state, due_at);
CREATE INDEX deliveries_lease ON deliveries(state, lease_until);

CREATE TABLE delivery_transitions (
  from_state TEXT NOT NULL,
  to_state   TEXT NOT NULL,
  PRIMARY KEY (from_state, to_state)
) WITHOUT ROWID;
INSERT INTO delivery_transitions (from_state, to_state) VALUES
{transitions};

CREATE TRIGGER deliveries_transition_guard BEFORE UPDATE OF state ON deliveries
WHEN NEW.state != OLD.state AND NOT EXISTS (
  SELECT 1 FROM delivery_transitions WHERE from_state = OLD.state AND to_state = NEW.state)
BEGIN
  SELECT RAISE(ABORT, 'delivery state change not allowed by the state machine');
END;
CREATE TRIGGER deliveries_no_delete BEFORE DELETE ON deliveries
BEGIN
  SELECT RAISE(ABORT, 'deliveries are never deleted');
END;
CREATE TRIGGER transitions_frozen_update BEFORE UPDATE ON delivery_transitions
BEGIN
  SELECT RAISE(ABORT, 'the delivery state machine is fixed by migrations');
END;

CREATE TABLE attempts (
  id          INTEGER PRIMARY KEY,
  delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
  number      INTEGER NOT NULL,
  worker      TEXT NOT NULL,
  started_at  TEXT NOT NULL,
  finished_at TEXT,
  outcome     TEXT,
  error       TEXT,
  UNIQUE (delivery_id, number)
);
-- every sending row has exactly one open attempt: at most one here, the code opens it
CREATE UNIQUE INDEX attempts_one_open ON attempts(delivery_id) WHERE finished_at IS NULL;

CREATE TABLE reviews (
  id           INTEGER PRIMARY KEY,
  post_id      INTEGER NOT NULL REFERENCES posts(id),
  round        INTEGER NOT NULL,
  level        INTEGER NOT NULL,
  reviewer     TEXT NOT NULL,
  decision     TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
  comment      TEXT NOT NULL DEFAULT '',
  content_hash TEXT NOT NULL,
  at           TEXT NOT NULL
);
CREATE INDEX reviews_post ON reviews(post_id, id);
CREATE UNIQUE INDEX reviews_one_approval_per_level
  ON reviews(post_id, round, level) WHERE decision = 'approve';
CREATE TRIGGER reviews_not_by_author BEFORE INSERT ON reviews
WHEN NEW.reviewer = (SELECT author FROM posts WHERE id = NEW.post_id)
BEGIN
  SELECT RAISE(ABORT, 'the author of a post never reviews it');
END;
CREATE TRIGGER reviews_one_level_per_person BEFORE INSERT ON reviews
WHEN NEW.decision = 'approve' AND EXISTS (
  SELECT 1 FROM reviews WHERE post_id = NEW.post_id AND reviewer = NEW.reviewer
     AND decision = 'approve' AND level != NEW.level)
BEGIN
  SELECT RAISE(ABORT, 'one person approves at most one level of a post');
END;
CREATE TRIGGER reviews_no_update BEFORE UPDATE ON reviews
BEGIN
  SELECT RAISE(ABORT, 'reviews are never changed');
END;

CREATE TABLE metrics (
  id           INTEGER PRIMARY KEY,
  delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
  collected_at TEXT NOT NULL,
  views        INTEGER,
  likes        INTEGER,
  comments     INTEGER,
  shares       INTEGER,
  favorites    INTEGER,
  raw          TEXT NOT NULL DEFAULT '{{}}'
);
CREATE INDEX metrics_delivery ON metrics(delivery_id, collected_at);
-- the newest snapshot per delivery, kept by the collector, so reports never scan history
CREATE TABLE metrics_latest (
  delivery_id  INTEGER PRIMARY KEY REFERENCES deliveries(id),
  metrics_id   INTEGER NOT NULL REFERENCES metrics(id),
  collected_at TEXT NOT NULL,
  views        INTEGER,
  likes        INTEGER,
  comments     INTEGER,
  shares       INTEGER,
  favorites    INTEGER
);

-- tokens obtained at run time (never the app secrets, which come from the environment)
CREATE TABLE credentials (
  channel            TEXT PRIMARY KEY,
  access_token       TEXT,
  refresh_token      TEXT,
  expires_at         TEXT,
  refresh_expires_at TEXT,
  lease_owner        TEXT,
  lease_until        TEXT,
  updated_at         TEXT NOT NULL
);

CREATE TABLE audit (
  id          INTEGER PRIMARY KEY,
  at          TEXT NOT NULL,
  actor       TEXT NOT NULL,
  action      TEXT NOT NULL,
  post_id     INTEGER,
  delivery_id INTEGER,
  detail      TEXT NOT NULL DEFAULT '{{}}',
  prev_hash   TEXT NOT NULL,
  hash        TEXT NOT NULL
);
CREATE INDEX audit_post ON audit(post_id, id);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the audit log is append-only');
END;
"""


M002_DAEMON = """
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
-- identifies this database in idempotency keys sent to receivers
INSERT INTO meta (key, value) VALUES ('instance', lower(hex(randomblob(6))));

-- per channel account: rate-limit bucket and circuit breaker, shared by every daemon
CREATE TABLE channel_state (
  channel       TEXT PRIMARY KEY,
  tokens        REAL,
  tokens_at     TEXT,
  blocked_until TEXT,
  breaker       TEXT NOT NULL DEFAULT 'closed' CHECK (breaker IN ('closed', 'open', 'half_open')),
  failures      INTEGER NOT NULL DEFAULT 0,
  opened        INTEGER NOT NULL DEFAULT 0,
  open_until    TEXT,
  reason        TEXT,
  updated_at    TEXT NOT NULL
);

CREATE TABLE daemons (
  worker       TEXT PRIMARY KEY,
  host         TEXT NOT NULL,
  pid          INTEGER NOT NULL,
  started_at   TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL,
  stopped_at   TEXT
);

-- what was alerted, so an alert repeats at most once per window
CREATE TABLE alerts (
  id      INTEGER PRIMARY KEY,
  key     TEXT NOT NULL,
  at      TEXT NOT NULL,
  level   TEXT NOT NULL,
  message TEXT NOT NULL
);
CREATE INDEX alerts_key ON alerts(key, at);

ALTER TABLE deliveries ADD COLUMN reconcile_tries INTEGER NOT NULL DEFAULT 0;
"""


# Combined filters of `post list` (state + channel, state + author) get an index holding both
# keys; the claim's index carries the channel so skipping a busy channel costs no row lookup.
M003_LIST_INDEXES = """
ALTER TABLE post_channels ADD COLUMN state TEXT NOT NULL DEFAULT 'draft';
UPDATE post_channels SET state = (SELECT state FROM posts WHERE posts.id = post_channels.post_id);
CREATE INDEX post_channels_channel_state ON post_channels(channel, state, post_id);
CREATE TRIGGER post_channels_state_on_insert AFTER INSERT ON post_channels
BEGIN
  UPDATE post_channels SET state = (SELECT state FROM posts WHERE id = NEW.post_id)
   WHERE post_id = NEW.post_id AND channel = NEW.channel;
END;
CREATE TRIGGER post_channels_follow_state AFTER UPDATE OF state ON posts
WHEN NEW.state != OLD.state
BEGIN
  UPDATE post_channels SET state = NEW.state WHERE post_id = NEW.id;
END;
CREATE INDEX posts_state_author ON posts(state, author, id);
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries(state, not_before, id, channel);
"""

# A breaker opened by refused credentials remembers a fingerprint of the credentials it saw,
# so that a daemon started with new ones resumes the channel at once.
M004_AUTH_FINGERPRINT = """
ALTER TABLE channel_state ADD COLUMN auth_fingerprint TEXT;
"""

# Metric collection: each published delivery walks a cadence of collection points.
M005_METRICS = """
ALTER TABLE deliveries ADD COLUMN metrics_step INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_metrics_due ON deliveries(next_metrics_at, channel)
  WHERE state = 'published' AND next_metrics_at IS NOT NULL;
-- every way into `published` (sent, polled, reconciled, resolved by a person) starts the cadence
CREATE TRIGGER deliveries_start_metrics AFTER UPDATE OF state ON deliveries
WHEN NEW.state = 'published' AND OLD.state != 'published' AND NEW.next_metrics_at IS NULL
BEGIN
  UPDATE deliveries SET next_metrics_at = NEW.published_at WHERE id = NEW.id;
END;
UPDATE deliveries SET next_metrics_at = published_at
 WHERE state = 'published' AND next_metrics_at IS NULL;
CREATE INDEX metrics_latest_collected ON metrics_latest(collected_at);
CREATE TABLE account_metrics (
  channel          TEXT NOT NULL,
  day              TEXT NOT NULL,
  followers        INTEGER,
  followers_gained INTEGER,
  raw              TEXT NOT NULL DEFAULT '{}',
  collected_at     TEXT NOT NULL,
  PRIMARY KEY (channel, day)
) WITHOUT ROWID;
"""

# Reports select deliveries published in a period.
M006_REPORTS = """
CREATE INDEX deliveries_published ON deliveries(state, published_at);
"""

# Deliveries that failed or need a person, by due time (reports), without a full scan.
M007_TROUBLE_INDEX = """
CREATE INDEX deliveries_state_due ON deliveries(state, due_at);
"""

# The browser console: password hashes (scrypt, never the passwords) and failed sign-ins for
# rate limiting (in SQLite so that every thread and process of the console shares the count);
# the calendar reads deliveries by due time across states.
M008_WEB = """
CREATE TABLE user_passwords (
  user       TEXT PRIMARY KEY,
  hash       TEXT NOT NULL,
  updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE sign_in_failures (
  id  INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  at  TEXT NOT NULL
);
CREATE INDEX sign_in_failures_key ON sign_in_failures(key, at);
CREATE INDEX deliveries_due_any ON deliveries(due_at);
CREATE INDEX posts_scheduled ON posts(scheduled_at) WHERE scheduled_at IS NOT NULL;
"""

# Posts by tag without walking every post: one row per (tag, post), kept in step by triggers
# so that every way a post is written (command line, console, import) keeps it right.
M009_POST_TAGS = """
CREATE TABLE post_tags (
  tag     TEXT NOT NULL,
  post_id INTEGER NOT NULL,
  PRIMARY KEY (tag, post_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO post_tags (tag, post_id)
  SELECT j.value, p.id FROM posts p, json_each(p.tags) j;
CREATE TRIGGER post_tags_on_insert AFTER INSERT ON posts
BEGIN
  INSERT OR IGNORE INTO post_tags (tag, post_id) SELECT value, NEW.id FROM json_each(NEW.tags);
END;
CREATE TRIGGER post_tags_on_update AFTER UPDATE OF tags ON posts
WHEN NEW.tags IS NOT OLD.tags
BEGIN
  DELETE FROM post_tags WHERE post_id = NEW.id;
  INSERT OR IGNORE INTO post_tags (tag, post_id) SELECT value, NEW.id FROM json_each(NEW.tags);
END;
CREATE TRIGGER post_tags_on_delete AFTER DELETE ON posts
BEGIN
  DELETE FROM post_tags WHERE post_id = OLD.id;
END;
"""

# Console sign-ins kept on the server, so that signing out, a new password or an admin's
# "sign out everywhere" ends a session at once (a copied cookie is worth nothing after that).
# Only a hash of the token in the cookie is stored.
M011_CONSOLE_SESSIONS = """
CREATE TABLE console_sessions (
  token_hash TEXT PRIMARY KEY,
  user       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_user ON console_sessions(user);
CREATE INDEX console_sessions_expires ON console_sessions(expires_at);
"""

# Reconciliation may find that a request whose answer was lost is a job the platform is still
# working on (a WeChat publish_id, a mass send awaiting its administrator): the delivery then
# goes to processing and is polled, instead of being sent again or handed to a person.
M012_UNKNOWN_TO_PROCESSING = """
INSERT INTO delivery_transitions (from_state, to_state) VALUES ('unknown', 'processing');
"""

# Posts with the same title and body are refused (issue 11 item 15): that check looks posts
# up by title on every post written, which must not walk every post.
M014_POSTS_TITLE = """
CREATE INDEX posts_title ON posts(title);
"""

# Separation of duties per review round (issue 13 §2, docs/architecture.md §4.2): one person
# approves at most one level of a post in one round; after an edit sends the post back to
# review (a new round), the same people may review it again.
M016_REVIEW_ROUNDS = """
DROP TRIGGER reviews_one_level_per_person;
CREATE TRIGGER reviews_one_level_per_person BEFORE INSERT ON reviews
WHEN NEW.decision = 'approve' AND EXISTS (
  SELECT 1 FROM reviews WHERE post_id = NEW.post_id AND round = NEW.round
     AND reviewer = NEW.reviewer AND decision = 'approve' AND level != NEW.level)
BEGIN
  SELECT RAISE(ABORT, 'one person approves at most one level of a post in one review round');
END;
"""

# Sources of a post (issue 13 §5, docs/architecture.md §14): a JSON list of {title, url} or
# {title, doi}, like tags and media. Standard SQL, so PostgreSQL runs it as it is.
M017_POST_SOURCES = """
ALTER TABLE posts ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';
"""


# Where a metric snapshot came from (issue 14, docs/delivery.md §17): collected from the
# platform, imported from an outlet's data export, or entered by hand. Standard SQL.
M022_METRIC_SOURCE = """
ALTER TABLE metrics ADD COLUMN source TEXT NOT NULL DEFAULT 'collected';
ALTER TABLE metrics_latest ADD COLUMN source TEXT NOT NULL DEFAULT 'collected';
"""


# Nothing on SQLite: its daemons poll (one host, nobody to wake). PostgreSQL: PG[23].
M023_NOTIFY_DUE = """
-- SQLite: daemons poll; nothing to add
"""


# A paused post (issue 16, docs/delivery.md §18): its deliveries are not claimed while it has a
# row here. PostgreSQL: PG[25] (the key is a post's id, not an identity; resuming wakes daemons).
M025_POST_PAUSES = """
CREATE TABLE post_pauses (post_id INTEGER PRIMARY KEY REFERENCES posts(id),
  reason TEXT NOT NULL, paused_by TEXT NOT NULL, paused_at TEXT NOT NULL);
"""


# One snapshot per delivery and collection point (docs/architecture.md §3.5): the collector
# records the point a snapshot answers, and a second collector that claimed the same point (a
# pass that outlasted the claim's hold, a host whose clock runs ahead) stores nothing. NULL
# for figures not tied to a point (collected by hand, imported, typed in), which never clash;
# the snapshots before this migration are all NULL, so none has to be merged. Standard SQL:
# PostgreSQL runs it through pg_ddl.
M026_METRICS_POINT = """
ALTER TABLE metrics ADD COLUMN point_at TEXT;
CREATE UNIQUE INDEX metrics_one_per_point ON metrics(delivery_id, point_at)
  WHERE point_at IS NOT NULL;
"""

# The calendar counts a crowded period from two index ranges without reading a table row
# (kepubot/queue/calendar.py, docs/operations.md §12): deliveries_published gets the columns a
# count and its filters read (channel, post_id for a tag's post_tags probe; same name, so the
# reports' INDEXED BY still finds its range), and the deliveries not published nor cancelled
# get a partial index of their own, so the due half of a period walks only those (a few
# hundred) instead of every delivery due in it. deliveries_published_hour holds the published
# ones in (hour, channel) order, so counting them per hour and channel needs no sort.
M027_CALENDAR_INDEXES = """
DROP INDEX deliveries_published;
CREATE INDEX deliveries_published ON deliveries(state, published_at, channel, post_id);
CREATE INDEX deliveries_due_open ON deliveries(due_at, channel, state, post_id)
  WHERE state NOT IN ('published', 'cancelled');
CREATE INDEX deliveries_published_hour
  ON deliveries(state, substr(published_at, 1, 13), channel, published_at, post_id);
"""


class PythonMigration:
    """A migration that needs Python (e.g. to append hash-chained audit rows); ``db.migrate``
    calls it inside the migration transaction. Its repr is stable (the bench keys on it)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, conn: Any, now_text: str) -> None:
        if self.name == "out_of_range_times":
            from kepubot.queue.timerepair import repair_out_of_range

            repair_out_of_range(conn, now_text)
            return
        if self.name == "retraction_and_pause":
            from kepubot.queue.retraction import migrate_18

            migrate_18(conn, now_text)
            return
        if self.name == "awaiting_person":
            from kepubot.queue.assisted import migrate_24

            migrate_24(conn, now_text)  # branches on the dialect itself
            return
        raise RuntimeError(f"unknown Python migration {self.name!r}")

    def __repr__(self) -> str:
        return f"PythonMigration({self.name!r})"


# Times no zone could show (a post scheduled for 9999-12-31, a hand-edited row) are set to the
# nearest bound and audited; see kepubot/queue/timerepair.py.
M010_OUT_OF_RANGE_TIMES = PythonMigration("out_of_range_times")

MIGRATIONS: list[tuple[int, str, str | PythonMigration]] = [
    (1, "initial", m001_initial()),
    (2, "daemon", M002_DAEMON),
    (3, "list_indexes", M003_LIST_INDEXES),
    (4, "auth_fingerprint", M004_AUTH_FINGERPRINT),
    (5, "metrics", M005_METRICS),
    (6, "reports", M006_REPORTS),
    (7, "trouble_index", M007_TROUBLE_INDEX),
    (8, "web", M008_WEB),
    (9, "post_tags", M009_POST_TAGS),
    (10, "out_of_range_times", M010_OUT_OF_RANGE_TIMES),
    (11, "console_sessions", M011_CONSOLE_SESSIONS),
    (12, "unknown_to_processing", M012_UNKNOWN_TO_PROCESSING),
    (14, "posts_title", M014_POSTS_TITLE),  # keep the list in number order (13 goes above)
    (16, "review_rounds", M016_REVIEW_ROUNDS),
    (17, "post_sources", M017_POST_SOURCES),
    # retraction as a delivery kind, the retracted state, pauses, corrections (issue 13 §6, §7)
    (18, "retraction_and_pause", PythonMigration("retraction_and_pause")),
    # where a metric snapshot came from: collected, imported, manual (issue 14)
    (22, "metric_source", M022_METRIC_SOURCE),
    # PostgreSQL wakes idle daemons with NOTIFY (docs/architecture.md §11.5); SQLite polls
    (23, "notify_due", M023_NOTIFY_DUE),
    # awaiting_person, a delivery state of its own (issue 14, docs/delivery.md §17)
    (24, "awaiting_person", PythonMigration("awaiting_person")),
    # paused posts: the claim skips a post with a row here (issue 16, docs/delivery.md §18)
    (25, "post_pauses", M025_POST_PAUSES),
    # the collection point of a snapshot, one snapshot per point (docs/architecture.md §3.5)
    (26, "metrics_point", M026_METRICS_POINT),
    # covering indexes for the calendar's counts (docs/operations.md §12)
    (27, "calendar_indexes", M027_CALENDAR_INDEXES),
]


# --- PostgreSQL forms (docs/architecture.md §11.2) -------------------------------------------

_SQLITE_ONLY = re.compile(
    r"CREATE\s+TRIGGER|DROP\s+TRIGGER|json_each|json_extract|INSERT\s+OR\b|randomblob|strftime"
    r"|julianday|\bdatetime\s*\(|\bGLOB\b|typeof\s*\(|PRAGMA",
    re.IGNORECASE,
)


class MissingPgForm(RuntimeError):
    pass


def pg_ddl(sql: str) -> str:
    """Plain SQLite DDL as PostgreSQL DDL (see the module docstring for what is translated)."""
    match = _SQLITE_ONLY.search(sql)
    if match is not None:
        raise MissingPgForm(
            f"uses {match.group(0)!r}, which PostgreSQL does not have; give it a PG[...] form"
        )
    out = re.sub(r"\bWITHOUT\s+ROWID\b", "", sql)
    out = re.sub(
        r"\bINTEGER\s+PRIMARY\s+KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", out
    )
    out = re.sub(r"\bINTEGER\b", "BIGINT", out)
    out = re.sub(r"\bREAL\b", "DOUBLE PRECISION", out)
    out = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', out)
    return out


def _without_triggers(sql: str) -> str:
    """The SQLite text minus its CREATE TRIGGER ... END; blocks (their plpgsql forms follow)."""
    return re.sub(r"CREATE TRIGGER .*?\nEND;\n", "", sql, flags=re.DOTALL)


def split_pg(script: str) -> list[str]:
    """PostgreSQL statements of a migration: split at ``;`` outside quotes and ``$$`` bodies."""
    statements: list[str] = []
    buffer: list[str] = []
    i, n = 0, len(script)
    while i < n:
        ch = script[i]
        if ch == "'":
            end = script.find("'", i + 1)
            end = n if end < 0 else end + 1
            buffer.append(script[i:end])
            i = end
        elif script.startswith("$$", i):
            end = script.find("$$", i + 2)
            end = n if end < 0 else end + 2
            buffer.append(script[i:end])
            i = end
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end
        elif ch == ";":
            statement = "".join(buffer).strip()
            if statement:
                statements.append(statement)
            buffer = []
            i += 1
        else:
            buffer.append(ch)
            i += 1
    if "".join(buffer).strip():
        statements.append("".join(buffer).strip())
    return statements


def pg_form(version: int, name: str, sql: str | PythonMigration) -> str | PythonMigration:
    """The PostgreSQL form of migration ``version`` (``PG`` entry, or translated plain DDL)."""
    if version in PG:
        return PG[version]
    if isinstance(sql, PythonMigration):
        return sql  # its function branches on the dialect itself
    try:
        return pg_ddl(sql)
    except MissingPgForm as exc:
        from kepubot.errors import StoreError

        raise StoreError(
            f"migration {version:03d}_{name} has no PostgreSQL form: it {exc}"
            " (kepubot/queue/migrations.py, PG)"
        ) from None


def _refusal(trigger: str, table: str, event: str, message: str) -> str:
    """A plpgsql trigger that refuses the statement with ``message``."""
    return f"""
CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '{message}';
END $$;
CREATE TRIGGER {trigger} BEFORE {event} ON {table} FOR EACH ROW EXECUTE FUNCTION {trigger}();
"""


PG: dict[int, Any] = {}  # str, PythonMigration or a function (conn, now_text)

PG[1] = (
    pg_ddl(_without_triggers(m001_initial()))
    + """
CREATE FUNCTION deliveries_transition_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.state <> OLD.state AND NOT EXISTS (
      SELECT 1 FROM delivery_transitions WHERE from_state = OLD.state AND to_state = NEW.state)
  THEN
    RAISE EXCEPTION 'delivery state change not allowed by the state machine';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER deliveries_transition_guard BEFORE UPDATE OF state ON deliveries
  FOR EACH ROW EXECUTE FUNCTION deliveries_transition_guard();

CREATE FUNCTION reviews_not_by_author() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.reviewer = (SELECT author FROM posts WHERE id = NEW.post_id) THEN
    RAISE EXCEPTION 'the author of a post never reviews it';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER reviews_not_by_author BEFORE INSERT ON reviews
  FOR EACH ROW EXECUTE FUNCTION reviews_not_by_author();

CREATE FUNCTION reviews_one_level_per_person() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.decision = 'approve' AND EXISTS (
      SELECT 1 FROM reviews WHERE post_id = NEW.post_id AND reviewer = NEW.reviewer
         AND decision = 'approve' AND level <> NEW.level) THEN
    RAISE EXCEPTION 'one person approves at most one level of a post';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER reviews_one_level_per_person BEFORE INSERT ON reviews
  FOR EACH ROW EXECUTE FUNCTION reviews_one_level_per_person();
"""
    + _refusal("deliveries_no_delete", "deliveries", "DELETE", "deliveries are never deleted")
    + _refusal(
        "transitions_frozen_update",
        "delivery_transitions",
        "UPDATE",
        "the delivery state machine is fixed by migrations",
    )
    + _refusal("reviews_no_update", "reviews", "UPDATE", "reviews are never changed")
    + _refusal("audit_no_update", "audit", "UPDATE", "the audit log is append-only")
    + _refusal("audit_no_delete", "audit", "DELETE", "the audit log is append-only")
)

PG[2] = pg_ddl(M002_DAEMON.replace("lower(hex(randomblob(6)))", "'@instance@'")).replace(
    "'@instance@'", "substr(replace(gen_random_uuid()::text, '-', ''), 1, 12)"
)

PG[3] = (
    pg_ddl(_without_triggers(M003_LIST_INDEXES))
    + """
CREATE FUNCTION post_channels_state_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.state := (SELECT state FROM posts WHERE id = NEW.post_id);
  RETURN NEW;
END $$;
CREATE TRIGGER post_channels_state_on_insert BEFORE INSERT ON post_channels
  FOR EACH ROW EXECUTE FUNCTION post_channels_state_on_insert();
CREATE FUNCTION post_channels_follow_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE post_channels SET state = NEW.state WHERE post_id = NEW.id;
  RETURN NULL;
END $$;
CREATE TRIGGER post_channels_follow_state AFTER UPDATE OF state ON posts
  FOR EACH ROW WHEN (NEW.state <> OLD.state) EXECUTE FUNCTION post_channels_follow_state();
"""
)

PG[5] = (
    pg_ddl(_without_triggers(M005_METRICS))
    + """
CREATE FUNCTION deliveries_start_metrics() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.next_metrics_at := NEW.published_at;
  RETURN NEW;
END $$;
CREATE TRIGGER deliveries_start_metrics BEFORE UPDATE OF state ON deliveries
  FOR EACH ROW WHEN (NEW.state = 'published' AND OLD.state <> 'published'
                     AND NEW.next_metrics_at IS NULL)
  EXECUTE FUNCTION deliveries_start_metrics();
"""
)

# "user" is a reserved word in PostgreSQL (CURRENT_USER); the column is quoted there, and the
# queries quote it on both backends.
PG[8] = pg_ddl(M008_WEB.replace("  user       TEXT", '  "user"     TEXT'))

PG[9] = """
CREATE TABLE post_tags (
  tag     TEXT COLLATE "C" NOT NULL,
  post_id BIGINT NOT NULL,
  PRIMARY KEY (tag, post_id)
);
INSERT INTO post_tags (tag, post_id)
  SELECT j.value, p.id FROM posts p, json_array_elements_text(CAST(p.tags AS json)) j(value)
  ON CONFLICT DO NOTHING;
CREATE FUNCTION post_tags_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    DELETE FROM post_tags WHERE post_id = OLD.id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO post_tags (tag, post_id)
      SELECT j.value, NEW.id FROM json_array_elements_text(CAST(NEW.tags AS json)) j(value)
      ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER post_tags_on_insert AFTER INSERT ON posts
  FOR EACH ROW EXECUTE FUNCTION post_tags_follow();
CREATE TRIGGER post_tags_on_update AFTER UPDATE OF tags ON posts
  FOR EACH ROW WHEN (NEW.tags IS DISTINCT FROM OLD.tags) EXECUTE FUNCTION post_tags_follow();
CREATE TRIGGER post_tags_on_delete AFTER DELETE ON posts
  FOR EACH ROW EXECUTE FUNCTION post_tags_follow();
"""

PG[11] = pg_ddl(
    M011_CONSOLE_SESSIONS.replace("  user       TEXT", '  "user"     TEXT').replace(
        "console_sessions(user)", 'console_sessions("user")'
    )
)

PG[16] = """
DROP TRIGGER reviews_one_level_per_person ON reviews;
CREATE OR REPLACE FUNCTION reviews_one_level_per_person() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.decision = 'approve' AND EXISTS (
      SELECT 1 FROM reviews WHERE post_id = NEW.post_id AND round = NEW.round
         AND reviewer = NEW.reviewer AND decision = 'approve' AND level <> NEW.level) THEN
    RAISE EXCEPTION 'one person approves at most one level of a post in one review round';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER reviews_one_level_per_person BEFORE INSERT ON reviews
  FOR EACH ROW EXECUTE FUNCTION reviews_one_level_per_person();
"""


def _pg_018(conn: Any, now_text: str) -> None:
    """Migration 18 (kepubot/queue/retraction.py ``migrate_18``) on PostgreSQL: the state
    CHECK is replaced by name instead of editing SQLite's schema text."""
    from kepubot.queue.retraction import M018_TRANSITIONS  # a frozen literal of migration 18

    states = _states_sql((*M001_DELIVERY_STATES, "retracted"))
    rows = ", ".join(f"('{a}', '{b}')" for a, b in M018_TRANSITIONS)
    script = f"""
ALTER TABLE deliveries ADD COLUMN kind TEXT COLLATE "C" NOT NULL DEFAULT 'publish'
  CHECK (kind IN ('publish', 'retract'));
ALTER TABLE deliveries ADD COLUMN retract_reason TEXT COLLATE "C";
ALTER TABLE deliveries ADD COLUMN retracted_at TEXT COLLATE "C";
ALTER TABLE posts ADD COLUMN correction_of BIGINT REFERENCES posts(id);
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check CHECK (state IN ({states}));
INSERT INTO delivery_transitions (from_state, to_state) VALUES {rows};
CREATE FUNCTION deliveries_leave_published_only_to_retract() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'delivery state change not allowed by the state machine: a published delivery is only left by a retraction';
END $$;
CREATE TRIGGER deliveries_leave_published_only_to_retract BEFORE UPDATE OF state ON deliveries
  FOR EACH ROW WHEN (OLD.state = 'published' AND NEW.state <> 'published'
                     AND NEW.kind <> 'retract')
  EXECUTE FUNCTION deliveries_leave_published_only_to_retract();
CREATE INDEX deliveries_post_kind ON deliveries(post_id, kind);
CREATE TABLE pauses (scope TEXT COLLATE "C" PRIMARY KEY, reason TEXT COLLATE "C" NOT NULL,
  paused_by TEXT COLLATE "C" NOT NULL, paused_at TEXT COLLATE "C" NOT NULL);
"""
    for statement in split_pg(script):
        conn.execute(statement)


PG[18] = _pg_018


# A delivery becoming claimable (queued, rescheduled, released, retried) or a pause being
# lifted wakes idle daemons at COMMIT (NOTIFY is transactional; identical notifications of one
# transaction are delivered once). docs/architecture.md §11.5
PG[23] = """
CREATE FUNCTION kepubot_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('kepubot_due', '');
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_notify_due AFTER INSERT OR UPDATE OF state, not_before ON deliveries
  FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION kepubot_notify_due();
CREATE TRIGGER pauses_notify_due AFTER DELETE ON pauses
  FOR EACH STATEMENT EXECUTE FUNCTION kepubot_notify_due();
"""


# Migration 25: the key is the post's id (pg_ddl would make INTEGER PRIMARY KEY an identity),
# and a resumed post wakes idle daemons like a lifted channel pause (docs/architecture.md §11.5).
PG[25] = """
CREATE TABLE post_pauses (post_id BIGINT PRIMARY KEY REFERENCES posts(id),
  reason TEXT COLLATE "C" NOT NULL, paused_by TEXT COLLATE "C" NOT NULL,
  paused_at TEXT COLLATE "C" NOT NULL);
CREATE TRIGGER post_pauses_notify_due AFTER DELETE ON post_pauses
  FOR EACH STATEMENT EXECUTE FUNCTION kepubot_notify_due();
"""
