"""The team's tables (users, audit, uploads) and the owner columns of jobs and batches: every statement about
who may do what, and who did what, on the same SQLite file as the jobs.

The owner of a job is recorded in the transaction that inserts it (:func:`record_owner`), so a crash never
leaves a job without its owner; everything else here is one short statement.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain import status as st
from ..domain.jobs import ClaimedJob
from ..domain.models import BatchSummary, JobRecord
from .pipelines import PipelineRows
from .rows import BATCH_COLUMNS, JOB_COLUMNS, batch_summary, chunks, job_from_row
from .schema import ACTIVE_SET
from .sqlite import Store, method_specs

#: The ``scheduler`` of a job held back by its owner's quota: pending (``PD``), and claimed by no scheduler
#: until :meth:`TeamStore.release_held` hands it to a real one.
HELD = "quota"


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user as stored: the token only as its public id, salt and salted hash."""

    name: str
    admin: bool
    token_id: str | None
    token_salt: bytes | None
    token_hash: bytes | None
    max_running: int | None
    max_configs: int | None
    created_at: float
    revoked_at: float | None


_USER_COLUMNS = "name, admin, token_id, token_salt, token_hash, max_running, max_configs, created_at, revoked_at"


def _user(row: Sequence[Any]) -> UserRow:
    return UserRow(row[0], bool(row[1]), *row[2:])


def active_jobs(conn: sqlite3.Connection, owner: str) -> tuple[int, int]:
    """(in progress with a scheduler, held by the quota) jobs of ``owner``."""
    row = conn.execute(
        f"SELECT count(*) FILTER (WHERE scheduler != ?), count(*) FILTER (WHERE scheduler = ?) FROM jobs"
        f" WHERE owner = ? AND status IN {ACTIVE_SET}",
        (HELD, HELD, owner),
    ).fetchone()
    return int(row[0]), int(row[1])


def record_owner(conn: sqlite3.Connection, owner: str, batch_id: str | None, job_ids: Sequence[str]) -> None:
    """Mark a new batch and the new jobs of one call as ``owner``'s (inside the call's write transaction)."""
    if batch_id is not None:
        conn.execute("UPDATE batches SET owner = ? WHERE batch_id = ? AND owner IS NULL", (owner, batch_id))
    for chunk in chunks(job_ids):
        conn.execute(
            "UPDATE jobs SET owner = ? WHERE job_id IN (SELECT value FROM json_each(?))", (owner, json.dumps(chunk))
        )


class TeamStore:
    """Users, the audit trail, uploads and owners in a :class:`~.sqlite.Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- users -----------------------------------------------------------------------------------------

    def add_user(self, row: UserRow) -> bool:
        """Insert a user; False when the name is taken."""
        with self.store.write() as tx:
            cursor = tx.connection.execute(
                f"INSERT OR IGNORE INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row.name, int(row.admin), row.token_id, row.token_salt, row.token_hash, row.max_running,
                 row.max_configs, row.created_at, row.revoked_at),
            )  # fmt: skip
            return cursor.rowcount == 1

    def user(self, name: str) -> UserRow | None:
        with self.store.read() as tx:
            row = tx.connection.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else _user(row)

    def user_by_token_id(self, token_id: str) -> UserRow | None:
        with self.store.read() as tx:
            row = tx.connection.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE token_id = ? AND revoked_at IS NULL", (token_id,)
            ).fetchone()
        return None if row is None else _user(row)

    def users(self) -> list[UserRow]:
        with self.store.read() as tx:
            rows = tx.connection.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()
        return [_user(row) for row in rows]

    def has_users(self) -> bool:
        with self.store.read() as tx:
            return tx.connection.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    def update_user(self, name: str, **values: Any) -> bool:
        """Set columns of one user (names from this module's callers, never from a request); False if unknown."""
        assert values and set(values) <= set(_USER_COLUMNS.split(", ")), values
        assignments = ", ".join(f"{column} = ?" for column in values)
        with self.store.write() as tx:
            cursor = tx.connection.execute(f"UPDATE users SET {assignments} WHERE name = ?", (*values.values(), name))
            return cursor.rowcount == 1

    # --- audit -----------------------------------------------------------------------------------------

    def audit(self, actor: str | None, action: str, target: str | None, detail: dict[str, Any] | None) -> None:
        with self.store.write() as tx:
            tx.connection.execute(
                "INSERT INTO audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                (time.time(), actor, action, target, None if detail is None else json.dumps(detail)),
            )

    def audit_entries(
        self, limit: int, action: str | None = None
    ) -> list[tuple[float, str | None, str, str | None, dict[str, Any] | None]]:
        """(at, actor, action, target, detail), newest first."""
        with self.store.read() as tx:
            rows = tx.connection.execute(
                "SELECT at, actor, action, target, detail FROM audit WHERE (? IS NULL OR action = ?)"
                " ORDER BY seq DESC LIMIT ?",
                (action, action, limit),
            ).fetchall()
        return [(at, actor, act, target, None if d is None else json.loads(d)) for at, actor, act, target, d in rows]

    # --- uploads and owners ----------------------------------------------------------------------------

    def record_upload(self, file_hash: str, user: str) -> None:
        with self.store.write() as tx:
            tx.connection.execute(
                "INSERT OR IGNORE INTO uploads (file_hash, uploaded_by, at) VALUES (?, ?, ?)",
                (file_hash, user, time.time()),
            )

    def uploaders(self, file_hash: str) -> list[str]:
        with self.store.read() as tx:
            rows = tx.connection.execute(
                "SELECT uploaded_by FROM uploads WHERE file_hash = ? ORDER BY at", (file_hash,)
            ).fetchall()
        return [row[0] for row in rows]

    def batch_owner(self, batch_id: str) -> tuple[bool, str | None]:
        """(found, owner) of a recorded batch."""
        with self.store.read() as tx:
            row = tx.connection.execute("SELECT owner FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return (False, None) if row is None else (True, row[0])

    def pipeline_owner(self, pipeline_id: str) -> tuple[bool, str | None]:
        """(found, owner) of a recorded pipeline."""
        with self.store.read() as tx:
            found = PipelineRows(tx.connection).header(pipeline_id)
        return (False, None) if found is None else (True, found[1])

    def job_owners(self, job_ids: Sequence[str]) -> dict[str, str | None]:
        owners: dict[str, str | None] = {}
        with self.store.read() as tx:
            for chunk in chunks(job_ids):
                rows = tx.connection.execute(
                    "SELECT job_id, owner FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))",
                    (json.dumps(chunk),),
                )
                owners.update((job_id, owner) for job_id, owner in rows)
        return owners

    def owned_jobs(self, owner: str, status: str | None, limit: int) -> list[JobRecord]:
        with self.store.read() as tx:
            rows = tx.connection.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE owner = ? AND (? IS NULL OR status = ?)"
                " ORDER BY seq DESC LIMIT ?",
                (owner, status, status, limit),
            ).fetchall()
        return [job_from_row(row) for row in rows]

    def owned_batches(self, owner: str, limit: int, name: str | None = None) -> list[BatchSummary]:
        """The owner's newest batches first; ``name``: only those of that name."""
        named, args = ("AND name = ? ", (owner, name, limit)) if name is not None else ("", (owner, limit))
        with self.store.read() as tx:
            rows = tx.connection.execute(
                f"SELECT {BATCH_COLUMNS} FROM batches WHERE owner = ? {named}ORDER BY created_at DESC LIMIT ?", args
            ).fetchall()
        return [batch_summary(row) for row in rows]

    def held_owners(self) -> list[str]:
        """Users with jobs held back by their quota."""
        with self.store.read() as tx:
            rows = tx.connection.execute(
                "SELECT DISTINCT owner FROM jobs WHERE scheduler = ? AND status = ?", (HELD, st.PENDING)
            ).fetchall()
        return [row[0] for row in rows]

    def release_held(self, limits: dict[str, int | None], scheduler: str) -> list[ClaimedJob]:
        """Hand each owner's held jobs, oldest first, to ``scheduler`` while they are under ``limits`` (jobs in
        progress); what the scheduler must now be given. One write transaction: no job is released twice."""
        released: list[tuple[Any, ...]] = []
        with self.store.write() as tx:
            conn = tx.connection
            for owner, limit in limits.items():
                room = -1 if limit is None else limit - active_jobs(conn, owner)[0]
                if room == 0 or room < -1:
                    continue
                released += conn.execute(
                    "UPDATE jobs SET scheduler = ? WHERE seq IN (SELECT seq FROM jobs WHERE owner = ?"
                    " AND scheduler = ? AND status = ? ORDER BY seq LIMIT ?)"
                    " RETURNING seq, job_id, file_hash, method_name, function_hash, parameters, file_inputs, priority",
                    (scheduler, owner, HELD, st.PENDING, room),
                ).fetchall()
            specs = method_specs(conn, (row[4] for row in released))
        released.sort()
        return [ClaimedJob(r[1], r[2], r[3], r[4], r[5], specs[r[4]], r[6], priority=r[7]) for r in released]

    def usage(self) -> dict[str, dict[str, int]]:
        """Per owner: jobs running (started), pending (not started) and in total."""
        with self.store.read() as tx:
            rows = tx.connection.execute(
                "SELECT owner, count(*) FILTER (WHERE status IN " + ACTIVE_SET + " AND status != ?),"
                " count(*) FILTER (WHERE status = ?), count(*) FROM jobs WHERE owner IS NOT NULL GROUP BY owner",
                (st.PENDING, st.PENDING),
            ).fetchall()
        return {owner: {"running": running, "pending": pending, "total": total} for owner, running, pending, total
                in rows}  # fmt: skip
