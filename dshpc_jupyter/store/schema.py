"""The store's tables and their version: created on first open, refused when written by a newer package.

The SQL sets of statuses are spelled here from the vocabulary (their order is fixed there): the partial indexes
depend on the spelling, and the statements that must use those indexes use the same sets.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..domain import status as st
from ..domain.errors import StoreVersionError

LIVE_SET = st.sql_set(st.LIVE_ORDER)
ACTIVE_SET = st.sql_set(st.IN_PROGRESS_ORDER)
NOT_STARTED_SET = st.sql_set(st.NOT_STARTED_ORDER)

SCHEMA = f"""
CREATE TABLE files (
    file_hash    TEXT PRIMARY KEY,
    filename     TEXT,
    content_type TEXT,
    file_size    INTEGER NOT NULL,
    metadata     TEXT,
    upload_date  REAL NOT NULL
) WITHOUT ROWID;

CREATE TABLE methods (
    function_hash  TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    spec           TEXT NOT NULL,
    registered_at  REAL NOT NULL,
    registered_seq INTEGER NOT NULL
);
CREATE INDEX methods_by_name ON methods(name, registered_seq);

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY,
    job_id           TEXT NOT NULL UNIQUE,
    job_key          TEXT NOT NULL,
    file_hash        TEXT NOT NULL,
    method_name      TEXT NOT NULL,
    function_hash    TEXT NOT NULL,
    parameters       TEXT NOT NULL,
    status           TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    exit_code        INTEGER,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    scheduler        TEXT NOT NULL,
    scheduler_id     TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_key ON jobs(job_key, seq);
CREATE UNIQUE INDEX jobs_one_live_per_key ON jobs(job_key) WHERE status IN {LIVE_SET};
CREATE INDEX jobs_active ON jobs(scheduler, status) WHERE status IN {ACTIVE_SET};

CREATE TABLE batches (
    batch_id   TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    total_jobs INTEGER NOT NULL,
    statistics TEXT NOT NULL,
    results    BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX batches_by_time ON batches(created_at);
"""

PENDING_ONLY = f"WHERE status = '{st.PENDING}'"
QUEUE_STEP = f"""
ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN queue_group TEXT;
ALTER TABLE jobs ADD COLUMN queue_rank INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_queue ON jobs(scheduler, priority DESC, queue_rank, seq) {PENDING_ONLY};
CREATE INDEX jobs_queue_group ON jobs(queue_group, queue_rank) {PENDING_ONLY};
CREATE INDEX jobs_queue_age ON jobs(scheduler, priority, seq) {PENDING_ONLY};
CREATE INDEX files_by_upload ON files(upload_date, file_hash)
"""

PIPELINES_SCHEMA = """
CREATE TABLE IF NOT EXISTS pipelines (
    pipeline_id TEXT PRIMARY KEY,
    created_at  REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pipeline_steps (
    pipeline_id TEXT NOT NULL,
    position    INTEGER NOT NULL,
    step        TEXT NOT NULL,
    spec        TEXT NOT NULL,
    depends_on  TEXT NOT NULL,
    state       TEXT NOT NULL,
    job_id      TEXT,
    outcome     TEXT,
    reason      TEXT,
    PRIMARY KEY (pipeline_id, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pipeline_steps_waiting ON pipeline_steps(pipeline_id) WHERE state = 'waiting';
"""

#: Users (a token is kept only as a salted SHA-256 of its secret, found by its public ``token_id``), the audit
#: trail, who uploaded which file, and the owner of each job and batch (NULL: the embedded engine's local user).
TEAM_SCHEMA = """
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    admin       INTEGER NOT NULL DEFAULT 0,
    token_id    TEXT UNIQUE,
    token_salt  BLOB,
    token_hash  BLOB,
    max_running INTEGER,
    max_configs INTEGER,
    created_at  REAL NOT NULL,
    revoked_at  REAL
) WITHOUT ROWID;
CREATE TABLE audit (
    seq    INTEGER PRIMARY KEY,
    at     REAL NOT NULL,
    actor  TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
CREATE TABLE uploads (
    file_hash   TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    at          REAL NOT NULL,
    PRIMARY KEY (file_hash, uploaded_by)
) WITHOUT ROWID;
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE batches ADD COLUMN owner TEXT;
CREATE INDEX jobs_by_owner ON jobs(owner, seq);
CREATE INDEX batches_by_owner ON batches(owner, created_at)
"""

#: The change stamp of jobs: one store-wide counter (a row of its own, so deleting jobs never hands a stamp out
#: twice); existing rows take their ``seq`` and the counter starts above them, then triggers stamp every later
#: insert or update that did not stamp itself, whichever statement makes it. Writers are serialized by SQLite's
#: write lock, so stamps grow in commit order.
CHANGE_SEQUENCE = """
ALTER TABLE jobs ADD COLUMN change_seq INTEGER;
UPDATE jobs SET change_seq = seq;
CREATE INDEX jobs_by_change ON jobs(change_seq);
CREATE TABLE change_counter (id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL);
INSERT INTO change_counter VALUES (1, (SELECT coalesce(max(seq), 0) FROM jobs));
CREATE TRIGGER jobs_stamp_insert AFTER INSERT ON jobs FOR EACH ROW WHEN NEW.change_seq IS NULL BEGIN
    UPDATE change_counter SET value = value + 1;
    UPDATE jobs SET change_seq = (SELECT value FROM change_counter) WHERE seq = NEW.seq;
END;
CREATE TRIGGER jobs_stamp_update AFTER UPDATE ON jobs FOR EACH ROW WHEN NEW.change_seq IS OLD.change_seq BEGIN
    UPDATE change_counter SET value = value + 1;
    UPDATE jobs SET change_seq = (SELECT value FROM change_counter) WHERE seq = NEW.seq;
END;
"""

#: Batch results stored once per content (docs/design.md section 14.3): a batch names its results by digest
#: (``payload``; its ``results`` then empty), so the same call made again adds a small row, not a copy.
#: One index per job over its key (docs/design.md section 14.3): the live index holds the job the cache serves or
#: joins, this one every other job (ended, or replaced by a forced rerun), so no job sits in both.
NOT_LIVE = f"status NOT IN {LIVE_SET} OR replaced_by IS NOT NULL"
#: Written to run again harmlessly: a test that takes a store back one earlier step leaves this one's state.
ONE_KEY_INDEX = (
    "DROP INDEX IF EXISTS jobs_by_key;"
    f" CREATE INDEX IF NOT EXISTS jobs_not_live_by_key ON jobs(job_key, seq) WHERE {NOT_LIVE}"
)

BATCH_PAYLOADS = """
CREATE TABLE batch_payloads (digest TEXT PRIMARY KEY, results BLOB NOT NULL);
ALTER TABLE batches ADD COLUMN payload TEXT;
CREATE INDEX batches_by_payload ON batches(payload) WHERE payload IS NOT NULL
"""

BATCH_BLOCKS = """
CREATE TABLE batch_lists (digest TEXT PRIMARY KEY, blocks TEXT NOT NULL);
CREATE TABLE block_refs (digest TEXT PRIMARY KEY, refs INTEGER NOT NULL) WITHOUT ROWID
"""

#: The schema's history: version N is reached from N - 1 by its statements (version 1 from an empty file).
#: A change to the tables is a new step at the end, so every store of an older version upgrades in place, in
#: the transaction that opens it; versions may skip numbers.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, SCHEMA),
    # Named inputs and output files (docs/design.md section 8): JSON text, NULL for jobs that have none.
    (2, "ALTER TABLE jobs ADD COLUMN file_inputs TEXT; ALTER TABLE jobs ADD COLUMN output_files TEXT"),
    # Retries, forced reruns (docs/design.md section 12): the attempt, the attempts that ended before it (JSON),
    # the job's retry policy (JSON, NULL: the default), this attempt's raised resources (JSON), when a retried
    # job may start, and the job a forced rerun replaced this one by: a replaced job leaves the live index.
    (
        3,
        "ALTER TABLE jobs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1; ALTER TABLE jobs ADD COLUMN attempts TEXT;"
        " ALTER TABLE jobs ADD COLUMN retry TEXT; ALTER TABLE jobs ADD COLUMN resources TEXT;"
        " ALTER TABLE jobs ADD COLUMN not_before REAL; ALTER TABLE jobs ADD COLUMN replaced_by TEXT;"
        " DROP INDEX jobs_one_live_per_key;"
        f" CREATE UNIQUE INDEX jobs_one_live_per_key ON jobs(job_key) WHERE status IN {LIVE_SET}"
        " AND replaced_by IS NULL",
    ),
    # Priorities and fair share (docs/design.md section 13.2): pending jobs start by priority, then by their
    # rank in the round-robin of their queue group (the batch that made them), then in submission order; and
    # the order the file list is paged in (section 13.3).
    (4, QUEUE_STEP),
    # Batch names (docs/design.md section 6.1): NULL for a batch sent without one; looked up by name, newest first.
    (
        5,
        "ALTER TABLE batches ADD COLUMN name TEXT;"
        " CREATE INDEX batches_by_name ON batches(name, created_at) WHERE name IS NOT NULL",
    ),
    # A server for a team (docs/design.md section 11): users, the audit trail, who submitted what.
    (6, TEAM_SCHEMA),
    # Polling by change (docs/design.md section 14.1): every insert or update of a job stamps it with the next
    # number of one store-wide sequence, so a poll reads only the jobs changed since its last answer; and batch
    # results stored once per content (section 14.3).
    (7, CHANGE_SEQUENCE + BATCH_PAYLOADS),
    # Pipelines (docs/design.md section 10): each step's spec, dependencies and, once released, its job.
    (8, PIPELINES_SCHEMA),
    # Who submitted a pipeline (docs/design.md section 11.3): its released steps' jobs are theirs too.
    (10, "ALTER TABLE pipelines ADD COLUMN owner TEXT"),
    # One index per job over its key (docs/design.md section 14.3): the key index keeps only the jobs the live
    # index leaves out, so a store of completed jobs holds each key once, not twice.
    (11, ONE_KEY_INDEX),
    # Batch results in blocks shared between batches (docs/design.md section 14.3): each list of
    # blocks (a JSON array of digests), and how many lists name each block.
    (13, BATCH_BLOCKS),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables in an empty store, or bring an older one up to date (inside the caller's write
    transaction); a store of a newer schema is refused, naming both versions, rather than misread."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"store {path} has schema version {version}; this dshpc_jupyter reads up to "
            f"{SCHEMA_VERSION}: upgrade the package"
        )
    for step, statements in MIGRATIONS:
        if step > version:
            for statement in split_statements(statements):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step}")


def split_statements(script: str) -> list[str]:
    """The statements of a script, one by one (``executescript`` would commit the caller's transaction); a
    trigger's body holds semicolons, so pieces are joined until SQLite calls the statement complete."""
    statements: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending)
            pending = ""
    if pending.strip(" \n;"):
        statements.append(pending)
    return statements
