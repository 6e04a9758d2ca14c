"""Taking a store back to an older schema version, as an older package left it: what the upgrade tests start from."""

from __future__ import annotations

import sqlite3

from dshpc_jupyter.store.schema import LIVE_SET

#: The columns schema step 3 (retries, forced reruns) added to ``jobs``.
STEP_3_COLUMNS = ("attempt", "attempts", "retry", "resources", "not_before", "replaced_by")


def downgrade_to_2(conn: sqlite3.Connection) -> None:
    """Undo step 3: its columns, and the live index back to its version-2 form."""
    conn.execute("DROP INDEX jobs_one_live_per_key")
    for column in STEP_3_COLUMNS:
        conn.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
    conn.execute(f"CREATE UNIQUE INDEX jobs_one_live_per_key ON jobs(job_key) WHERE status IN {LIVE_SET}")
    conn.execute("PRAGMA user_version = 2")
