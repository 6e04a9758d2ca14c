"""The records a scheduler exchanges with the store about jobs: a state change it reports, a job it claimed.

They live in the domain, below both the store (which applies and returns them) and the schedulers (which make
and read them), so the scheduler protocol (:mod:`dshpc_jupyter.schedulers.base`, which re-exports them) never
imports the store. Standard library only, like the rest of the domain's leaves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


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
    #: Output files already stored content-addressed: relative path to file hash (docs/design.md section 8.2).
    output_files: dict[str, str] | None = None
    #: False for a failure no retry may cure whatever the policy (a scheduler that refused the job).
    retriable: bool = True


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A pending job a worker claimed (now ``STARTING``), with what building its task needs: the parameters
    and the method spec as the JSON text the store holds."""

    job_id: str
    file_hash: str
    method_name: str
    function_hash: str
    parameters: str
    spec: str
    #: The named inputs as the JSON text the store holds, or None (the seed's single file, or none).
    file_inputs: str | None = None
    #: The ``time``/``mem`` a retry raised, as JSON text (None: the spec's), and which attempt this is.
    resources: str | None = None
    attempt: int = 1
    #: Higher starts first; carried so that a job handed on again (a quota release) keeps its place.
    priority: int = 0


class ActiveJob(NamedTuple):
    """A job in progress as a scheduler's poll compares it with its queue: four columns, not a whole record,
    so that a poll of 100,000 jobs of which few changed costs the few (docs/design.md section 14.1)."""

    job_id: str
    status: str
    scheduler_id: str | None
    #: Epoch seconds, or None until it started.
    started_at: float | None
