"""The embedded store: one SQLite file in WAL mode holding files, method versions, jobs and batches.

This is the only module that speaks SQL, always with bound parameters. Several processes may use one store
at once: writers take SQLite's write lock (``BEGIN IMMEDIATE``) and a partial unique index allows at most one
live (in progress or completed) job per job key, so concurrent identical submissions make exactly one job.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from pydantic import TypeAdapter

from ..domain import status as st
from ..domain.errors import StoreVersionError
from ..domain.models import (
    BatchStatistics,
    BatchSummary,
    FileInfo,
    JobRecord,
    MethodInfo,
    MethodSpec,
    MultiJobResult,
)

_RESULTS = TypeAdapter(list[MultiJobResult])

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0

# SQL sets spelled from the vocabulary (their order is fixed there: the partial indexes depend on the spelling)
_LIVE = st.sql_set(st.LIVE_ORDER)
_ACTIVE = st.sql_set(st.IN_PROGRESS_ORDER)
_NOT_STARTED = st.sql_set(st.NOT_STARTED_ORDER)

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
CREATE UNIQUE INDEX jobs_one_live_per_key ON jobs(job_key) WHERE status IN {_LIVE};
CREATE INDEX jobs_active ON jobs(scheduler, status) WHERE status IN {_ACTIVE};

CREATE TABLE batches (
    batch_id   TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    total_jobs INTEGER NOT NULL,
    statistics TEXT NOT NULL,
    results    BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX batches_by_time ON batches(created_at);
"""

LATEST_JOBS_SQL = (
    "SELECT job_key, job_id, status, output FROM jobs WHERE job_key IN (SELECT value FROM json_each(?)) ORDER BY seq"
)
JOB_COLUMNS = (
    "job_id, file_hash, method_name, function_hash, parameters, status, output, error, exit_code, "
    "created_at, started_at, finished_at, scheduler, scheduler_id"
)


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _job(row: Sequence[Any]) -> JobRecord:
    return JobRecord.model_construct(
        job_id=row[0],
        file_hash=row[1],
        method_name=row[2],
        function_hash=row[3],
        parameters=json.loads(row[4]),
        status=row[5],
        output=row[6],
        error=row[7],
        exit_code=row[8],
        created_at=_dt(row[9]),
        started_at=_dt(row[10]),
        finished_at=_dt(row[11]),
        scheduler=row[12],
        scheduler_id=row[13],
    )


def _file(row: Sequence[Any]) -> FileInfo:
    return FileInfo(
        file_hash=row[0],
        filename=row[1],
        content_type=row[2],
        file_size=row[3],
        metadata=json.loads(row[4]) if row[4] is not None else None,
        upload_date=datetime.fromtimestamp(row[5], UTC),
    )


def _chunks(items: Sequence[str], size: int = 30000) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class LatestJob(NamedTuple):
    """The most recent job of a job key: all the per-config logic needs to decide (a row of one query)."""

    job_key: str
    job_id: str
    status: str
    output: str | None


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


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """A state change reported by a scheduler or the local worker. ``None`` fields are left unchanged."""

    job_id: str
    status: str
    exit_code: int | None = None
    output: str | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    scheduler_id: str | None = None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A pending job handed to a runner: what building its task needs."""

    job_id: str
    file_hash: str
    method_name: str
    function_hash: str
    parameters: str
    spec: str


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
        for chunk in _chunks(keys):
            rows = self._conn.execute(LATEST_JOBS_SQL, (json.dumps(chunk),))
            latest.update((row[0], LatestJob._make(row)) for row in rows)
        return latest

    def insert_jobs(self, jobs: Iterable[NewJob]) -> None:
        self._conn.executemany(
            "INSERT INTO jobs (job_id, job_key, file_hash, method_name, function_hash, parameters, status,"
            " created_at, scheduler) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (j.job_id, j.job_key, j.file_hash, j.method_name, j.function_hash, j.parameters, st.PENDING,
                 j.created_at, j.scheduler)
                for j in jobs
            ),
        )  # fmt: skip

    def insert_batch(
        self, batch_id: str, created_at: float, statistics: BatchStatistics, results: Sequence[Mapping[str, Any]]
    ) -> None:
        self._conn.execute(
            "INSERT INTO batches (batch_id, created_at, total_jobs, statistics, results) VALUES (?, ?, ?, ?, ?)",
            (batch_id, created_at, len(results), statistics.model_dump_json(), _pack_results(results)),
        )

    def extend_batch(self, batch_id: str, statistics: BatchStatistics, results: Sequence[Mapping[str, Any]]) -> int:
        """Append results to a recorded batch, adding their statistics to its own (every statistic is a
        count); the number of results it had before, or -1 when there is no such batch."""
        row = self._conn.execute(
            "SELECT total_jobs, statistics, results FROM batches WHERE batch_id = ?", (batch_id,)
        ).fetchone()
        if row is None:
            return -1
        offset: int = row[0]
        before, packed = BatchStatistics.model_validate_json(row[1]), row[2]
        total = BatchStatistics(**{k: v + getattr(statistics, k) for k, v in before.model_dump().items()})
        # Both are JSON arrays: splice them rather than parse and re-encode every earlier result.
        packed = packed.encode() if isinstance(packed, str) else bytes(packed)
        added = _pack_results(results)
        if not results:
            combined = packed
        elif offset == 0:
            combined = added
        else:
            combined = packed[:-1] + b"," + added[1:]
        self._conn.execute(
            "UPDATE batches SET total_jobs = ?, statistics = ?, results = ? WHERE batch_id = ?",
            (offset + len(results), total.model_dump_json(), combined, batch_id),
        )
        return offset


PACKED_FIELDS = (
    "job_id", "outcome", "old_status", "new_status", "message", "file_hash", "method_name", "function_hash",
    "parameters",
)  # fmt: skip


def _pack_results(results: Sequence[Mapping[str, Any]]) -> bytes:
    """A batch's results as one compact JSON array of rows (outputs are not copied: they stay on the jobs)."""
    rows = [[r[field] for field in PACKED_FIELDS] for r in results]
    try:
        return orjson.dumps(rows, default=str)
    except TypeError:  # parameters echoed as given may hold integers beyond 64 bits, which orjson refuses
        return json.dumps(rows, default=str).encode()


class Store:
    """A SQLite store shared by threads (one connection each) and processes (WAL, busy timeout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._migrate()

    # --- connections and transactions ----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _transaction(self, mode: str) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute(f"BEGIN {mode}")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

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

    def _migrate(self) -> None:
        with self._transaction("IMMEDIATE") as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"store {self.path} has schema version {version}; this dshpc_jupyter reads up to "
                    f"{SCHEMA_VERSION}: upgrade the package"
                )
            if version == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

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
            (
                info.file_hash,
                info.filename,
                info.content_type,
                info.file_size,
                json.dumps(info.metadata) if info.metadata is not None else None,
                info.upload_date.timestamp(),
            ),
        )
        return cursor.rowcount == 1

    def existing_files(self, hashes: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(hashes):
            rows = self._conn().execute(
                "SELECT file_hash FROM files WHERE file_hash IN (SELECT value FROM json_each(?))",
                (json.dumps(chunk),),
            )
            found.update(row[0] for row in rows)
        return found

    def get_file(self, file_hash: str) -> FileInfo | None:
        row = self._conn().execute("SELECT * FROM files WHERE file_hash = ?", (file_hash,)).fetchone()
        return _file(row) if row else None

    def list_files(self) -> list[FileInfo]:
        return [_file(row) for row in self._conn().execute("SELECT * FROM files ORDER BY upload_date, file_hash")]

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
        methods = [
            MethodInfo(
                **MethodSpec.model_validate_json(spec).model_dump(),
                function_hash=fhash,
                registered_at=datetime.fromtimestamp(at, UTC),
                latest=bool(latest),
            )
            for fhash, spec, at, latest in rows
        ]
        return [m for m in methods if m.latest] if latest_only else methods

    # --- jobs ------------------------------------------------------------------------------------------

    def get_jobs(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The records of the known ids, in the order asked."""
        by_id: dict[str, JobRecord] = {}
        for chunk in _chunks(job_ids):
            rows = self._conn().execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))",
                (json.dumps(chunk),),
            )
            for row in rows:
                by_id[row[0]] = _job(row)
        return [by_id[job_id] for job_id in job_ids if job_id in by_id]

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        """The most recent jobs, newest first, optionally of one status."""
        rows = self._conn().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE (? IS NULL OR status = ?) ORDER BY seq DESC LIMIT ?",
            (status, status, limit),
        )
        return [_job(row) for row in rows]

    def active_jobs(self, scheduler: str) -> list[JobRecord]:
        """Jobs of one scheduler that are pending or running, oldest first."""
        rows = self._conn().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE scheduler = ? AND status IN {_ACTIVE} ORDER BY seq",
            (scheduler,),
        )
        return [_job(row) for row in rows]

    def claim_pending(self, scheduler: str, limit: int) -> list[ClaimedJob]:
        """Move up to ``limit`` pending jobs to ``CF`` (claimed, being started), oldest first."""
        if limit <= 0:
            return []
        with self._transaction("IMMEDIATE") as conn:
            rows = conn.execute(
                "UPDATE jobs SET status = ? WHERE seq IN (SELECT seq FROM jobs"
                " WHERE scheduler = ? AND status = ? ORDER BY seq LIMIT ?)"
                " RETURNING seq, job_id, file_hash, method_name, function_hash, parameters",
                (st.STARTING, scheduler, st.PENDING, limit),
            ).fetchall()
            specs = dict(
                conn.execute(
                    "SELECT function_hash, spec FROM methods WHERE function_hash IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted({row[4] for row in rows})),),
                )
            )
        rows.sort()
        return [ClaimedJob(r[1], r[2], r[3], r[4], r[5], specs[r[4]]) for r in rows]

    def requeue(self, job_ids: Sequence[str]) -> None:
        """Claimed jobs whose runner never started go back to the queue."""
        self._conn().execute(
            "UPDATE jobs SET status = ?, scheduler_id = NULL"
            " WHERE job_id IN (SELECT value FROM json_each(?)) AND status = ?",
            (st.PENDING, json.dumps(list(job_ids)), st.STARTING),
        )

    def mark_running(self, job_id: str, scheduler_id: str, started_at: float) -> bool:
        """``PD``/``CF`` to ``R``; False when the job left those states meanwhile (it was cancelled)."""
        cursor = self._conn().execute(
            "UPDATE jobs SET status = ?, scheduler_id = ?, started_at = ?"
            f" WHERE job_id = ? AND status IN {_NOT_STARTED}",
            (st.RUNNING, scheduler_id, started_at, job_id),
        )
        return cursor.rowcount == 1

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
            cursor = conn.executemany(
                "UPDATE jobs SET status = ?, exit_code = coalesce(?, exit_code), output = coalesce(?, output),"
                " error = coalesce(?, error), started_at = coalesce(?, started_at),"
                " finished_at = coalesce(?, finished_at), scheduler_id = coalesce(?, scheduler_id)"
                f" WHERE job_id = ? AND status IN {_ACTIVE}",
                (
                    (u.status, u.exit_code, u.output, u.error, u.started_at, u.finished_at, u.scheduler_id,
                     u.job_id)
                    for u in updates
                ),
            )  # fmt: skip
            return cursor.rowcount

    def cancel_pending(self, job_ids: Sequence[str], reason: str) -> list[str]:
        """Cancel jobs that have not started (``PD``/``CF``): no runner will ever pick them up."""
        rows = (
            self._conn()
            .execute(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ?"
                f" WHERE job_id IN (SELECT value FROM json_each(?)) AND status IN {_NOT_STARTED} RETURNING job_id",
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
                f" WHERE job_id IN (SELECT value FROM json_each(?)) AND status IN {_ACTIVE} RETURNING job_id",
                (json.dumps(list(job_ids)),),
            )
            .fetchall()
        )
        return [row[0] for row in rows]

    def cancel_requests(self, scheduler: str) -> list[tuple[str, str | None]]:
        """(job_id, scheduler_id) of running jobs flagged for cancellation."""
        rows = self._conn().execute(
            f"SELECT job_id, scheduler_id FROM jobs WHERE scheduler = ? AND status IN {_ACTIVE}"
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

    def list_batches(self, limit: int = 100) -> list[BatchSummary]:
        rows = self._conn().execute(
            "SELECT batch_id, created_at, total_jobs, statistics FROM batches ORDER BY created_at DESC LIMIT ?",
            (limit,),
        )
        return [
            BatchSummary(
                batch_id=bid,
                created_at=datetime.fromtimestamp(at, UTC),
                total_jobs=total,
                statistics=BatchStatistics.model_validate_json(stats),
            )
            for bid, at, total, stats in rows
        ]

    def update_batch(self, batch_id: str, statistics: BatchStatistics, results: Sequence[Mapping[str, Any]]) -> None:
        """Rewrite a batch's results (after the scheduler refused some of its jobs)."""
        self._conn().execute(
            "UPDATE batches SET total_jobs = ?, statistics = ?, results = ? WHERE batch_id = ?",
            (len(results), statistics.model_dump_json(), _pack_results(results), batch_id),
        )

    def get_batch(self, batch_id: str) -> tuple[BatchSummary, list[MultiJobResult]] | None:
        row = (
            self._conn()
            .execute(
                "SELECT batch_id, created_at, total_jobs, statistics, results FROM batches WHERE batch_id = ?",
                (batch_id,),
            )
            .fetchone()
        )
        if row is None:
            return None
        summary = BatchSummary(
            batch_id=row[0],
            created_at=datetime.fromtimestamp(row[1], UTC),
            total_jobs=row[2],
            statistics=BatchStatistics.model_validate_json(row[3]),
        )
        results = _RESULTS.validate_python([dict(zip(PACKED_FIELDS, row, strict=True)) for row in json.loads(row[4])])
        return summary, results
