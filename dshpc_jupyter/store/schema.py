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

#: The schema's history: version N is reached from N - 1 by its statements (version 1 from an empty file).
#: A change to the tables is a new step at the end, so every store of an older version upgrades in place, in
#: the transaction that opens it; versions may skip numbers.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, SCHEMA),
    # Named inputs and output files (docs/design.md section 8): JSON text, NULL for jobs that have none.
    (2, "ALTER TABLE jobs ADD COLUMN file_inputs TEXT; ALTER TABLE jobs ADD COLUMN output_files TEXT"),
    # Priorities and fair share (docs/design.md section 10.2): pending jobs start by priority, then by their
    # rank in the round-robin of their queue group (the batch that made them), then in submission order; and
    # the order the file list is paged in (section 10.3).
    (4, QUEUE_STEP),
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
            for statement in statements.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step}")
