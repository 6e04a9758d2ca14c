"""The scheduler protocol: how the engine hands jobs to something that runs them, what it may record, and how.

Everything a new scheduler (PBS, say) needs is named in this file (``__all__``, the records of the signatures
included); it imports no store and no other scheduler.

**Who writes job state.** The engine records every new job as ``PD`` (``scheduler_id`` empty), then calls
``submit``; a refused job it fails itself, with the reason. A scheduler reports what happens next as
``JobUpdate``s returned by ``poll``; the engine applies them (``apply_updates``: a finished job never changes
again). What cannot wait for a poll goes through a ``JobLedger``, the narrow list of store operations a
scheduler may call, handed to it when it is built; a scheduler never holds the ``Store`` itself (the store
implements the ledger structurally). Returning updates alone is not enough, which is why the ledger exists: a
claim must be an atomic compare-and-set before a job leaves for a cluster (or two processes would submit it
twice), a cluster's id must be recorded as soon as it is known (or a crash would lose it), and the local
worker is its own process that outlives the one that submitted, so nobody else is there to apply its results.

**Claims and the crash window**, the two ways to take a pending job so no one else runs it:

- A scheduler that submits to an outside queue (Slurm) claims a set of jobs with a ``Claim``: one
  ``swap_scheduler_ids(ids, None, claim.token)`` (only the ids it returns are its own), then submits them and
  records the queue's ids with ``set_scheduler_ids``. A process dying in between leaves ``PD`` jobs holding
  nothing or a claim; once ``lost_submitter`` says so (its ``lease`` passed) any process may take them over by
  swapping the old token for a new claim's, then adopt what the old claim had already submitted, or submit
  them again. The engine polls every job in progress, pending ones included, so ``poll`` is where this
  recovery happens.
- A worker that runs jobs itself (the local worker) claims with ``claim_pending``, which moves them to
  ``STARTING``; ``mark_running`` records the runner (``R``). A ``STARTING`` job whose runner never started
  (the worker died) goes back to ``PD`` with ``requeue`` when the next worker starts.

Cancelling: the engine ends jobs still pending itself (``CA``); running ones are the scheduler's to stop
(``cancel``; the local side flags them with ``request_cancel``, the worker reads ``cancel_requests``). The
scheduler never decides deduplication: that is the engine's.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, Protocol, runtime_checkable

from ..domain import status as st
from ..domain.home import Home
from ..domain.jobs import ActiveJob, ClaimedJob, JobUpdate
from ..domain.methods import parse_memory_limit, parse_time_limit
from ..domain.models import FileInfo, JobRecord, MethodSpec
from .runner import RUNNER_FILE, STDOUT_FILE, STDOUT_OUTPUT, Result, Task, output_source, run_task

__all__ = [
    "ActiveJob",
    "Claim",
    "ClaimedJob",
    "FileInfo",
    "Home",
    "JobLedger",
    "JobRecord",
    "JobUpdate",
    "MethodSpec",
    "PollsActive",
    "Refusal",
    "Result",
    "Scheduler",
    "Submission",
    "Task",
    "build_task",
    "ingest_result",
    "keep_attempts",
    "lost_submitter",
    "result_update",
    "run_task",
    "with_resources",
]


@dataclass(frozen=True, slots=True)
class Submission:
    """A new job for the scheduler: what it runs, on what, with which (canonical) parameters."""

    job_id: str
    file_hash: str
    function_hash: str
    spec: MethodSpec
    parameters: dict[str, Any]
    #: Named inputs (docs/design.md section 8.1); None for the seed's single ``file_hash`` or a parameters-only job.
    file_inputs: dict[str, str | list[str]] | None = None
    #: Which attempt this is; from the second on, the workspace keeps the earlier ones (``keep_attempts``).
    attempt: int = 1
    #: Higher starts first (on Slurm it becomes ``--nice``).
    priority: int = 0

    @classmethod
    def of_record(cls, job: JobRecord, spec: MethodSpec) -> Submission:
        """A job recorded earlier, submitted again (a retry, or a job whose submitter vanished), with the
        resources its attempt was given."""
        return cls(job.job_id, job.file_hash or "", job.function_hash, with_resources(spec, job.resources),
                   job.parameters, job.file_inputs, job.attempt, job.priority)  # fmt: skip


@dataclass(frozen=True)
class Refusal:
    """A job the scheduler could not accept, with the reason recorded on the job."""

    job_id: str
    reason: str


@runtime_checkable
class JobLedger(Protocol):
    """The store operations a scheduler (and the local worker) may use, and nothing else."""

    def active_jobs(self, scheduler: str, limit: int = -1) -> list[JobRecord]:
        """Jobs of one scheduler that are pending or running, oldest first (the first ``limit``; all with -1)."""
        ...

    def active_states(self, scheduler: str) -> list[ActiveJob]:
        """Every job of one scheduler in progress, as (job_id, status, scheduler_id, started_at)."""
        ...

    def active_changes(self, scheduler: str, since: int | None) -> tuple[int, list[ActiveJob], list[str]]:
        """(cursor, its jobs in progress changed after change stamp ``since`` (all with None), other ids changed)."""
        ...

    def get_jobs(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The records of the known ids, in the order asked."""
        ...

    def method_spec(self, function_hash: str) -> MethodSpec | None:
        """The spec of a registered method version (to submit again a job whose submitter vanished)."""
        ...

    def swap_scheduler_ids(self, job_ids: Sequence[str], old: str | None, new: str) -> list[str]:
        """Compare-and-set the ``scheduler_id`` of pending jobs from ``old`` to ``new``; the ids it changed."""
        ...

    def set_scheduler_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Record (job_id, the outside queue's id) of submitted jobs."""
        ...

    def claim_pending(self, scheduler: str, limit: int) -> list[ClaimedJob]:
        """Move up to ``limit`` of this scheduler's pending jobs to ``STARTING``, oldest first."""
        ...

    def requeue(self, job_ids: Sequence[str]) -> None:
        """``STARTING`` jobs whose runner never started go back to ``PD``."""
        ...

    def mark_running(self, job_id: str, scheduler_id: str, started_at: float) -> bool:
        """``PD``/``STARTING`` to ``R`` with the runner's id; False when the job was cancelled meanwhile."""
        ...

    def apply_updates(self, updates: Sequence[JobUpdate]) -> int:
        """Apply state changes to jobs still in progress; how many changed."""
        ...

    def record_turn(
        self, scheduler: str, started: Sequence[tuple[str, str, float]], requeued: Sequence[str],
        updates: Sequence[JobUpdate], limit: int,
    ) -> tuple[list[str], list[ClaimedJob]]:  # fmt: skip
        """A local worker's turn in one write: ``mark_running`` of (job_id, runner, started_at), ``requeue``,
        ``apply_updates``, then ``claim_pending``; (the started ids cancelled meanwhile, the claims)."""
        ...

    def add_file(self, info: FileInfo) -> bool:
        """Record a stored file (an output a job wrote); False when the hash was already recorded."""
        ...

    def has_pending(self, scheduler: str) -> bool:
        """Whether any job of this scheduler waits in ``PD``."""
        ...

    def request_cancel(self, job_ids: Sequence[str]) -> list[str]:
        """Flag in-progress jobs for cancellation; those flagged."""
        ...

    def cancel_requests(self, scheduler: str) -> list[tuple[str, str | None]]:
        """(job_id, scheduler_id) of this scheduler's in-progress jobs flagged for cancellation."""
        ...


@dataclass(frozen=True, slots=True)
class Claim:
    """A submitter's hold on pending jobs it is handing to an outside queue, recorded as their
    ``scheduler_id`` (``claim:<unix seconds>:<nonce>``) until the queue's own ids replace it.

    The nonce is unique per claim, so it can also name what the claim submitted (Slurm's manifests and array
    comments), which is how a later process finds out whether a dead submitter's claim reached the queue.
    """

    PREFIX: ClassVar[str] = "claim:"

    made_at: int
    nonce: str

    @classmethod
    def new(cls) -> Claim:
        return cls(round(time.time()), uuid.uuid4().hex[:12])

    @classmethod
    def parse(cls, scheduler_id: str | None) -> Claim | None:
        """The claim a ``scheduler_id`` holds; None for anything else (nothing, or an outside queue's id)."""
        if scheduler_id is None or not scheduler_id.startswith(cls.PREFIX):
            return None
        made_at, sep, nonce = scheduler_id.removeprefix(cls.PREFIX).partition(":")
        if not sep or not made_at.isdigit():
            return None
        return cls(int(made_at), nonce)

    @property
    def token(self) -> str:
        """The ``scheduler_id`` that records this claim."""
        return f"{self.PREFIX}{self.made_at}:{self.nonce}"


def lost_submitter(job: JobRecord, lease: float, now: float) -> bool:
    """True for a pending job whose submitter has vanished: claimed more than ``lease`` seconds ago, or never
    claimed and recorded that long ago (the process died between recording it and ``submit``). A job holding
    an outside queue's id was submitted, and is the queue's to report."""
    if job.status != st.PENDING:
        return False
    claim = Claim.parse(job.scheduler_id)
    if claim is not None:
        held_since = float(claim.made_at)
    elif job.scheduler_id is None and job.attempt > 1:  # a retry waits for no submitter, only its backoff
        return job.retry_at is None or job.retry_at.timestamp() <= now
    elif job.scheduler_id is None:
        held_since = job.created_at.timestamp() if job.created_at else now
    else:
        return False
    return now - held_since > lease


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


@runtime_checkable
class PollsActive(Protocol):
    """A scheduler that follows its jobs in progress itself when polled by change (four columns of the jobs
    changed since its last poll, through ``JobLedger.active_changes``; whole records only for the few that need
    one) rather than being handed every record: the Slurm one (docs/design.md section 14.1)."""

    def poll_active(self) -> list[JobUpdate]:
        """The state changes of all this scheduler's jobs in progress, as ``poll`` would report them."""
        ...


def build_task(
    home: Home,
    job_id: str,
    file_hash: str,
    function_hash: str,
    spec: MethodSpec,
    parameters: dict[str, Any],
    file_inputs: Mapping[str, str | list[str]] | None = None,
) -> Task:
    """The runner's task for one job, with every path under ``home``: the seed's single file (``file_hash``),
    named inputs, or neither (``file_hash`` empty, a parameters-only job)."""
    method_dir = home.method_dir(function_hash)
    inputs = None
    if file_inputs is not None:
        paths = {
            k: [str(home.file_path(h)) for h in ([v] if isinstance(v, str) else v)] for k, v in file_inputs.items()
        }
        inputs = {k: p[0] if isinstance(file_inputs[k], str) else p for k, p in paths.items()}
    return Task(
        job_id=job_id,
        workspace=str(home.workspace(job_id)),
        command=spec.command,
        script=str(method_dir / spec.script_path),
        input_file=str(home.file_path(file_hash)) if file_hash else "",
        method_dir=str(method_dir),
        method_name=spec.name,
        parameters=parameters,
        time_limit=parse_time_limit(spec.resources.time),
        mem_limit=parse_memory_limit(spec.resources.mem),
        inputs=inputs,
    )


def with_resources(spec: MethodSpec, raised: Mapping[str, str] | None) -> MethodSpec:
    """The spec with the ``time``/``mem`` a retry raised (docs/design.md section 12.1)."""
    if not raised:
        return spec
    return spec.model_copy(update={"resources": spec.resources.model_copy(update=dict(raised))})


#: Where a workspace keeps the files of its earlier attempts: ``attempts/1/``, ``attempts/2/``, ...
ATTEMPTS_DIR = "attempts"


def keep_attempts(workspace: Path, attempt: int) -> None:
    """Before attempt ``attempt`` (from 2) runs in ``workspace``, move what the earlier one left into
    ``attempts/<attempt - 1>/``, so the runner starts clean and nobody ingests an old result."""
    if attempt <= 1 or not (workspace / RUNNER_FILE).exists():  # no earlier attempt ran here (or it was kept)
        return
    kept = workspace / ATTEMPTS_DIR / str(attempt - 1)
    kept.mkdir(parents=True, exist_ok=True)
    for entry in workspace.iterdir():
        if entry.name != ATTEMPTS_DIR:
            entry.replace(kept / entry.name)


def result_update(job_id: str, result: Result, output_files: dict[str, str] | None = None) -> JobUpdate:
    """The update that records a runner's result file on its job (with its output files, once stored)."""
    return JobUpdate(
        job_id, result.status, exit_code=result.exit_code, output=result.output, error=result.error,
        started_at=result.started_at, finished_at=result.finished_at, output_files=output_files or None,
    )  # fmt: skip


def ingest_result(home: Home, ledger: JobLedger, job_id: str, workspace: Path, result: Result) -> JobUpdate:
    """Store the output files a runner listed content-addressed in ``home`` (each once, recorded through the
    ledger) and return the update recording the result with them (docs/design.md section 8.2)."""
    for name, file_hash in result.output_files.items():
        target = home.file_path(file_hash)
        if not target.exists():
            link_or_copy(output_source(workspace, name), target, home.tmp_dir)
        size = target.stat().st_size
        filename = PurePosixPath(name).name if name != STDOUT_OUTPUT else STDOUT_FILE
        info = FileInfo(
            file_hash=file_hash, filename=filename, content_type=mimetypes.guess_type(filename)[0],
            file_size=size, metadata={"job_id": job_id, "path": name}, upload_date=datetime.now(UTC),
        )  # fmt: skip
        ledger.add_file(info)
    return result_update(job_id, result, result.output_files)


def link_or_copy(source: Path, target: Path, staging_dir: Path) -> None:
    """Put a content-addressed file in place: a hard link when on one filesystem, else a copy written aside
    and renamed, so a reader never sees half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = staging_dir / f".{target.name}.{uuid.uuid4().hex[:8]}"
    try:
        os.link(source, staged)
    except OSError:
        shutil.copyfile(source, staged)
    staged.chmod(0o444)
    staged.replace(target)
