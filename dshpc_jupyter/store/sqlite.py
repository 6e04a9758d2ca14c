"""The embedded store: one SQLite file in WAL mode holding files, method versions, jobs and batches.

This package is the only place that speaks SQL, always with bound parameters: the tables are in
:mod:`.schema`, the row layouts in :mod:`.rows`, a batch submission's statements in :mod:`.transaction`, and
everything else here, on the one class the rest of the package uses. Several processes may use one store at
once: writers take SQLite's write lock (``BEGIN IMMEDIATE``) and a partial unique index allows at most one live
(in progress or completed) job per job key, so concurrent identical submissions make exactly one job.

``Store`` is also what schedulers record job state through: it implements their ``JobLedger`` protocol
(:mod:`dshpc_jupyter.schedulers.base`) structurally, so this layer never imports the one above it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..domain import status as st
from ..domain.bulk import no_gc_pauses
from ..domain.errors import StoreDamagedError
from ..domain.jobs import ActiveJob, ClaimedJob, JobUpdate
from ..domain.models import BatchStatistics, BatchSummary, FileInfo, JobRecord, MethodInfo, MethodSpec, MultiJobResult
from . import payloads, queue, turn
from .forget import Forgotten, forget_jobs
from .maintenance import RECOVERY, file_problem, store_error
from .rows import (
    BATCH_COLUMNS,
    JOB_COLUMNS,
    batch_summary,
    chunks,
    file_from_row,
    file_values,
    job_from_row,
    method_from_row,
    unpack_results,
)
from .schema import ACTIVE_SET, NOT_STARTED_SET, SCHEMA_VERSION, migrate
from .transaction import LATEST_JOBS_SQL, LatestJob, NewJob, Transaction
from .turn import method_specs

__all__ = [
    "LATEST_JOBS_SQL",
    "SCHEMA_VERSION",
    "ClaimedJob",
    "JobUpdate",
    "LatestJob",
    "NewJob",
    "Store",
    "Transaction",
    "method_specs",
]

BUSY_TIMEOUT_S = 30.0
#: Seconds a write waits for another process's write lock before giving up with StoreBusyError (HTTP 503).
BUSY_TIMEOUT_ENV = "DSHPC_BUSY_TIMEOUT"


def busy_timeout() -> float:
    return float(os.environ.get(BUSY_TIMEOUT_ENV) or BUSY_TIMEOUT_S)


class Store:
    """A SQLite store shared by threads (one connection each) and processes (WAL, busy timeout).

    A damaged file is refused with StoreDamagedError (see :mod:`.maintenance`), and a lock held past the busy
    timeout gives StoreBusyError: both name the file, neither leaves a half-written transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._timeout = busy_timeout()
        problem = file_problem(path)
        if problem is not None:
            raise StoreDamagedError(f"store {path}: {problem}; refusing to open it or make a new one: {RECOVERY}")
        with self._transaction("IMMEDIATE") as conn:
            migrate(conn, path)

    # --- connections and transactions ----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA foreign_keys=ON")
            except sqlite3.Error as exc:
                conn.close()
                raise store_error(exc, self.path) or exc from None
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute(f"BEGIN {mode}")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise store_error(exc, self.path) or exc from None

    def integrity_problem(self) -> str | None:
        """SQLite's quick check of the whole file (what ``/services/status`` reports): None when sound."""
        try:
            rows = [row[0] for row in self._conn().execute("PRAGMA quick_check(5)")]
        except sqlite3.Error as exc:
            return str(exc)
        return None if rows == ["ok"] else "; ".join(rows)

    @contextmanager
    def write(self) -> Iterator[Transaction]:
        """A write transaction: holds SQLite's write lock from the first statement, so reads and the writes
        that depend on them are atomic across processes."""
        with self._transaction("IMMEDIATE") as conn:
            yield Transaction(conn)

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        """A consistent read-only snapshot (dry runs)."""
        with self._transaction("DEFERRED") as conn:
            yield Transaction(conn)

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # --- files -----------------------------------------------------------------------------------------

    def add_file(self, info: FileInfo) -> bool:
        """Record a file; False when the hash was already there (the stored record is kept)."""
        cursor = self._conn().execute(
            "INSERT OR IGNORE INTO files (file_hash, filename, content_type, file_size, metadata, upload_date)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            file_values(info),
        )
        return cursor.rowcount == 1

    def existing_files(self, hashes: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in chunks(hashes):
            rows = self._conn().execute(
                "SELECT file_hash FROM files WHERE file_hash IN (SELECT value FROM json_each(?))",
                (json.dumps(chunk),),
            )
            found.update(row[0] for row in rows)
        return found

    def get_file(self, file_hash: str) -> FileInfo | None:
        row = self._conn().execute("SELECT * FROM files WHERE file_hash = ?", (file_hash,)).fetchone()
        return file_from_row(row) if row else None

    def list_files(self) -> list[FileInfo]:
        return [
            file_from_row(row) for row in self._conn().execute("SELECT * FROM files ORDER BY upload_date, file_hash")
        ]

    # --- methods ---------------------------------------------------------------------------------------

    def add_method(self, function_hash: str, spec: MethodSpec) -> None:
        """Record a method version and make it the latest of its name (also when it was known already)."""
        now = time.time()
        with self._transaction("IMMEDIATE") as conn:
            seq = conn.execute("SELECT coalesce(max(registered_seq), 0) + 1 FROM methods").fetchone()[0]
            conn.execute(
                "INSERT INTO methods (function_hash, name, spec, registered_at, registered_seq)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT(function_hash) DO UPDATE SET"
                " registered_at = excluded.registered_at, registered_seq = excluded.registered_seq",
                (function_hash, spec.name, spec.model_dump_json(), now, seq),
            )

    def latest_methods(self, names: Iterable[str]) -> dict[str, tuple[str, MethodSpec]]:
        """(function_hash, spec) of the latest registered version of each known name."""
        found: dict[str, tuple[str, MethodSpec]] = {}
        rows = self._conn().execute(
            "SELECT name, function_hash, spec FROM methods AS m WHERE name IN (SELECT value FROM json_each(?))"
            " AND registered_seq = (SELECT max(registered_seq) FROM methods WHERE name = m.name)",
            (json.dumps(sorted(set(names))),),
        )
        for name, fhash, spec in rows:
            found[name] = (fhash, MethodSpec.model_validate_json(spec))
        return found

    def method_spec(self, function_hash: str) -> MethodSpec | None:
        row = self._conn().execute("SELECT spec FROM methods WHERE function_hash = ?", (function_hash,)).fetchone()
        return MethodSpec.model_validate_json(row[0]) if row else None

    def list_methods(self, name: str | None = None, latest_only: bool = True) -> list[MethodInfo]:
        """Methods ordered by name, newest version first; ``latest_only`` keeps one version per name."""
        rows = self._conn().execute(
            "SELECT function_hash, spec, registered_at, registered_seq ="
            " (SELECT max(registered_seq) FROM methods WHERE name = m.name) AS latest"
            " FROM methods AS m WHERE (? IS NULL OR name = ?) ORDER BY name, registered_seq DESC",
            (name, name),
        )
        methods = [method_from_row(*row) for row in rows]
        return [m for m in methods if m.latest] if latest_only else methods

    # --- jobs ------------------------------------------------------------------------------------------

    def get_jobs(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The records of the known ids, in the order asked."""
        by_id: dict[str, JobRecord] = {}
        with no_gc_pauses():
            for chunk in chunks(job_ids):
                rows = self._conn().execute(
                    f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))",
                    (json.dumps(chunk),),
                )
                for row in rows:
                    by_id[row[0]] = job_from_row(row)
            return [by_id[job_id] for job_id in job_ids if job_id in by_id]

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """The most recent jobs, newest first, optionally of one status."""
        rows = self._conn().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE (? IS NULL OR status = ?) ORDER BY seq DESC LIMIT ?",
            (status, status, limit),
        )
        return [job_from_row(row) for row in rows]

    def active_jobs(self, scheduler: str, limit: int = -1) -> list[JobRecord]:
        """Jobs of one scheduler that are pending or running, oldest first (the first ``limit``; all with -1)."""
        rows = self._conn().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE scheduler = ? AND status IN {ACTIVE_SET} ORDER BY seq LIMIT ?",
            (scheduler, limit),
        )
        return [job_from_row(row) for row in rows]

    def active_states(self, scheduler: str) -> list[ActiveJob]:
        """Every job of one scheduler in progress, as four columns (what a poll compares with its queue)."""
        rows = self._conn().execute(
            f"SELECT job_id, status, scheduler_id, started_at FROM jobs WHERE scheduler = ? AND status IN {ACTIVE_SET}",
            (scheduler,),
        )
        return list(map(ActiveJob._make, rows))

    def active_changes(self, scheduler: str, since: int | None) -> tuple[int, list[ActiveJob], list[str]]:
        """(cursor, the jobs of ``scheduler`` in progress whose row changed after stamp ``since``, the ids of the
        other jobs changed: ended, or another scheduler's); with ``since`` None every job in progress. One read
        snapshot, so the next call from the cursor misses no change (docs/design.md section 14.1)."""
        with self.read() as tx:
            conn = tx.connection
            if since is None:
                cursor = conn.execute("SELECT value FROM change_counter").fetchone()[0]
                return cursor, self.active_states(scheduler), []
            rows = conn.execute(
                "SELECT job_id, status, scheduler_id, started_at, scheduler, change_seq FROM jobs"
                " WHERE change_seq > ? ORDER BY change_seq",
                (since,),
            ).fetchall()
        mine = [ActiveJob(*r[:4]) for r in rows if r[4] == scheduler and st.is_in_progress(r[1])]
        others = [r[0] for r in rows if r[4] != scheduler or not st.is_in_progress(r[1])]
        return (rows[-1][5] if rows else since), mine, others

    def job_changes(self, since: int | None, limit: int) -> tuple[int, list[JobRecord], bool]:
        """(cursor, records, more): the jobs whose change stamp is above ``since``, oldest change first, up to
        ``limit``; the cursor is the last stamp returned (``since`` when none). With ``since`` None: no records
        and the latest stamp given, where a new poller starts. One statement, so one snapshot: a later commit
        always has higher stamps (docs/design.md section 14)."""
        conn = self._conn()
        if since is None:
            return conn.execute("SELECT value FROM change_counter").fetchone()[0], [], False
        with no_gc_pauses():
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS}, change_seq FROM jobs WHERE change_seq > ? ORDER BY change_seq LIMIT ?",
                (since, limit + 1),
            ).fetchall()
            more = len(rows) > limit
            del rows[limit:]
            records = [job_from_row(row) for row in rows]
        return (rows[-1][-1] if rows else since), records, more

    def claim_pending(self, scheduler: str, limit: int) -> list[ClaimedJob]:
        """Claim up to ``limit`` pending jobs for a worker that runs them itself: they move to ``STARTING``
        (``CF``), in queue order (:mod:`.queue`: priority, round-robin across batches, age), so no other worker
        takes them; a retried job once its backoff has passed."""
        if limit <= 0:
            return []
        with self._transaction("IMMEDIATE") as conn:
            return turn.claim(conn, scheduler, limit)

    def record_turn(
        self, scheduler: str, started: Sequence[tuple[str, str, float]], requeued: Sequence[str],
        updates: Sequence[JobUpdate], limit: int,
    ) -> tuple[list[str], list[ClaimedJob]]:  # fmt: skip
        """A worker's turn in one transaction: the (job_id, runner, started_at) of jobs whose method started to
        ``R``, the unstarted claims back to the queue, the results applied, then up to ``limit`` new claims.
        Returns the started ids that left ``PD``/``STARTING`` meanwhile (cancelled) and the claims."""
        if not (started or requeued or updates or limit > 0):
            return [], []
        with self._transaction("IMMEDIATE") as conn:
            refused = [job_id for job_id, runner, at in started if not turn.start(conn, job_id, runner, at)]
            turn.requeue(conn, requeued)
            turn.apply(conn, updates)
            return refused, turn.claim(conn, scheduler, limit)

    def queue_positions(self, scheduler: str, job_ids: Sequence[str]) -> dict[str, int]:
        """Where each of these pending jobs is in its scheduler's queue (1 = next to start)."""
        return queue.queue_positions(self._conn(), scheduler, job_ids)

    def requeue(self, job_ids: Sequence[str]) -> None:
        """Claimed jobs whose runner never started go back to the queue."""
        turn.requeue(self._conn(), job_ids)

    def mark_running(self, job_id: str, scheduler_id: str, started_at: float) -> bool:
        """``PD``/``STARTING`` to ``R``; False when the job left those states meanwhile (it was cancelled)."""
        return turn.start(self._conn(), job_id, scheduler_id, started_at)

    def set_scheduler_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record the scheduler's id of submitted jobs (e.g. ``1234_7`` for a Slurm array task)."""
        self._conn().executemany(
            "UPDATE jobs SET scheduler_id = ? WHERE job_id = ?", ((sid, jid) for jid, sid in pairs)
        )

    def swap_scheduler_ids(self, job_ids: Sequence[str], old: str | None, new: str) -> list[str]:
        """Set ``scheduler_id`` to ``new`` on the pending jobs whose id is still ``old`` (compare-and-set): how
        a scheduler claims jobs to submit, so two processes never submit the same job."""
        rows = (
            self._conn()
            .execute(
                "UPDATE jobs SET scheduler_id = ? WHERE job_id IN (SELECT value FROM json_each(?))"
                " AND status = ? AND scheduler_id IS ? RETURNING job_id",
                (new, json.dumps(list(job_ids)), st.PENDING, old),
            )
            .fetchall()
        )
        return [row[0] for row in rows]

    def apply_updates(self, updates: Sequence[JobUpdate]) -> int:
        """Apply state changes to jobs still in progress; finished jobs never change again."""
        if not updates:
            return 0
        with self._transaction("IMMEDIATE") as conn:
            return turn.apply(conn, updates)

    def forget(self, job_ids: Sequence[str]) -> Forgotten:
        """Delete ended jobs and the records of output files nothing else needs (:mod:`.forget`)."""
        with self._transaction("IMMEDIATE") as conn:
            return forget_jobs(conn, job_ids)

    def cancel_pending(self, job_ids: Sequence[str], reason: str) -> list[str]:
        """Cancel jobs that have not started (``PD``/``STARTING``): no runner will ever pick them up."""
        rows = (
            self._conn()
            .execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?"
                f" WHERE job_id IN (SELECT value FROM json_each(?)) AND status IN {NOT_STARTED_SET} RETURNING job_id",
                (st.CANCELLED, time.time(), reason, json.dumps(list(job_ids))),
            )
            .fetchall()
        )
        return [row[0] for row in rows]

    def request_cancel(self, job_ids: Sequence[str]) -> list[str]:
        """Flag running jobs for cancellation; their scheduler stops them and reports ``CA``."""
        rows = (
            self._conn()
            .execute(
                "UPDATE jobs SET cancel_requested = 1"
                f" WHERE job_id IN (SELECT value FROM json_each(?)) AND status IN {ACTIVE_SET} RETURNING job_id",
                (json.dumps(list(job_ids)),),
            )
            .fetchall()
        )
        return [row[0] for row in rows]

    def cancel_requests(self, scheduler: str) -> list[tuple[str, str | None]]:
        """(job_id, scheduler_id) of running jobs flagged for cancellation."""
        rows = self._conn().execute(
            f"SELECT job_id, scheduler_id FROM jobs WHERE scheduler = ? AND status IN {ACTIVE_SET}"
            " AND cancel_requested = 1",
            (scheduler,),
        )
        return [(row[0], row[1]) for row in rows]

    def has_pending(self, scheduler: str) -> bool:
        row = (
            self._conn()
            .execute("SELECT 1 FROM jobs WHERE scheduler = ? AND status = ? LIMIT 1", (scheduler, st.PENDING))
            .fetchone()
        )
        return row is not None

    # --- batches ---------------------------------------------------------------------------------------

    def list_batches(self, limit: int = 100, *, name: str | None = None) -> list[BatchSummary]:
        """The newest batches first; ``name``: only the batches of that name."""
        where, args = ("WHERE name = ? ", (name, limit)) if name is not None else ("", (limit,))
        rows = self._conn().execute(
            f"SELECT {BATCH_COLUMNS} FROM batches {where}ORDER BY created_at DESC LIMIT ?",
            args,
        )
        return [batch_summary(row) for row in rows]

    def update_batch(self, batch_id: str, statistics: BatchStatistics, results: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite a batch's results (after the scheduler refused some of its jobs), in the caller's write
        transaction (the engine's: it read them in it). Cut again the same way, the unchanged blocks are the
        same blocks: only those holding a refusal are new."""
        conn = self._conn()
        row = conn.execute("SELECT payload FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        conn.execute(
            "UPDATE batches SET total_jobs = ?, statistics = ?, results = ?, payload = ? WHERE batch_id = ?",
            (len(results), statistics.model_dump_json(), payloads.BLOCKS, payloads.add_blocks(conn, [], results),
             batch_id),
        )  # fmt: skip
        payloads.release(conn, row and row[0])

    def get_batch(self, batch_id: str) -> tuple[BatchSummary, list[MultiJobResult]] | None:
        rows = self._conn().execute(payloads.READ_SQL, (batch_id, payloads.BLOCKS)).fetchall()
        if not rows:
            return None
        return batch_summary(rows[0]), unpack_results(payloads.assemble(rows))
