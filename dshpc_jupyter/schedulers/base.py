"""The Scheduler protocol: how the engine hands jobs to something that runs them, and hears back.

A scheduler receives jobs already recorded as pending, reports their state changes as ``JobUpdate``s (the
engine applies them to the store), and cancels on request. It never decides deduplication: that is the
engine's. Each backend is one short module beside this one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain.home import Home
from ..domain.methods import parse_memory_limit, parse_time_limit
from ..domain.models import JobRecord, MethodSpec
from ..store.sqlite import JobUpdate
from .runner import Task


@dataclass(frozen=True, slots=True)
class Submission:
    """A new job for the scheduler: what it runs, on what, with which (canonical) parameters."""

    job_id: str
    file_hash: str
    function_hash: str
    spec: MethodSpec
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """A job the scheduler could not accept, with the reason recorded on the job."""

    job_id: str
    reason: str


class Scheduler(Protocol):
    """What the engine needs from a backend that runs jobs."""

    #: Recorded on every job it runs (``jobs.scheduler``); polling and cancelling go to the job's scheduler.
    name: str

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        """Start (or queue) the jobs; return those refused. Must not block on the jobs running."""
        ...

    def poll(self, jobs: Sequence[JobRecord]) -> list[JobUpdate]:
        """The state changes of these in-progress jobs since they were recorded. A failing query returns
        no update for the jobs it could not see: a transient error never changes a job's state."""
        ...

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        """Stop these jobs: running ones report ``CA`` through ``poll`` (or the worker); those still pending
        in the store are already ``CA`` there and must just never run."""
        ...

    def close(self) -> None:
        """Release what the scheduler holds in this process; running jobs keep running."""
        ...


def build_task(
    home: Home, job_id: str, file_hash: str, function_hash: str, spec: MethodSpec, parameters: dict[str, Any]
) -> Task:
    """The runner's task for one job, with every path under ``home``."""
    method_dir = home.method_dir(function_hash)
    return Task(
        job_id=job_id,
        workspace=str(home.workspace(job_id)),
        command=spec.command,
        script=str(method_dir / spec.script_path),
        input_file=str(home.file_path(file_hash)),
        method_dir=str(method_dir),
        method_name=spec.name,
        parameters=parameters,
        time_limit=parse_time_limit(spec.resources.time),
        mem_limit=parse_memory_limit(spec.resources.mem),
    )
