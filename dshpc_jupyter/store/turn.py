"""The statements a worker's turn records: starts (``R``), claims given back, results, and the next claims.

Each is a function of an open connection, so that the ``Store`` runs one alone in its own transaction (a
scheduler's poll) or all of a local worker's turn in one (``Store.record_turn``): a no-op job then costs one
commit, not three (docs/design.md section 7.6).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence

from ..domain import status as st
from ..domain.jobs import ClaimedJob, JobUpdate
from . import queue
from .retries import requeue_retries
from .schema import ACTIVE_SET, NOT_STARTED_SET

# Spelled from constants, never from data (every value is a ``?`` parameter).
CLAIM_SQL = (
    "UPDATE jobs SET status = ? WHERE seq IN (SELECT seq FROM jobs"  # noqa: S608
    f" WHERE scheduler = ? AND {queue.PENDING} AND (not_before IS NULL OR not_before <= ?)"
    f" ORDER BY {queue.QUEUE_ORDER} LIMIT ?)"
    " RETURNING -priority, queue_rank, seq, job_id, file_hash, method_name, function_hash, parameters,"
    " file_inputs, resources, attempt"
)
START_SQL = (
    "UPDATE jobs SET status = ?, scheduler_id = ?, started_at = ?"  # noqa: S608
    f" WHERE job_id = ? AND status IN {NOT_STARTED_SET}"
)
REQUEUE_SQL = (
    "UPDATE jobs SET status = ?, scheduler_id = NULL WHERE job_id IN (SELECT value FROM json_each(?)) AND status = ?"
)
UPDATE_SQL = (
    "UPDATE jobs SET status = ?, exit_code = coalesce(?, exit_code), output = coalesce(?, output),"  # noqa: S608
    " error = coalesce(?, error), started_at = coalesce(?, started_at),"
    " finished_at = coalesce(?, finished_at), scheduler_id = coalesce(?, scheduler_id),"
    f" output_files = coalesce(?, output_files) WHERE job_id = ? AND status IN {ACTIVE_SET}"
)


def claim(conn: sqlite3.Connection, scheduler: str, limit: int) -> list[ClaimedJob]:
    """Up to ``limit`` pending jobs moved to ``STARTING``, in queue order; a retried one once its backoff passed."""
    if limit <= 0:
        return []
    rows = conn.execute(CLAIM_SQL, (st.STARTING, scheduler, time.time(), limit)).fetchall()
    specs = method_specs(conn, {row[6] for row in rows})
    rows.sort()
    return [ClaimedJob(r[3], r[4], r[5], r[6], r[7], specs[r[6]], r[8], r[9], r[10]) for r in rows]


def method_specs(conn: sqlite3.Connection, function_hashes: Iterable[str]) -> dict[str, str]:
    """The stored spec (JSON) of each of these methods, in one query: what claimed jobs are started with."""
    return dict(
        conn.execute(
            "SELECT function_hash, spec FROM methods WHERE function_hash IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(function_hashes))),),
        )
    )


def start(conn: sqlite3.Connection, job_id: str, scheduler_id: str, started_at: float) -> bool:
    """``PD``/``STARTING`` to ``R``; False when the job left those states meanwhile (it was cancelled)."""
    return conn.execute(START_SQL, (st.RUNNING, scheduler_id, started_at, job_id)).rowcount == 1


def requeue(conn: sqlite3.Connection, job_ids: Sequence[str]) -> None:
    """Claimed jobs whose runner never started go back to the queue."""
    if job_ids:
        conn.execute(REQUEUE_SQL, (st.PENDING, json.dumps(list(job_ids)), st.STARTING))


def apply(conn: sqlite3.Connection, updates: Sequence[JobUpdate]) -> int:
    """State changes of jobs still in progress (finished jobs never change again); how many changed."""
    if not updates:
        return 0
    final = requeue_retries(conn, updates)  # the failures their policy retries go back to PD
    cursor = conn.executemany(
        UPDATE_SQL,
        (
            (u.status, u.exit_code, u.output, u.error, u.started_at, u.finished_at, u.scheduler_id,
             None if u.output_files is None else json.dumps(u.output_files), u.job_id)
            for u in final
        ),
    )  # fmt: skip
    return cursor.rowcount + len(updates) - len(final)
