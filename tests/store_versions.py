"""Taking a store back to an older schema version, as an older package left it: what the upgrade tests start from.

Each migration step after 2 has its undo here, in one place, so every upgrade test starts from a true version-2
(or version-1) store whatever steps later engineers add: a step without an undo fails ``test_every_step_has_an_undo``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from dshpc_jupyter.store.schema import LIVE_SET

#: The columns schema step 3 (retries, forced reruns) added to ``jobs``.
STEP_3_COLUMNS = ("attempt", "attempts", "retry", "resources", "not_before", "replaced_by")


def _undo_3(conn: sqlite3.Connection) -> None:
    """Step 3: its columns, and the live index back to its version-2 form."""
    conn.execute("DROP INDEX jobs_one_live_per_key")
    for column in STEP_3_COLUMNS:
        conn.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
    conn.execute(f"CREATE UNIQUE INDEX jobs_one_live_per_key ON jobs(job_key) WHERE status IN {LIVE_SET}")


def _undo_4(conn: sqlite3.Connection) -> None:
    """Step 4 (priorities and fair share): the queue indexes and columns."""
    for index in ("jobs_queue", "jobs_queue_group", "jobs_queue_age", "files_by_upload"):
        conn.execute(f"DROP INDEX {index}")
    for column in ("priority", "queue_group", "queue_rank"):
        conn.execute(f"ALTER TABLE jobs DROP COLUMN {column}")


def _undo_5(conn: sqlite3.Connection) -> None:
    """Step 5 (batch names)."""
    conn.execute("DROP INDEX batches_by_name")
    conn.execute("ALTER TABLE batches DROP COLUMN name")


def _undo_6(conn: sqlite3.Connection) -> None:
    """Step 6 (users, audit, uploads, owners)."""
    for index in ("jobs_by_owner", "batches_by_owner"):
        conn.execute(f"DROP INDEX {index}")
    for table in ("users", "audit", "uploads"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("ALTER TABLE jobs DROP COLUMN owner")
    conn.execute("ALTER TABLE batches DROP COLUMN owner")


def _undo_7(conn: sqlite3.Connection) -> None:
    """Step 7: no change stamps (polling by
    change), and batch results inline again rather than in ``batch_payloads``."""
    conn.execute(
        "UPDATE batches SET results = (SELECT results FROM batch_payloads WHERE digest = payload)"
        " WHERE payload IS NOT NULL"
    )
    for statement in ("DROP TRIGGER jobs_stamp_insert", "DROP TRIGGER jobs_stamp_update", "DROP INDEX jobs_by_change",
                      "DROP TABLE change_counter", "ALTER TABLE jobs DROP COLUMN change_seq",
                      "DROP INDEX batches_by_payload", "ALTER TABLE batches DROP COLUMN payload",
                      "DROP TABLE batch_payloads"):  # fmt: skip
        conn.execute(statement)


def _undo_8(conn: sqlite3.Connection) -> None:
    """Step 8 (pipelines)."""
    conn.execute("DROP TABLE pipeline_steps")
    conn.execute("DROP TABLE pipelines")


def _undo_10(conn: sqlite3.Connection) -> None:
    """Step 10 (pipeline owners)."""
    conn.execute("ALTER TABLE pipelines DROP COLUMN owner")


def _undo_11(conn: sqlite3.Connection) -> None:
    """Step 11 (one index per job over its key): the key index over every job again."""
    conn.execute("DROP INDEX jobs_not_live_by_key")
    conn.execute("CREATE INDEX jobs_by_key ON jobs(job_key, seq)")


#: Step number -> how to take it back out.
UNDO: dict[int, Callable[[sqlite3.Connection], None]] = {
    3: _undo_3, 4: _undo_4, 5: _undo_5, 6: _undo_6, 7: _undo_7, 8: _undo_8, 10: _undo_10, 11: _undo_11,
}  # fmt: skip


def downgrade_to_2(conn: sqlite3.Connection) -> None:
    """Undo every step after 2, newest first."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    for step in sorted(UNDO, reverse=True):
        if step <= version:
            UNDO[step](conn)
    conn.execute("PRAGMA user_version = 2")


def downgrade_to_1(conn: sqlite3.Connection) -> None:
    """Undo every step after 1."""
    downgrade_to_2(conn)
    conn.execute("ALTER TABLE jobs DROP COLUMN file_inputs")
    conn.execute("ALTER TABLE jobs DROP COLUMN output_files")
    conn.execute("PRAGMA user_version = 1")
