"""The local worker: one detached process per home directory that runs pending jobs, at most ``slots`` at once.

It holds an exclusive lock on ``run/worker.lock`` while alive, so there is never a second one. Each job runs
under a runner (:mod:`dshpc_jupyter.schedulers.runner`, in its own session): one long-lived slot runner per
slot (:mod:`.slot_runner`) that runs job after job, so a tiny job does not wait for a Python start; the worker
waits on the runners' answers, adopted runners' pidfds and a wake-up FIFO, ingests the result files of the jobs
that ended together in one write, and passes cancellations on (a job's cancel file and SIGUSR1 to its slot
runner; the cancel file and SIGTERM to an adopted runner). While tiny jobs end, it keeps one job per slot claimed
and ready, handed out before its store write (docs/design.md section 7.6). On start it recovers what a previous worker
left: claimed (``STARTING``) but unstarted jobs are queued again, runners still alive are adopted, and jobs
whose runner vanished without a result after starting them are marked ``NF``. Only ``serve`` opens the
store; the worker itself records through the ``JobLedger`` (:mod:`.base`). It exits after ``idle_timeout``
seconds with nothing to do.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import fcntl
import json
import logging
import math
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from ..domain.errors import DiskFullError, DshpcError, StoreBusyError, disk_full
from ..domain.home import Home
from ..domain.jobs import ClaimedJob
from ..domain.models import MethodSpec
from ..domain.status import CANCELLED, NODE_FAIL, PENDING, STARTING
from ..store.sqlite import Store
from .base import JobLedger, JobUpdate, Task, build_task, ingest_result, keep_attempts, with_resources
from .job_files import CANCEL_FILE, never_started, read_runner_info
from .local import WakeFifo, fifo_path, lock_path
from .runner import is_alive, kill_orphaned_method, read_result
from .slot_runner import AHEAD_ENV, SlotPool, SlotRunner, ahead_seconds

log = logging.getLogger("dshpc_jupyter.worker")
#: Seconds between attempts while another process holds the store locked.
BUSY_RETRY_S = 1.0
#: Seconds between two looks for cancel requests when nothing woke the worker (a cancel wakes it).
CANCEL_POLL_S = 1.0
#: Task templates kept (one per method and input, see ``Worker._templates``).
TEMPLATES_KEPT = 256
#: Jobs of a method whose last job ran under this (seconds) are tiny: while such jobs end, the worker keeps one
#: job claimed ahead per slot, its task ready, and hands it to the first slot runner that frees, before its store
#: write; a tiny job's slot then waits for the worker's pipe, not for its store (docs/design.md section 7.6).
READY_S = 0.05
#: A tiny job's start is written with its end when that comes within this (seconds): one store write for both,
#: the job ``CF`` in the store a few milliseconds longer.
START_WRITE_S = 0.005


@dataclass
class Runner:
    """A runner process the worker watches (one it started, or one it adopted), by its process identity."""

    job_id: str
    identity: str
    workspace: Path
    pidfd: int | None = None
    #: The worker's own slot runner that runs it; None for an adopted runner (watched by its pidfd).
    slot: SlotRunner | None = None
    #: Its method's function hash (how long a method's jobs take decides whether they are handed ahead).
    method: str = ""

    @property
    def pid(self) -> int:
        return int(self.identity.partition(":")[0])


class Worker:
    """Runs the local scheduler's jobs; see the module docstring."""

    def __init__(self, home: Home, ledger: JobLedger, slots: int, idle_timeout: float) -> None:
        self.home = home
        self.ledger = ledger
        self.slots = slots
        self.idle_timeout = idle_timeout
        self.running: dict[str, Runner] = {}
        #: Jobs whose runner ended, their results not recorded yet.
        self.ended: list[Runner] = []
        self.cancelling: set[str] = set()
        #: Jobs whose slot runner said their method started, with its identity and when: recorded ``R`` next.
        self.began: list[tuple[str, str, float]] = []
        #: Claimed jobs with their tasks that no runner takes yet (``STARTING``), in queue order.
        self.waiting: list[tuple[ClaimedJob, Task]] = []
        #: How long each method's last job ran (seconds, by function hash): tiny ones are handed ahead.
        self.took: dict[str, float] = {}
        self.selector = selectors.DefaultSelector()
        self.pool = SlotPool(self.selector, ahead_seconds(os.environ.get(AHEAD_ENV)))
        self.stopping = False
        self._fifo: WakeFifo | None = None
        #: A job's task but for its id, workspace and parameters, by what it is built from: a sweep's jobs share
        #: one method, and its spec is parsed once, not per job.
        self._templates: dict[tuple[str, str, str, str | None, str | None], Task] = {}
        #: Whether to look for cancel requests now: after a wake-up (a cancel comes with one), else every
        #: ``CANCEL_POLL_S``, not at every turn of the loop.
        self._woken = True
        self._next_cancel_look = 0.0
        #: Set by a wake-up (jobs were queued or cancelled): the jobs kept ready go back to the queue before the
        #: next claim, so that a job queued since with a higher priority is not started after them.
        self._queue_changed = False

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True
        if self._fifo is not None:
            self._fifo.nudge()

    # --- runners ---------------------------------------------------------------------------------------

    def _watch(self, runner: Runner) -> None:
        if runner.slot is not None:  # its slot runner's answers are watched instead
            self.running[runner.job_id] = runner
            return
        try:
            runner.pidfd = os.pidfd_open(runner.pid)
        except (AttributeError, OSError):
            runner.pidfd = None
        if runner.pidfd is not None:
            self.selector.register(runner.pidfd, selectors.EVENT_READ, runner.job_id)
        self.running[runner.job_id] = runner

    def _finish(self, runners: list[Runner]) -> None:
        """Free the slots of jobs that ended; their results are recorded by the next turn (:meth:`_turn`), in
        the one write that claims the slots' next jobs."""
        for runner in runners:
            del self.running[runner.job_id]
            if runner.pidfd is not None:
                self.selector.unregister(runner.pidfd)
                os.close(runner.pidfd)
        self.ended += runners

    def _never_started(self, runner: Runner) -> bool:
        """A job handed to a runner that has gone before it started its method (it created no ``stdout.txt`` and
        wrote no result): it runs later, it did not run here. Not so for a job being cancelled: that ends ``CA``."""
        workspace = runner.workspace
        return runner.job_id not in self.cancelling and never_started(workspace) and read_result(workspace) is None

    def _outcome(self, job_id: str, workspace: Path) -> JobUpdate:
        result = read_result(workspace)
        if result is None and job_id in self.cancelling:
            # SIGTERM reached the runner before it could handle it: it died before starting the method.
            return JobUpdate(job_id, CANCELLED, finished_at=time.time(), error="cancelled before it started")
        if result is None:
            kill_orphaned_method(workspace)
            return JobUpdate(
                job_id, NODE_FAIL, finished_at=time.time(),
                error="runner lost: it ended without writing a result (killed, or the machine lost it)",
            )  # fmt: skip
        return ingest_result(self.home, self.ledger, job_id, workspace, result)

    def _turn(self) -> None:
        """Hand out the waiting tasks, then record in one store write the jobs whose method started (``R``),
        the results of the jobs that ended (a runner gone without one lost its job, ``NF``, or never started
        it: back to the queue) and claim as many jobs as the slot runners take now, handed out in queue order.
        ``began``/``ended`` are emptied only once written, so a retry never loses or repeats one."""
        runners = self._runners()
        if not self.stopping:
            self._hand(runners)
        if self._starts_can_wait(runners):
            return
        never = [runner.job_id for runner in self.ended if self._never_started(runner)]
        outcomes = [(r.method, self._outcome(r.job_id, r.workspace)) for r in self.ended if r.job_id not in never]
        tiny = bool(outcomes) and all(_ran(update) < READY_S for _, update in outcomes)
        limit = self._claim_limit(runners, tiny)
        began = {job_id: (identity, at) for job_id, identity, at in self.began}
        # A job said started and ended since the last turn (a tiny one) is recorded by its result alone.
        updates = [
            dataclasses.replace(update, scheduler_id=began.pop(update.job_id)[0]) if update.job_id in began else update
            for _, update in outcomes
        ]
        refused, claimed = self.ledger.record_turn(
            "local", [(job_id, identity, at) for job_id, (identity, at) in began.items()], never, updates, limit
        )
        for job_id in refused:  # cancelled while it was being started
            if job_id in self.running:
                self._stop_runner(self.running[job_id])
        for method, update in outcomes:
            if update.started_at is not None and update.finished_at is not None:
                self.took[method] = _ran(update)
        for runner in self.ended:
            self.cancelling.discard(runner.job_id)
        self.began, self.ended = [], []
        for index, job in enumerate(claimed):
            try:
                self.waiting.append((job, self._task(job)))
            except OSError as exc:
                self._give_back(claimed[index:], exc)
        self._hand(runners)
        kept = self._kept(runners)
        if len(self.waiting) > kept:  # behind those kept waiting: back in the queue, in their turn
            later, self.waiting = self.waiting[kept:], self.waiting[:kept]
            self.ledger.requeue([job.job_id for job, _ in later])

    def _starts_can_wait(self, runners: int) -> bool:
        """Whether all there is to write is the starts of tiny jobs, seen under ``START_WRITE_S`` ago: their
        ends come soon, and one write then records each by its result alone (no slot runner is idle meanwhile,
        and nothing woke the worker: no claim waits for this write)."""
        if self.stopping or self.ended or not self.began or self._queue_changed or self.pool.free(runners):
            return False
        if time.time() - self.began[0][2] >= START_WRITE_S:
            return False
        return all(job_id in self.running and self._tiny(self.running[job_id].method) for job_id, *_ in self.began)

    def _claim_limit(self, runners: int, tiny: bool) -> int:
        """How many jobs to claim now: as many as the slot runners take, and while ``tiny`` jobs end, enough more
        to keep one ready per slot. None while a job not known to be tiny waits for an idle runner, nor after a
        wake-up before the jobs kept ready are back in the queue (then claimed again, in queue order)."""
        if self.stopping:
            return 0
        if self._queue_changed and self.waiting:
            self.ledger.requeue([job.job_id for job, _ in self.waiting])
            self.waiting = []
        self._queue_changed = False
        if self._kept(runners) < len(self.waiting) or (self.waiting and not self._ready(self.waiting[0][0])):
            return 0
        return (0 if self.waiting else self.pool.free(runners)) + (max(0, runners - len(self.waiting)) if tiny else 0)

    def _kept(self, runners: int) -> int:
        """How many of the waiting jobs stay claimed: the first (it waits for an idle runner), and those of tiny
        methods, up to one per slot."""
        kept = min(1, len(self.waiting))
        while kept < min(runners, len(self.waiting)) and self._ready(self.waiting[kept][0]):
            kept += 1
        return kept

    def _ready(self, job: ClaimedJob) -> bool:
        """Whether a claimed job's method is tiny (``READY_S``): one such is kept ready per slot."""
        return self._tiny(job.function_hash)

    def _tiny(self, function_hash: str) -> bool:
        return self.took.get(function_hash, math.inf) < READY_S

    def _runners(self) -> int:
        """How many slot runners may run jobs: a slot each, but for the slots of adopted runners."""
        return self.slots - len({runner.pid for runner in self.running.values() if runner.slot is None})

    def _give_back(self, jobs: list[ClaimedJob], exc: OSError) -> NoReturn:
        """Jobs claimed but not started, for want of disk space: back to the queue, and say why."""
        full = disk_full(exc, self.home.root)
        if full is None:
            raise exc
        with contextlib.suppress(DshpcError):  # else the claim's lease runs out and they are requeued
            self.ledger.requeue([job.job_id for job in jobs])
        raise full from None

    def _task(self, job: ClaimedJob) -> Task:
        """The runner's task for a claimed job, its workspace made (without a cancel file a past run left)."""
        workspace = self.home.workspace(job.job_id)
        keep_attempts(workspace, job.attempt)
        try:
            os.mkdir(workspace)  # noqa: PTH102 (one system call; Path.mkdir makes two when it exists)
        except FileNotFoundError:  # the first job of its shard
            workspace.mkdir(parents=True)
        except FileExistsError:
            (workspace / CANCEL_FILE).unlink(missing_ok=True)
        key = (job.function_hash, job.file_hash, job.spec, job.resources, job.file_inputs)
        template = self._templates.get(key)
        if template is None:
            if len(self._templates) >= TEMPLATES_KEPT:
                self._templates.clear()
            spec = with_resources(MethodSpec.model_validate_json(job.spec), json.loads(job.resources or "null"))
            template = self._templates[key] = build_task(
                self.home, "", job.file_hash, job.function_hash, spec, {},
                None if job.file_inputs is None else json.loads(job.file_inputs),
            )  # fmt: skip
        task = copy.copy(template)
        task.job_id, task.workspace, task.parameters = job.job_id, str(workspace), json.loads(job.parameters)
        return task

    def _hand(self, runners: int) -> None:
        """Hand the waiting tasks, in order, to the slot runners that take them: each stays ``STARTING`` until
        its runner says its method started. One not known to be tiny goes to an idle runner only, never behind
        another job; the ones after it wait too (queue order). Put back in the queue what no runner would take."""
        unstarted: list[str] = []
        while self.waiting:
            job, task = self.waiting[0]
            quick = self.took.get(job.function_hash, math.inf) < self.pool.tiny
            if not self.pool.takes(runners, quick):
                break
            try:
                slot = self.pool.start(task, runners, quick)
            except OSError as exc:  # no room for runner.json: those started run on, the rest wait
                waiting, self.waiting = self.waiting, []
                self._give_back([job for job, _ in waiting], exc)
            self.waiting.pop(0)
            if slot is None:
                unstarted.append(job.job_id)
                continue
            self._watch(Runner(job.job_id, slot.identity, Path(task.workspace), slot=slot, method=job.function_hash))
        if unstarted:
            log.warning("no runner would start jobs %s: back to the queue", unstarted)
            self.ledger.requeue(unstarted)

    def _requeue_waiting(self) -> None:
        """A worker that stops gives back the claimed jobs no runner has taken."""
        self.ledger.requeue([job.job_id for job, _ in self.waiting])
        self.waiting = []

    def _cancel(self) -> None:
        now = time.monotonic()
        if not self._woken and now < self._next_cancel_look:
            return
        self._woken, self._next_cancel_look = False, now + CANCEL_POLL_S
        for job_id, _ in self.ledger.cancel_requests("local"):
            runner = self.running.get(job_id)
            if runner is not None:
                self.cancelling.add(job_id)
                self._stop_runner(runner)

    @staticmethod
    def _stop_runner(runner: Runner) -> None:
        """Ask the runner to stop the job: it stops its method's process group and records ``CA``. A slot runner
        is told through the job's cancel file, so a cancel never reaches the job it runs next; an adopted
        runner gets the cancel file too (enough for a job waiting its turn there), and SIGTERM when the job's
        method is the one it runs."""
        if runner.slot is not None:
            runner.slot.cancel(runner.workspace)
            return
        (runner.workspace / CANCEL_FILE).touch()  # enough for a job that waits its turn in that runner
        if is_alive(runner.identity) and is_alive((read_runner_info(runner.workspace) or {}).get("method")):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(runner.pid, signal.SIGTERM)

    def recover(self) -> None:
        """Take over what a previous worker left behind (we hold the lock: it is gone).

        The workspace says what happened even where the store could not be told: a runner that started
        records itself there before anything else.
        """
        requeue: list[str] = []
        ended: list[JobUpdate] = []
        for job in self.ledger.active_jobs("local"):
            if job.status == PENDING:
                continue
            workspace = self.home.workspace(job.job_id)
            info = read_runner_info(workspace)
            identity = job.scheduler_id or (info or {}).get("runner")
            if read_result(workspace) is not None:  # ended: a slot runner may live on, serving another job
                ended.append(self._outcome(job.job_id, workspace))
            elif is_alive(identity):
                assert identity is not None
                log.info("adopting job %s (runner %s)", job.job_id, identity)
                if not never_started(workspace):  # else it waits its turn in that runner, still STARTING
                    self.ledger.mark_running(job.job_id, identity, time.time())
                self._watch(Runner(job.job_id, identity, workspace))
            elif info is None or (job.status == STARTING and never_started(workspace)):
                requeue.append(job.job_id)
            else:
                ended.append(self._outcome(job.job_id, workspace))
        self.ledger.requeue(requeue)
        self.ledger.apply_updates(ended)

    # --- main loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._fifo = WakeFifo(fifo_path(self.home))
        self.selector.register(self._fifo.reader, selectors.EVENT_READ, None)
        self._retrying(self.recover)
        idle_since = time.monotonic()
        while True:
            self._retrying(self._cancel)
            self._retrying(self._turn)
            if self.stopping:
                break
            if self.running:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.idle_timeout:
                break
            self._retrying(self._wait, idle_since)
        self._retrying(self._requeue_waiting)
        self.selector.unregister(self._fifo.reader)
        self._fifo.close()
        self._fifo = None
        self.pool.close()

    def _retrying(self, step: Callable[..., object], *args: Any) -> None:
        """Run one step of the loop; while another process holds the store's lock past the busy timeout, say
        so in the log and try again (the jobs wait, the worker does not die)."""
        while True:
            try:
                step(*args)
                return
            except (StoreBusyError, DiskFullError) as exc:
                log.warning("jobs wait: %s; retrying in %g s", exc, BUSY_RETRY_S)
                time.sleep(BUSY_RETRY_S)
                if self.stopping:
                    return

    def _wait(self, idle_since: float) -> None:
        polling = any(r.slot is None and r.pidfd is None for r in self.running.values())
        timeout = 0.1 if polling else max(0.05, min(1.0, self.idle_timeout - (time.monotonic() - idle_since)))
        if self.began:  # starts wait to be written with their ends (``START_WRITE_S``), not longer
            timeout = START_WRITE_S
        signalled: set[str] = set()
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                assert self._fifo is not None
                self._fifo.drain()
                self._woken = self._queue_changed = True
            elif isinstance(key.data, SlotRunner):
                signalled.update(self._answers(key.data))
            else:
                signalled.add(key.data)
        ended = [
            runner
            for job_id, runner in self.running.items()
            if job_id in signalled or (runner.slot is None and runner.pidfd is None and not is_alive(runner.identity))
        ]
        if ended:
            self._finish(ended)

    def _answers(self, slot: SlotRunner) -> list[str]:
        """The jobs a slot runner reports ended (those it reports started are recorded ``R`` next); all of its
        jobs when it has gone or is leaving (each then ends by its result file, as lost, or back in the queue
        when it never started)."""
        answers = slot.read()
        if answers is not None:
            started, ended = answers
            now = time.time()
            self.began += [(job_id, slot.identity, now) for job_id in started]
            if not slot.leaving:
                return ended
        lost = [job_id for job_id, runner in self.running.items() if runner.slot is slot]
        slot.jobs = []  # a leaving runner runs none of them: it exits
        self.pool.discard(slot)
        return lost


def _ran(update: JobUpdate) -> float:
    """How long a job's method ran, by its result (infinite when it did not say)."""
    if update.started_at is None or update.finished_at is None:
        return math.inf
    return update.finished_at - update.started_at


def _open_store(home: Home) -> Store:
    """The home's store, waiting out another process's lock (the worker is the one that must not give up)."""
    while True:
        try:
            return Store(home.db_path)
        except StoreBusyError as exc:
            log.warning("jobs wait: %s; retrying in %g s", exc, BUSY_RETRY_S)
            time.sleep(BUSY_RETRY_S)


def serve(home: Home, slots: int, idle_timeout: float) -> None:
    """Run the worker while holding the home's lock; return at once if another worker holds it."""
    lock_fd = os.open(lock_path(home), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            os.ftruncate(lock_fd, 0)
            os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
            store = _open_store(home)
            worker = Worker(home, store, slots, idle_timeout)
            worker.run()
            fcntl.flock(lock_fd, fcntl.LOCK_UN)
            # A job queued after the last look but before the pipe closed would wait for the next poll;
            # look once more now that the lock is free, and carry on if there is work.
            if worker.stopping or not store.has_pending("local"):
                store.close()
                return
            store.close()
    finally:
        os.close(lock_fd)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dshpc_jupyter.schedulers.local_worker")
    parser.add_argument("--home", required=True)
    parser.add_argument("--slots", type=int, required=True)
    parser.add_argument("--idle-timeout", type=float, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s worker[{os.getpid()}] %(message)s")
    serve(Home.open(args.home), args.slots, args.idle_timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
