"""Pipelines run by the engine (docs/design.md section 10): a step is released, as an ordinary job, once its
upstream steps completed, its job key computed from the content it then receives.

Release is the engine's, not Slurm's ``--dependency=afterok``: a step's job key needs its upstream's output,
which exists only once the upstream ran, and engine release works the same on every scheduler. Any process that
holds an engine on the store releases: a background thread while some step waits (the server's, the kernel's),
every ``GET /pipelines/{id}``, and an engine opened on a store with waiting steps. Releases are idempotent: a
step leaves ``waiting`` by a compare-and-set in the very write transaction that records its job, so of two
processes releasing it one wins and the other's transaction rolls back, and nothing runs twice.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..domain import status as st
from ..domain.errors import DshpcError, InvalidInputError, NotFoundError
from ..domain.models import CancelResponse, ConfigLike, FileInfo, JobRecord, MultiJobSimulationResponse, ResultRow
from ..domain.pipeline_models import PipelineDetail, PipelineStatistics, PipelineStep, StepState
from ..domain.pipelines import (
    Step,
    StepResolutionError,
    Upstream,
    failed_reason,
    order,
    parse_pipeline,
    read_step,
    resolve,
    waiting_reason,
)
from ..store.pipelines import HAS_JOB, WAITING, PipelineRows, StepPlace, StepRow
from ..store.sqlite import Store, Transaction
from .identity import acting_for, current_caller

log = logging.getLogger("dshpc_jupyter.pipelines")
#: What runs inside the write transaction that records a call's new jobs, given the call's result rows.
Inside = Callable[[Transaction, Sequence[ResultRow]], None]
#: An owner's ``max_running`` (docs/design.md section 11.4), which their released steps count against.
RunningQuota = Callable[[str], int | None]
#: Seconds between two looks of the releasing thread (the delay from an upstream's end to its dependents).
RELEASE_INTERVAL_S = 0.02
#: Seconds between the thread's polls of the schedulers of unfinished dependencies (what moves Slurm jobs on);
#: between them it reads only the statuses in the store.
SCHEDULER_POLL_S = 1.0
CANCELLED_WITH_PIPELINE = "cancelled with the pipeline"
#: The output file holding a stdout too long for the job's ``output`` (docs/design.md section 8.2).
STDOUT_FILE = "@stdout"


class Host(Protocol):
    """What pipelines need of the engine (kept narrow so this module does not import it)."""

    store: Store

    def submit_inside(self, configs: Sequence[ConfigLike], inside: Inside) -> MultiJobSimulationResponse: ...

    def simulate_jobs(
        self, configs: Sequence[ConfigLike], *, dry_run: bool = False, append_to: str | None = None
    ) -> MultiJobSimulationResponse: ...

    def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]: ...

    def cancel(self, job_ids: Sequence[str]) -> CancelResponse: ...

    def upload_file(self, source: bytes | str | os.PathLike[str], *, filename: str | None = None) -> FileInfo: ...


class _LostRaceError(DshpcError):
    """Another process released one of these steps first: this release rolls back."""


@dataclass(slots=True)
class _Sweep:
    """One look at a pipeline: where each of its steps is, and the status of the jobs they depend on."""

    rows: dict[str, StepPlace]
    statuses: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one sweep left: steps still waiting, the unfinished jobs they wait for, whether it wrote."""

    waiting: int
    unfinished: list[str]
    wrote: bool


class Pipelines:
    """Submit, look at, cancel and release pipelines on one engine (see the module docstring)."""

    def __init__(self, host: Host, interval: float = RELEASE_INTERVAL_S) -> None:
        self.host = host
        self.interval = interval
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._kicked = False
        self._stop = threading.Event()
        #: A server for a team sets it to its users' quotas; the embedded engine's local user has none.
        self.running_quota: RunningQuota = _no_quota

    # --- the operations ----------------------------------------------------------------------------------

    def submit(self, steps: object) -> PipelineDetail:
        """Check the whole pipeline (nothing is recorded when a step is refused), record it, release the
        steps that depend on nothing, and answer its state."""
        parsed = parse_pipeline(steps)
        self._check(parsed)
        pipeline_id = uuid.uuid4().hex
        rows = [(n, json.dumps(parsed[n].wire()), list(parsed[n].depends_on)) for n in order(parsed)]
        with self.host.store.write() as tx:
            PipelineRows(tx.connection).insert(pipeline_id, time.time(), rows, current_caller().name)
        self.release([pipeline_id])
        self._start()
        return self.detail(pipeline_id, release=False)

    def detail(self, pipeline_id: str, *, release: bool = True) -> PipelineDetail:
        """The pipeline now, after releasing what its finished steps allow (so a poll alone moves it on)."""
        if release:
            self.release([pipeline_id], poll=False)  # the look below polls the schedulers
        with self.host.store.read() as tx:
            table = PipelineRows(tx.connection)
            header, rows = table.header(pipeline_id), table.steps(pipeline_id)
        if header is None:
            raise NotFoundError(f"Pipeline '{pipeline_id}' not found")
        created, owner = header
        jobs = {j.job_id: j for j in self.host.job_statuses([r.job_id for r in rows if r.job_id])}
        steps = {row.step: _step_view(row, rows, jobs) for row in rows}
        counts: dict[str, int] = {}
        for step in steps.values():
            counts[step.state] = counts.get(step.state, 0) + 1
        outcomes = [s.outcome for s in steps.values()]
        stats = PipelineStatistics(
            total_steps=len(steps), new_jobs=sum(o in ("new", "resubmitted") for o in outcomes),
            cached=outcomes.count("cached"), **counts,
        )  # fmt: skip
        return PipelineDetail(pipeline_id=pipeline_id, created_at=created, owner=owner, steps=steps, statistics=stats)

    def cancel(self, pipeline_id: str) -> PipelineDetail:
        """Cancel every step: the waiting ones end at once, the jobs of the released ones are cancelled."""
        with self.host.store.write() as tx:
            table = PipelineRows(tx.connection)
            if table.created_at(pipeline_id) is None:
                raise NotFoundError(f"Pipeline '{pipeline_id}' not found")
            rows = table.steps(pipeline_id)
            for row in rows:
                if row.state == WAITING:
                    table.end(row, "cancelled", CANCELLED_WITH_PIPELINE)
        self.host.cancel([r.job_id for r in rows if r.job_id])
        return self.detail(pipeline_id, release=False)

    # --- checks at submission ------------------------------------------------------------------------------

    def _check(self, steps: Mapping[str, Step]) -> None:
        """What can be known before anything ran: methods, files and parameter names of every step, and the
        whole of each step that references nothing (a dry run of it)."""
        methods = self.host.store.latest_methods({s.method_name for s in steps.values()})
        literal: dict[str, str] = {}
        for step in steps.values():
            where = f"steps.{step.name}"
            if step.method_name not in methods:
                raise InvalidInputError(f"{where}.method_name: Method '{step.method_name}' not found")
            known = {p.name for p in methods[step.method_name][1].parameters}
            unknown = sorted(set(step.parameters) - known)
            if unknown:
                raise InvalidInputError(f"{where}.parameters: unknown parameter '{unknown[0]}' (known: "
                                        f"{', '.join(sorted(known)) or 'none'})")  # fmt: skip
            for file_hash in _literal_files(step):
                literal.setdefault(file_hash.lower(), where)
        present = self.host.store.existing_files(sorted(literal))
        for file_hash, where in literal.items():
            if file_hash not in present:
                raise InvalidInputError(f"{where}: File '{file_hash}' not found")
        roots = [s for s in steps.values() if not s.depends_on]
        if roots:
            answer = self.host.simulate_jobs([resolve(s, {}) for s in roots], dry_run=True)
            for step, result in zip(roots, answer.results, strict=True):
                if result.outcome == "invalid":
                    raise InvalidInputError(f"steps.{step.name}: {result.message}")

    # --- release ---------------------------------------------------------------------------------------

    def release(self, pipeline_ids: Sequence[str] | None = None, *, poll: bool = True) -> int:
        """Release every waiting step whose dependencies completed, cancel those whose dependency failed
        (``dependency <step> failed``); the number of steps still waiting. Only statuses are read, except the
        upstream jobs of steps being released; ``poll`` asks the schedulers of unfinished dependencies first."""
        return self._sweep(pipeline_ids, poll).waiting

    def _sweep(self, pipeline_ids: Sequence[str] | None, poll: bool) -> _Outcome:
        with self.host.store.read() as tx:
            table = PipelineRows(tx.connection)
            waiting = table.waiting_steps(pipeline_ids)
            sweeps = {pid: _Sweep(table.step_states(pid), {}) for pid in {row.pipeline_id for row in waiting}}
            wanted = {d.job_id for row in waiting for d in (sweeps[row.pipeline_id].rows[n] for n in row.depends_on)
                      if d.job_id}  # fmt: skip
            statuses = table.job_states(sorted(wanted))
        unfinished = [job_id for job_id, code in statuses.items() if not st.is_final(code)]
        if poll and unfinished:
            statuses.update((j.job_id, j.status) for j in self.host.job_statuses(unfinished))
        ended: list[tuple[StepRow, str, str]] = []
        ready: list[StepRow] = []
        for row in waiting:
            sweep = sweeps[row.pipeline_id]
            sweep.statuses = statuses
            self._decide(row, sweep, ended, ready)
        configs = self._resolve(ready, sweeps, ended)
        if ended:
            with self.host.store.write() as tx:
                table = PipelineRows(tx.connection)
                for row, state, reason in ended:
                    table.end(row, state, reason)
        if configs:
            self._submit(configs)
        still = len(waiting) - len(ready) - len(ended)
        return _Outcome(still, [j for j in unfinished if not st.is_final(statuses[j])], bool(ended or configs))

    def _decide(self, row: StepRow, sweep: _Sweep, ended: list[tuple[StepRow, str, str]], ready: list[StepRow]) -> None:
        """One waiting step (its pipeline's steps come in dependency order): ended, ready or still waiting."""
        states = {name: _dep_state(sweep.rows[name], sweep.statuses) for name in row.depends_on}
        failed = next((n for n, s in states.items() if s == "failed"), None)
        if failed is not None:
            dep = sweep.rows[failed]
            reason = dep.reason if dep.state == "cancelled" and dep.reason else failed_reason(failed)
            ended.append((row, "cancelled", reason))
            sweep.rows[row.step] = StepPlace("cancelled", None, reason)
        elif all(s == "completed" for s in states.values()):
            ready.append(row)

    def _resolve(
        self, ready: Sequence[StepRow], sweeps: Mapping[str, _Sweep], ended: list[tuple[StepRow, str, str]]
    ) -> list[tuple[StepRow, dict[str, Any]]]:
        """The configs of the ready steps, their references replaced by what the upstream made (its jobs read in
        one query); a step whose reference names what the upstream did not make ends in ``error``."""
        ids = {sweeps[r.pipeline_id].rows[n].job_id or "" for r in ready for n in r.depends_on}
        jobs = {job.job_id: job for job in self.host.store.get_jobs(sorted(ids))} if ids else {}
        configs = []
        for row in ready:
            sweep = sweeps[row.pipeline_id]
            upstream = {n: self._upstream(n, jobs[sweep.rows[n].job_id or ""]) for n in row.depends_on}
            try:
                configs.append((row, resolve(read_step(row.step, json.loads(row.spec)), upstream)))
            except StepResolutionError as exc:
                ended.append((row, "error", str(exc)))
        return configs

    def _upstream(self, name: str, job: JobRecord) -> Upstream:
        def stdout_file() -> str:
            return self.host.upload_file((job.output or "").encode(), filename=f"{name}.out").file_hash

        if STDOUT_FILE in job.output_files:  # a stdout over the output limit is stored whole (section 8.2)
            whole = job.output_files[STDOUT_FILE]
            return Upstream(job.output, job.output_files, lambda: whole)
        return Upstream(job.output, job.output_files, stdout_file)

    def _submit(self, ready: Sequence[tuple[StepRow, dict[str, Any]]]) -> None:
        """Give the ready steps their jobs, one call per pipeline owner, as that owner (their new jobs are
        theirs whoever releases them: docs/design.md section 11.3)."""
        with self.host.store.read() as tx:
            owners = PipelineRows(tx.connection).owners(row.pipeline_id for row, _ in ready)
        by_owner: dict[str | None, list[tuple[StepRow, dict[str, Any]]]] = {}
        for item in ready:
            by_owner.setdefault(owners.get(item[0].pipeline_id), []).append(item)
        for owner, items in by_owner.items():
            with acting_for(owner, None if owner is None else self.running_quota(owner)):
                self._submit_owned(items)

    def _submit_owned(self, ready: Sequence[tuple[StepRow, dict[str, Any]]]) -> None:
        """Give the ready steps their jobs in one call; each step leaves ``waiting`` in the transaction that
        records its job, or the whole call rolls back (another process released one of them first)."""

        def inside(tx: Transaction, results: Sequence[ResultRow]) -> None:
            table = PipelineRows(tx.connection)
            for (row, _), result in zip(ready, results, strict=True):
                job_id = result["job_id"]
                reason = None if job_id is not None else f"step '{row.step}': {result['message']}"
                if not table.release(row, job_id, result["outcome"], reason):
                    raise _LostRaceError

        try:
            self.host.submit_inside([config for _, config in ready], inside)
        except _LostRaceError:
            log.info("another process released these steps first")

    # --- the releasing thread --------------------------------------------------------------------------

    def resume(self) -> None:
        """Start releasing if the store holds waiting steps (left by a process that died, say)."""
        with self.host.store.read() as tx:
            waiting = bool(PipelineRows(tx.connection).waiting_pipelines())
        if waiting:
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._kicked = True
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="dshpc-pipelines", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        """Sweep while steps wait. Between sweeps a look costs two cheap queries: did anyone else commit, and
        did one of the jobs the steps wait for end (a sweep of a 1,000-step pipeline is tens of ms, and
        running jobs would pay for it); the schedulers are polled every ``SCHEDULER_POLL_S``."""
        polled, version = 0.0, -1
        watch: tuple[list[str], int] | None = None
        while not self._stop.is_set():
            poll = time.monotonic() - polled >= SCHEDULER_POLL_S
            try:
                if poll or watch is None or self._news(watch, version):
                    version = self._data_version()
                    polled = time.monotonic() if poll else polled
                    outcome = self._sweep(None, poll)
                    waiting = outcome.waiting
                    watch = None if outcome.wrote else (outcome.unfinished, self._ended(outcome.unfinished))
            except Exception:  # a busy or closing store: the next look tries again
                log.exception("releasing pipeline steps failed")
                waiting, watch = 1, None
            with self._lock:
                if waiting == 0 and not self._kicked:
                    self._thread = None
                    return
                if self._kicked:
                    watch = None
                self._kicked = False
            self._stop.wait(self.interval)
        with self._lock:
            self._thread = None

    def _data_version(self) -> int:
        with self.host.store.read() as tx:
            return PipelineRows(tx.connection).data_version()

    def _ended(self, job_ids: Sequence[str]) -> int:
        with self.host.store.read() as tx:
            return PipelineRows(tx.connection).ended_count(job_ids) if job_ids else 0

    def _news(self, watch: tuple[list[str], int], version: int) -> bool:
        """Whether a sweep could find anything new: another process committed, and among what the waiting steps
        wait for, more jobs have ended than at the last sweep."""
        return self._data_version() != version and self._ended(watch[0]) != watch[1]

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=10)


def _literal_files(step: Step) -> list[str]:
    values: list[object] = [step.file_hash]
    for value in (step.file_inputs or {}).values():
        values.extend(value if isinstance(value, list) else [value])
    return [v for v in values if isinstance(v, str)]


def _dep_state(row: StepPlace, statuses: Mapping[str, str]) -> str:
    """``completed``, ``failed`` (its job failed, or it ended without one) or ``waiting`` (not yet ended)."""
    if row.state == WAITING:
        return "waiting"
    if row.state != HAS_JOB:
        return "failed"
    code = statuses.get(row.job_id or "")
    if code is None or not st.is_final(code):
        return "waiting"
    return "completed" if code == st.COMPLETED else "failed"


def _step_view(row: StepRow, rows: Sequence[StepRow], jobs: Mapping[str, JobRecord]) -> PipelineStep:
    """One step as answered: its state from its job's status, or from why it has none."""
    common: dict[str, Any] = {"method_name": json.loads(row.spec)["method_name"], "depends_on": list(row.depends_on)}
    if row.state == WAITING:
        done = {r.step for r in rows if r.job_id and jobs.get(r.job_id) and jobs[r.job_id].status == st.COMPLETED}
        reason = waiting_reason([d for d in row.depends_on if d not in done])
        return PipelineStep(**common, status=st.PENDING, state="waiting", reason=reason)
    if row.state != HAS_JOB:
        ended: StepState = "cancelled" if row.state == "cancelled" else "error"
        status = st.CANCELLED if ended == "cancelled" else None
        return PipelineStep(**common, status=status, state=ended, reason=row.reason)
    job = jobs.get(row.job_id or "")
    code = job.status if job is not None else None
    state: StepState = "running"
    if code in st.NOT_STARTED_CODES:
        state = "pending"
    elif code == st.COMPLETED:
        state = "completed"
    elif code == st.CANCELLED:
        state = "cancelled"
    elif st.is_final(code):
        state = "failed"
    completed = job is not None and state == "completed"
    return PipelineStep.model_validate(
        {**common, "job_id": row.job_id, "status": code, "state": state, "outcome": row.outcome,
         "reason": None if completed or job is None else job.error, "output": job.output if completed and job else None,
         "output_files": dict(job.output_files) if job else {}}
    )  # fmt: skip


def _no_quota(owner: str) -> int | None:
    """No owner's quota: what pipelines count against without a server for a team."""
    return None
