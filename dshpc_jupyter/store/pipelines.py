"""The rows of pipelines and their steps (docs/design.md section 10), on a connection the caller's transaction
holds: a step leaves ``waiting`` only by a compare-and-set, so of two processes releasing one step, one wins."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ..domain import status as st

WAITING = "waiting"
#: A released step: its state is its job's.
HAS_JOB = "job"


@dataclass(frozen=True, slots=True)
class StepRow:
    """One stored step: its spec (JSON text), dependencies, and its job once released (or why it has none)."""

    pipeline_id: str
    position: int
    step: str
    spec: str
    depends_on: tuple[str, ...]
    state: str
    job_id: str | None
    outcome: str | None
    reason: str | None


class StepPlace(NamedTuple):
    """Where one step is: ``waiting``, ``job`` (then its job's status says more), ``cancelled`` or ``error``."""

    state: str
    job_id: str | None
    reason: str | None


class PipelineRows:
    """The statements on pipelines, run on the connection of a transaction (``Store.write``/``read``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert(
        self, pipeline_id: str, created_at: float, steps: Iterable[tuple[str, str, list[str]]], owner: str | None
    ) -> None:
        """Record a pipeline with every step waiting: (name, spec, dependencies) in submission order."""
        self._conn.execute(
            "INSERT INTO pipelines (pipeline_id, created_at, owner) VALUES (?, ?, ?)", (pipeline_id, created_at, owner)
        )
        self._conn.executemany(
            "INSERT INTO pipeline_steps (pipeline_id, position, step, spec, depends_on, state)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ((pipeline_id, i, name, spec, json.dumps(deps), WAITING) for i, (name, spec, deps) in enumerate(steps)),
        )

    def created_at(self, pipeline_id: str) -> float | None:
        found = self.header(pipeline_id)
        return None if found is None else found[0]

    def header(self, pipeline_id: str) -> tuple[float, str | None] | None:
        """(created_at, owner) of a recorded pipeline; None when there is none."""
        row = self._conn.execute(
            "SELECT created_at, owner FROM pipelines WHERE pipeline_id = ?", (pipeline_id,)
        ).fetchone()
        return None if row is None else (float(row[0]), row[1])

    def owners(self, pipeline_ids: Iterable[str]) -> dict[str, str | None]:
        """Who submitted each of these pipelines (None: the embedded engine's local user)."""
        rows = self._conn.execute(
            "SELECT pipeline_id, owner FROM pipelines WHERE pipeline_id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted(set(pipeline_ids))),),
        )
        return dict(rows.fetchall())

    def steps(self, pipeline_id: str) -> list[StepRow]:
        rows = self._conn.execute(
            "SELECT pipeline_id, position, step, spec, depends_on, state, job_id, outcome, reason"
            " FROM pipeline_steps WHERE pipeline_id = ? ORDER BY position",
            (pipeline_id,),
        )
        return [StepRow(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), *r[5:]) for r in rows]

    def waiting_steps(self, pipeline_ids: Sequence[str] | None = None) -> list[StepRow]:
        """The waiting steps of these pipelines (of every pipeline: None), in each one's dependency order."""
        rows = self._conn.execute(
            "SELECT pipeline_id, position, step, spec, depends_on, state, job_id, outcome, reason"
            " FROM pipeline_steps WHERE state = ? AND (? IS NULL OR pipeline_id IN (SELECT value FROM json_each(?)))"
            " ORDER BY pipeline_id, position",
            (WAITING, None if pipeline_ids is None else 1, json.dumps(list(pipeline_ids or []))),
        )
        return [StepRow(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), *r[5:]) for r in rows]

    def step_states(self, pipeline_id: str) -> dict[str, StepPlace]:
        """Every step of a pipeline by name: where it is, without its spec (what a release looks at)."""
        rows = self._conn.execute(
            "SELECT step, state, job_id, reason FROM pipeline_steps WHERE pipeline_id = ?", (pipeline_id,)
        )
        return {r[0]: StepPlace(*r[1:]) for r in rows}

    def job_states(self, job_ids: Sequence[str]) -> dict[str, str]:
        """The status of each of these jobs, and nothing else of them (cheap enough to ask every few ms)."""
        rows = self._conn.execute(
            "SELECT job_id, status FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)),),
        )
        return dict(rows.fetchall())

    def ended_count(self, job_ids: Sequence[str]) -> int:
        """How many of these jobs have ended: a releaser's cheap look for news between two sweeps."""
        row = self._conn.execute(
            "SELECT count(*) FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))"
            " AND status NOT IN (SELECT value FROM json_each(?))",
            (json.dumps(list(job_ids)), json.dumps(st.IN_PROGRESS_ORDER)),
        ).fetchone()
        return int(row[0])

    def data_version(self) -> int:
        """SQLite's count of commits made by other connections (same value: nobody else wrote since)."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def waiting_pipelines(self) -> list[str]:
        """The pipelines with a step still waiting (the partial index holds only those)."""
        rows = self._conn.execute("SELECT DISTINCT pipeline_id FROM pipeline_steps WHERE state = ?", (WAITING,))
        return [row[0] for row in rows]

    def release(self, step: StepRow, job_id: str | None, outcome: str | None, reason: str | None) -> bool:
        """A waiting step gets its job (``job_id`` None: it ends in error, ``reason`` saying why); False when
        another process released it first."""
        state = HAS_JOB if job_id is not None else "error"
        return self._set(step, state, job_id, outcome, reason)

    def end(self, step: StepRow, state: str, reason: str) -> bool:
        """A waiting step ends without a job (``cancelled`` or ``error``); False when it left ``waiting``."""
        return self._set(step, state, None, None, reason)

    def _set(self, step: StepRow, state: str, job_id: str | None, outcome: str | None, reason: str | None) -> bool:
        cursor = self._conn.execute(
            "UPDATE pipeline_steps SET state = ?, job_id = ?, outcome = ?, reason = ?"
            " WHERE pipeline_id = ? AND position = ? AND state = ?",
            (state, job_id, outcome, reason, step.pipeline_id, step.position, WAITING),
        )
        return cursor.rowcount == 1
