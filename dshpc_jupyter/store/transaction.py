"""The statements of one batch submission: look up every job key, insert the new jobs, record the batch.

They run inside one write transaction that the :class:`~.sqlite.Store` opens (``Store.write``): holding
SQLite's write lock from the lookup to the inserts is what makes submissions exactly-once between processes.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from ..domain import status as st
from ..domain.models import BatchStatistics
from . import payloads
from .queue import assign_ranks
from .rows import chunks
from .schema import LIVE_SET

#: The live job of each key, then its other jobs not replaced: each part searches its own index (schema step 11),
#: once per key as ``json_each`` reads them (a join: ``IN`` would first copy the keys into a temporary index).
#: Only the status set is spliced in (a constant of the vocabulary); the keys are a parameter.
_KEY_PART = (
    "SELECT j.job_key, j.job_id, j.status, j.output, j.seq FROM json_each(?1) AS k CROSS JOIN jobs AS j"
    " WHERE j.job_key = k.value AND j.replaced_by IS NULL AND j.status"
)
LATEST_JOBS_SQL = (
    f"SELECT job_key, job_id, status, output FROM ({_KEY_PART} IN {LIVE_SET}"  # noqa: S608
    f" UNION ALL {_KEY_PART} NOT IN {LIVE_SET}) ORDER BY seq"
)


class LatestJob(NamedTuple):
    """The most recent job of a job key: all the per-config logic needs to decide (a row of one query)."""

    job_key: str
    job_id: str
    status: str
    output: str | None


#: A row of ``LATEST_JOBS_SQL`` as a :class:`LatestJob`, built in C (``_make`` is a Python call per row).
as_latest = partial(tuple.__new__, LatestJob)


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job row to insert (status ``PD``)."""

    job_id: str
    job_key: str
    file_hash: str
    method_name: str
    function_hash: str
    parameters: str
    created_at: float
    scheduler: str
    file_inputs: str | None = None
    #: The job's retry policy as JSON (None: the default policy, docs/design.md section 12.1).
    retry: str | None = None
    #: Higher starts first; equal priorities take turns by ``queue_group`` (the batch), see :mod:`.queue`.
    priority: int = 0
    queue_group: str | None = None


class Transaction:
    """The statements of one batch submission, run inside a single SQLite transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def connection(self) -> sqlite3.Connection:
        """The transaction's connection, for measurements against raw SQL (bench/engine.py)."""
        return self._conn

    def latest_jobs(self, keys: Sequence[str]) -> dict[str, LatestJob]:
        """The most recent job of each key (one indexed query per 30,000 keys; later rows win)."""
        latest: dict[str, LatestJob] = {}
        for chunk in chunks(keys):
            rows = self._conn.execute(LATEST_JOBS_SQL, (json.dumps(chunk),))
            latest |= {row[0]: as_latest(row) for row in rows}
        return latest

    def insert_jobs(self, jobs: Iterable[NewJob]) -> None:
        """Insert new jobs, stamped with the next change numbers here (the insert trigger would cost a second
        write of every row); the write lock this transaction holds keeps the numbers unique."""
        rows = list(jobs)
        ranks = assign_ranks(self._conn, rows)
        base = self._conn.execute(
            "UPDATE change_counter SET value = value + ? RETURNING value - ?", (len(rows), len(rows))
        ).fetchall()[0][0]
        self._conn.executemany(
            "INSERT INTO jobs (job_id, job_key, file_hash, method_name, function_hash, parameters, status,"
            " created_at, scheduler, file_inputs, retry, priority, queue_group, queue_rank, change_seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (j.job_id, j.job_key, j.file_hash, j.method_name, j.function_hash, j.parameters, st.PENDING,
                 j.created_at, j.scheduler, j.file_inputs, j.retry, j.priority, j.queue_group, rank, stamp)
                for stamp, j, rank in zip(range(base + 1, base + 1 + len(rows)), rows, ranks, strict=True)
            ),
        )  # fmt: skip

    def replace_jobs(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Mark completed jobs as replaced by the forced reruns ``(old_id, new_id)`` about to be inserted: a
        replaced job leaves the one-live-job-per-key index, so the rerun may take its place in the cache."""
        self._conn.executemany("UPDATE jobs SET replaced_by = ? WHERE job_id = ?", ((new, old) for old, new in pairs))

    def insert_batch(
        self, batch_id: str, created_at: float, statistics: BatchStatistics, results: Sequence[Mapping[str, Any]],
        name: str | None = None,
    ) -> None:  # fmt: skip
        digest = payloads.add_blocks(self._conn, [], results)
        self._conn.execute(
            "INSERT INTO batches (batch_id, created_at, total_jobs, statistics, results, payload, name)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (batch_id, created_at, len(results), statistics.model_dump_json(), payloads.BLOCKS, digest, name),
        )

    def extend_batch(self, batch_id: str, statistics: BatchStatistics, results: Sequence[Mapping[str, Any]]) -> int:
        """Append results to a recorded batch, adding their statistics to its own (every statistic is a
        count); the number of results it had before, or -1 when there is no such batch."""
        row = self._conn.execute(
            "SELECT total_jobs, statistics, results, payload FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        if row is None:
            return -1
        offset: int = row[0]
        before = BatchStatistics.model_validate_json(row[1])
        total = BatchStatistics(**{k: v + getattr(statistics, k) for k, v in before.model_dump().items()})
        # New blocks after the batch's own: the earlier results are neither read nor written again.
        digest = payloads.add_blocks(self._conn, payloads.blocks_of(self._conn, row[2], row[3]), results)
        self._conn.execute(
            "UPDATE batches SET total_jobs = ?, statistics = ?, results = ?, payload = ? WHERE batch_id = ?",
            (offset + len(results), total.model_dump_json(), payloads.BLOCKS, digest, batch_id),
        )
        payloads.release(self._conn, row[3])
        return offset
