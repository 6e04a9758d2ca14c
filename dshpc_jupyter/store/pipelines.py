"""The rows of pipelines and their steps (docs/design.md section 10), on a connection the caller's transaction
holds: a step leaves ``waiting`` only by a compare-and-set, so of two processes releasing one step, one wins."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

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


class PipelineRows:
    """The statements on pipelines, run on the connection of a transaction (``Store.write``/``read``)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def insert(self, pipeline_id: str, created_at: float, steps: Iterable[tuple[str, str, list[str]]]) -> None:
        """Record a pipeline with every step waiting: (name, spec, dependencies) in submission order."""
        self._conn.execute("INSERT INTO pipelines (pipeline_id, created_at) VALUES (?, ?)", (pipeline_id, created_at))
        self._conn.executemany(
            "INSERT INTO pipeline_steps (pipeline_id, position, step, spec, depends_on, state)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ((pipeline_id, i, name, spec, json.dumps(deps), WAITING) for i, (name, spec, deps) in enumerate(steps)),
        )

    def created_at(self, pipeline_id: str) -> float | None:
        row = self._conn.execute("SELECT created_at FROM pipelines WHERE pipeline_id = ?", (pipeline_id,)).fetchone()
        return None if row is None else float(row[0])

    def steps(self, pipeline_id: str) -> list[StepRow]:
        rows = self._conn.execute(
            "SELECT pipeline_id, position, step, spec, depends_on, state, job_id, outcome, reason"
            " FROM pipeline_steps WHERE pipeline_id = ? ORDER BY position",
            (pipeline_id,),
        )
        return [StepRow(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), *r[5:]) for r in rows]

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
