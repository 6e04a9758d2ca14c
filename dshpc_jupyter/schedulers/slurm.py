"""The Slurm scheduler: new jobs go out as job arrays; their states come back from one ``squeue`` per poll.

Submission: the jobs of one ``submit`` call are grouped by their method's ``resources`` (each group needs its
own sbatch options), packed ``pack`` to an array task, and sent as one ``sbatch --array=0-N%throttle`` per chunk
of at most the cluster's ``MaxArraySize`` tasks. Each array task runs :mod:`dshpc_jupyter.schedulers.runner` on
its group of a manifest; ``scheduler_id`` is the array task (``1234_7``), shared by packmates.

Status: one ``squeue -t all`` per ``poll_interval`` for all our tasks (Slurm keeps ended tasks visible for
MinJobAge; only its changed lines are parsed) compared with four columns per job in progress: by change
(``poll_active``: only the jobs whose row or task changed, and those watched, see :mod:`.slurm_active`); the
runner's result files for the outcome, ``sacct`` for tasks squeue no longer knows, where accounting is enabled.
A failing ``squeue`` changes nothing. Slurm's own verdict (TIMEOUT, CANCELLED, ...) wins over the runner's
``CA``, which is only how the runner labels the SIGTERM Slurm sends.

Shared filesystem: compute nodes read the manifests, input files and method copies and write the workspaces
under ``workdir`` (default: the home directory), so it must be mounted at the same path on every node; the
Python running this module must be there too (a shared virtualenv). Compute nodes never open the store.

Crash window (the rules are :mod:`.base`'s): jobs are taken with a ``Claim`` (a compare-and-set of their
``scheduler_id``) before ``sbatch``, so two processes never submit the same one; the claim's nonce names the
manifests and the arrays' ``--comment``. A job the next poll finds with a lost submitter (``lost_submitter``,
after ``lease`` seconds) is claimed again, then adopted from the array its old claim already submitted (found by
that comment), or submitted again.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ..domain import status as st
from ..domain.errors import InvalidInputError
from ..domain.home import Home
from ..domain.methods import install_method, load_method, parse_memory_limit
from ..domain.models import JobRecord, MethodResources
from .base import (
    ActiveJob,
    Claim,
    JobLedger,
    JobUpdate,
    Refusal,
    Submission,
    build_task,
    ingest_result,
    keep_attempts,
    lost_submitter,
    with_resources,
)
from .runner import CANCEL_FILE, PARAMS_FILE, Result, Task, read_result, write_manifest
from .slurm_active import ActiveView
from .slurm_cli import (
    SQUEUE_FORMAT,
    STATE_CODES,
    QueueEntry,
    SlurmCommandError,
    accounting_enabled,
    array_option,
    max_array_size,
    nice_options,
    parse_config,
    parse_node_memory,
    parse_sacct,
    parse_sbatch,
    resource_options,
    run,
)
from .slurm_options import SlurmOptions as SlurmOptions  # re-exported: where users import it from
from .slurm_options import from_environment, positive
from .slurm_queue import QueueSnapshot
from .slurm_staging import copy_once, input_hashes, manifest_groups

log = logging.getLogger("dshpc_jupyter.slurm")

JOB_NAME = "dshpc"
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)
LOG_TAIL = 2000
REMOVED_MESSAGE = "removed from the Slurm queue before it started (scancel outside dshpc?)"
_TASK_ID = re.compile(r"\d+_\d+")


def is_task_id(scheduler_id: str | None) -> bool:
    """True for a Slurm array task id (``1234_7``), as opposed to a claim or nothing."""
    return scheduler_id is not None and _TASK_ID.fullmatch(scheduler_id) is not None


class SlurmScheduler:
    """Runs jobs as Slurm array tasks; see the module docstring for the protocol. Options not given are read
    from the environment (``$DSHPC_SLURM_PARTITION`` ...), then default."""

    name = "slurm"

    def __init__(self, home: Home, ledger: JobLedger, options: SlurmOptions | None = None) -> None:
        options = options or SlurmOptions()
        environment = from_environment()
        partition = options.partition if options.partition is not None else environment.get("partition")
        account = options.account if options.account is not None else environment.get("account")
        workdir = options.workdir if options.workdir is not None else environment.get("workdir")
        pack = options.pack if options.pack is not None else environment.get("pack", 1)
        sbatch_args = options.sbatch_args if options.sbatch_args is not None else environment.get("sbatch_args", [])
        throttle, poll_interval, lease, result_grace = (
            options.throttle, options.poll_interval, options.lease, options.result_grace,
        )  # fmt: skip
        positive("pack", pack)
        assert isinstance(pack, int)
        positive("throttle", throttle, allow_none=True)
        if isinstance(sbatch_args, str) or not all(isinstance(a, str) for a in sbatch_args):
            raise InvalidInputError("sbatch_args: must be a list of strings, one option each")
        for option, value in (("poll_interval", poll_interval), ("lease", lease), ("result_grace", result_grace)):
            if not isinstance(value, (int, float)) or value < 0:
                raise InvalidInputError(f"{option}: must be a number of seconds >= 0, got {value!r}")
        self.home = home
        self.ledger = ledger
        self.partition = partition
        self.account = account
        self.sbatch_args = list(sbatch_args)
        self.workdir = Home.open(workdir) if workdir is not None else home
        self.submit_dir = self.workdir.root / "slurm"
        self.throttle = throttle
        self.pack = pack
        self.poll_interval = float(poll_interval)
        self.lease = float(lease)
        self.result_grace = float(result_grace)
        self._config: dict[str, str] | None = None
        self._node_memory: dict[str | None, int | None] = {}
        self._snapshot: tuple[float, dict[str, QueueEntry]] | None = None
        self._parsed = QueueSnapshot()
        self._view = ActiveView(self.name)
        self._ended_at: dict[str, float] = {}

    @property
    def config(self) -> dict[str, str]:
        """``scontrol show config``, read once (an unreadable one gives Slurm's defaults, read again later)."""
        if self._config is None:
            try:
                self._config = parse_config(run(["scontrol", "show", "config"]))
            except SlurmCommandError as exc:
                log.warning("could not read the Slurm configuration (using defaults): %s", exc)
                return {}
        return self._config

    # --- submission ------------------------------------------------------------------------------------

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        claim = Claim.new()
        claimed = set(self.ledger.swap_scheduler_ids([s.job_id for s in submissions], None, claim.token))
        return self._submit([s for s in submissions if s.job_id in claimed], claim)

    def _submit(self, submissions: Sequence[Submission], claim: Claim) -> list[Refusal]:
        """One sbatch per (priority, resources, MaxArraySize chunk); the claim's nonce names manifests and comments."""
        nonce = claim.nonce
        groups: dict[str, list[Submission]] = {}
        for submission in map(self._within_node, submissions):
            key = f"{submission.priority} {submission.spec.resources.model_dump_json()}"
            groups.setdefault(key, []).append(submission)
        refusals: list[Refusal] = []
        for n, group in enumerate(groups.values()):
            try:
                tasks = [self._task(s) for s in group]
            except OSError as exc:
                reason = f"could not stage the job's files under {self.workdir.root}: {exc}"
                refusals += [Refusal(s.job_id, reason) for s in group]
                continue
            packs = [tasks[i : i + self.pack] for i in range(0, len(tasks), self.pack)]
            size = max_array_size(self.config)
            for m, start in enumerate(range(0, len(packs), size)):
                chunk = packs[start : start + size]
                try:
                    array_id = self._sbatch(f"{nonce}-{n}-{m}", chunk, group[0].spec.resources, group[0].priority)
                except SlurmCommandError as exc:
                    refusals += [Refusal(t.job_id, str(exc)) for p in chunk for t in p]
                    continue
                self.ledger.set_scheduler_ids((t.job_id, f"{array_id}_{i}") for i, p in enumerate(chunk) for t in p)
        return refusals

    def _within_node(self, submission: Submission) -> Submission:
        """A retry's raised memory, capped at what the partition's smallest node has (docs/design.md 10.1):
        Slurm would refuse more. A first attempt asks for what its method says, whatever that is."""
        memory = parse_memory_limit(submission.spec.resources.mem)
        if submission.attempt <= 1 or memory is None:
            return submission
        partition = submission.spec.resources.partition or self.partition
        if partition not in self._node_memory:
            try:
                sinfo = run(["sinfo", "-h", "-N", "-o", "%m", *([f"--partition={partition}"] if partition else [])])
            except SlurmCommandError as exc:
                log.warning("could not read the nodes' memory (the retry asks for what it needs): %s", exc)
                return submission
            self._node_memory[partition] = parse_node_memory(sinfo)
        node = self._node_memory[partition]
        if node is None or memory <= node:
            return submission
        return replace(submission, spec=with_resources(submission.spec, {"mem": f"{node >> 20}M"}))

    def _task(self, submission: Submission) -> Task:
        """The runner's task, with the input file and method copied to ``workdir`` when it is not the home."""
        s = submission
        if self.workdir != self.home:
            for file_hash in input_hashes(s):
                copy_once(self.home.file_path(file_hash), self.workdir.file_path(file_hash), self.workdir.tmp_dir)
            if not self.workdir.method_dir(s.function_hash).is_dir():
                install_method(self.workdir, load_method(self.home.method_dir(s.function_hash)))
        keep_attempts(self.workdir.workspace(s.job_id), s.attempt)
        return build_task(self.workdir, s.job_id, s.file_hash, s.function_hash, s.spec, s.parameters, s.file_inputs)

    def _sbatch(self, stem: str, groups: list[list[Task]], resources: MethodResources, priority: int = 0) -> str:
        """Submit one array (task ``i`` runs ``groups[i]``), retrying transient errors with backoff."""
        manifest = self.submit_dir / f"{stem}.json"
        (self.submit_dir / "logs").mkdir(parents=True, exist_ok=True)
        write_manifest(manifest, groups)
        runner = shlex.join([sys.executable, "-m", "dshpc_jupyter.schedulers.runner", str(manifest)])
        argv = [
            "sbatch", "--parsable", f"--job-name={JOB_NAME}", f"--comment={stem}",
            array_option(len(groups), self.throttle), f"--output={self.submit_dir / 'logs'}/%A_%a.log",
            f"--chdir={self.workdir.root}", *([f"--account={self.account}"] if self.account else []),
            *resource_options(resources, self.pack, self.partition), *nice_options(priority), *self.sbatch_args,
            f"--wrap=exec {runner}",
        ]  # fmt: skip
        for attempt in range(len(RETRY_DELAYS_S) + 1):
            try:
                return parse_sbatch(run(argv))
            except SlurmCommandError as exc:
                if not exc.transient or attempt == len(RETRY_DELAYS_S):
                    raise
                log.warning("sbatch failed (%s); retrying in %g s", exc, RETRY_DELAYS_S[attempt])
            time.sleep(RETRY_DELAYS_S[attempt])
            found = (self._arrays_of(stem) or {}).get(stem)  # the failed attempt may have reached the controller
            if found is not None:
                return found
        raise AssertionError("unreachable")

    def _arrays_of(self, prefix: str) -> dict[str, str] | None:
        """Manifest stem -> array id of the arrays in the queue whose comment starts with ``prefix``; None when
        squeue fails (nobody can tell)."""
        queue = self._queue(fresh=True)
        if queue is None:
            return None
        return {e.comment: task.split("_")[0] for task, e in queue.items() if e.comment.startswith(prefix)}

    # --- status ----------------------------------------------------------------------------------------

    def poll(self, jobs: Sequence[JobRecord]) -> list[JobUpdate]:
        by_id = {j.job_id: j for j in jobs}
        active = [ActiveJob(j.job_id, j.status, j.scheduler_id, _epoch(j.started_at)) for j in jobs]
        return self._poll(active, lambda ids: [by_id[i] for i in ids])

    def poll_active(self) -> list[JobUpdate]:
        """``poll`` of every job of ours in progress, by change: only the jobs whose row or task's ``squeue`` line
        changed, and those watched, are looked at (``slurm_active``); whole records are read only for the jobs
        waiting to be submitted again (docs/design.md section 14.1)."""
        view = self._view
        candidates = view.refresh(self.ledger) | view.watch
        now = time.time()
        waiting = {j for j in candidates if j in view.jobs and _waits(view.jobs[j])}
        updates = self._recover(self.ledger.get_jobs(sorted(waiting)), now) if waiting else []
        if not view.jobs:
            return updates
        fresh = self._snapshot is None or time.monotonic() - self._snapshot[0] >= self.poll_interval
        queue = self._queue(fresh)
        if queue is None:
            view.watch = candidates
            return updates
        changed = self._parsed.changed_since(view.generation)
        view.generation = self._parsed.generation
        candidates = set(view.jobs) if changed is None else candidates | view.of_tasks(changed)
        tracked = [job for j in candidates if (job := view.jobs.get(j)) is not None and is_task_id(job.scheduler_id)]
        found = self._compare(tracked, queue, fresh, now)
        view.watch = waiting | {u.job_id for u in found} | {j.job_id for j in tracked if self._watched(j, queue)}
        return updates + found

    def _poll(self, jobs: Sequence[ActiveJob], records: Callable[[list[str]], list[JobRecord]]) -> list[JobUpdate]:
        now = time.time()
        tracked = [job for job in jobs if is_task_id(job.scheduler_id)]
        waiting = [job.job_id for job in jobs if _waits(job)]
        updates = self._recover(records(waiting), now) if waiting else []
        if not tracked:
            return updates
        fresh = self._snapshot is None or time.monotonic() - self._snapshot[0] >= self.poll_interval
        queue = self._queue(fresh)
        return updates if queue is None else updates + self._compare(tracked, queue, fresh, now)

    def _compare(
        self, tracked: Sequence[ActiveJob], queue: dict[str, QueueEntry], fresh: bool, now: float
    ) -> list[JobUpdate]:
        """The updates of these submitted jobs from the queue (``fresh``: just read) and their result files."""
        # Most jobs of a big queue, at most polls, are unchanged: nothing is read or built for them. A job
        # missing from an older snapshot may just have been submitted: only a fresh one says "gone".
        seen: list[tuple[ActiveJob, str | None]] = []
        gone: list[ActiveJob] = []
        for job in tracked:
            entry = queue.get(job.scheduler_id or "")
            if entry is None:
                if fresh:
                    gone.append(job)
            elif not _unchanged(job.status, STATE_CODES.get(entry.state)):
                seen.append((job, entry.state))
        accounting = self._sacct(gone) if gone and accounting_enabled(self.config) else {}
        updates: list[JobUpdate] = []
        for job, state in [*seen, *((j, accounting.get(j.scheduler_id or "")) for j in gone)]:
            update = self._outcome(job, state, now)
            if update is not None:
                updates.append(update)
        return updates

    def _watched(self, job: ActiveJob, queue: dict[str, QueueEntry]) -> bool:
        """Whether the next poll by change must look at this job whatever changes: its task is not in the queue
        (ended, or not there yet), or running (packed jobs end on their own), or its result is awaited."""
        entry = queue.get(job.scheduler_id or "")
        code = None if entry is None else STATE_CODES.get(entry.state)
        return code is None or code == st.RUNNING or code == st.COMPLETING or job.job_id in self._ended_at

    def _queue(self, fresh: bool) -> dict[str, QueueEntry] | None:
        """All our array tasks as squeue shows them (the cached snapshot unless ``fresh``); None if it failed."""
        if not fresh and self._snapshot is not None:
            return self._snapshot[1]
        argv = ["squeue", "-h", "-r", "-t", "all", f"--user={os.getuid()}", f"--name={JOB_NAME}"]
        try:
            entries = self._parsed.update(run([*argv, f"--format={SQUEUE_FORMAT}"]))
        except SlurmCommandError as exc:
            log.warning("squeue failed; job states left as they are: %s", exc)
            return None
        self._snapshot = (time.monotonic(), entries)
        return entries

    def _ingest(self, job_id: str, workspace: Path, result: Result) -> JobUpdate:
        """Its result with the output files stored in the home (read from ``workdir``, where it ran)."""
        return ingest_result(self.home, self.ledger, job_id, workspace, result)

    def _sacct(self, jobs: Sequence[ActiveJob]) -> dict[str, str]:
        ids = sorted({j.scheduler_id for j in jobs if j.scheduler_id})
        try:
            return parse_sacct(run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)]))
        except SlurmCommandError as exc:
            log.warning("sacct failed: %s", exc)
            return {}

    def _outcome(self, job: ActiveJob, state: str | None, now: float) -> JobUpdate | None:
        """The job's new state from its task's Slurm state (None: Slurm no longer knows it) and its result."""
        code = STATE_CODES.get(state) if state is not None else None
        workspace = self.workdir.workspace(job.job_id)
        if state is not None and (code is None or st.is_in_progress(code)):
            result = read_result(workspace) if code in (st.RUNNING, st.COMPLETING) else None
            if result is not None and (_ended_on_its_own(result) or _cancelled_alone(result, workspace)):
                return self._ingest(job.job_id, workspace, result)  # a packed job that ended while its task runs on
            if code is None or code == job.status:
                return None
            return JobUpdate(job.job_id, code, started_at=now if code == st.RUNNING and not job.started_at else None)
        result = read_result(workspace)
        if result is not None and (_ended_on_its_own(result) or code in (None, st.COMPLETED, st.FAILED)):
            self._ended_at.pop(job.job_id, None)
            return self._ingest(job.job_id, workspace, result)
        if code is not None and code not in (st.COMPLETED, st.FAILED):
            self._ended_at.pop(job.job_id, None)
            error = f"Slurm ended array task {job.scheduler_id}: {state}"
            if result is None:
                return JobUpdate(job.job_id, code, error=error, finished_at=now)
            return JobUpdate(
                job.job_id, code, exit_code=result.exit_code, output=result.output, error=f"{error}\n{result.error}",
                started_at=result.started_at, finished_at=result.finished_at,
            )  # fmt: skip
        # No result yet: on a shared filesystem it may still be on its way.
        if now - self._ended_at.setdefault(job.job_id, now) < self.result_grace:
            return None
        self._ended_at.pop(job.job_id, None)
        if state is None and not (workspace / PARAMS_FILE).exists():  # a pending task scancelled leaves no trace
            return JobUpdate(job.job_id, st.CANCELLED, finished_at=now, error=REMOVED_MESSAGE)
        return JobUpdate(job.job_id, st.NODE_FAIL, finished_at=now, error=self._lost_message(job, state))

    def _lost_message(self, job: ActiveJob, state: str | None) -> str:
        where = f"Slurm says {state}" if state else "Slurm no longer knows it"
        message = f"runner lost: array task {job.scheduler_id} ended without a result ({where})"
        path = self.submit_dir / "logs" / f"{job.scheduler_id}.log"
        try:
            return f"{message}; the end of its log {path}:\n{path.read_text(errors='replace')[-LOG_TAIL:]}"
        except OSError:
            return message

    # --- recovery of the crash window -------------------------------------------------------------------

    def _recover(self, waiting: Sequence[JobRecord], now: float) -> list[JobUpdate]:
        """Submit (or adopt) pending jobs whose submitter vanished: unclaimed, or claimed, after ``lease``."""
        expired: dict[str | None, list[JobRecord]] = {}
        for job in waiting:
            if lost_submitter(job, self.lease, now):
                expired.setdefault(job.scheduler_id, []).append(job)
        updates: list[JobUpdate] = []
        for held_by, jobs in expired.items():
            old = Claim.parse(held_by)
            submitted = {} if old is None else self._arrays_of(old.nonce + "-")
            if submitted is None:
                continue  # cannot tell whether the claim's sbatch went through: wait for a working squeue
            claim = Claim.new()
            mine = set(self.ledger.swap_scheduler_ids([j.job_id for j in jobs], held_by, claim.token))
            if not mine:
                continue  # another process got there first
            adopted = self._adopt(submitted, mine)
            log.warning("recovering %d job(s) whose submitter vanished (%d already in Slurm)", len(mine), len(adopted))
            specs = {j.function_hash: self.ledger.method_spec(j.function_hash) for j in jobs if j.job_id in mine}
            resubmit = [
                Submission.of_record(j, spec)
                for j in jobs if j.job_id in mine - adopted and (spec := specs[j.function_hash]) is not None
            ]  # fmt: skip
            updates += [
                JobUpdate(
                    r.job_id,
                    st.FAILED,
                    error=f"scheduler refused the job: {r.reason}",
                    finished_at=now,
                    retriable=False,
                )
                for r in self._submit(resubmit, claim)
            ]
        return updates

    def _adopt(self, submitted: dict[str, str], job_ids: set[str]) -> set[str]:
        """Record the Slurm ids of jobs whose arrays were submitted before their submitter died."""
        pairs: list[tuple[str, str]] = []
        for stem, array_id in submitted.items():
            manifest = self.submit_dir / f"{stem}.json"
            groups = manifest_groups(manifest)
            pairs += [(job_id, f"{array_id}_{i}") for i, group in enumerate(groups) for job_id in group]
        pairs = [(job_id, sid) for job_id, sid in pairs if job_id in job_ids]
        self.ledger.set_scheduler_ids(pairs)
        return {job_id for job_id, _ in pairs}

    # --- cancel ----------------------------------------------------------------------------------------

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        """Mark each job cancelled in its workspace (the runner stops just that job: packmates run on), and
        ``scancel`` the array tasks that hold no other live job."""
        ids = {j.job_id for j in jobs}
        for job in jobs:
            workspace = self.workdir.workspace(job.job_id)
            workspace.mkdir(parents=True, exist_ok=True)
            (workspace / CANCEL_FILE).touch()
        tasks = {j.scheduler_id for j in jobs if is_task_id(j.scheduler_id)}
        busy = {j.scheduler_id for j in self.ledger.active_states(self.name) if j.job_id not in ids}
        doomed = sorted(t for t in tasks - busy if t is not None)
        if doomed:
            try:
                run(["scancel", *doomed])
            except SlurmCommandError as exc:
                log.warning("scancel failed (the runners still stop the cancelled jobs): %s", exc)

    def close(self) -> None:
        """Nothing is held in this process: Slurm and the result files keep the jobs' state."""


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _waits(job: ActiveJob) -> bool:
    """Pending and not in Slurm: a claim in flight, a retry, or a job whose submitter may have vanished."""
    return job.status == st.PENDING and not is_task_id(job.scheduler_id)


def _unchanged(status: str, code: str | None) -> bool:
    """Whether a task's Slurm state says nothing new about its job: an unknown state, or the job's own state
    while it is not running (a running task's packed jobs may have ended: their result files are looked at)."""
    return code is None or (code == status and code != st.RUNNING and code != st.COMPLETING)


def _ended_on_its_own(result: Result) -> bool:
    """True unless the job may have been stopped by a signal from Slurm (a time limit, scancel, preemption):
    the runner labels that SIGTERM ``CA``, or ``F`` when it killed the method first; Slurm knows better."""
    if result.status == st.FAILED:
        return result.exit_code is not None and result.exit_code > 0
    return result.status != st.CANCELLED


def _cancelled_alone(result: Result, workspace: Path) -> bool:
    """The runner stopped just this job, at our request, while its task runs on."""
    return result.status == st.CANCELLED and (workspace / CANCEL_FILE).exists()
