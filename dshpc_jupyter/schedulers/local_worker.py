"""The local worker: one detached process per home directory that runs pending jobs, at most ``slots`` at once.

It holds an exclusive lock on ``run/worker.lock`` while alive, so there is never a second one. Each job runs
under its own runner process (:mod:`dshpc_jupyter.schedulers.runner`, in its own session); the worker waits on the
runners' pidfds and a wake-up FIFO, ingests result files into the store, and passes cancellations on as
SIGTERM. On start it recovers what a previous worker left: claimed (``STARTING``) but unstarted jobs are queued
again, runners still alive are adopted, and jobs whose runner vanished without a result are marked ``NF``.
Only ``serve`` opens the store; the worker itself records through the ``JobLedger`` (:mod:`.base`).
It exits after ``idle_timeout`` seconds with nothing to do.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..domain.errors import DiskFullError, DshpcError, StoreBusyError, disk_full
from ..domain.home import Home
from ..domain.jobs import ClaimedJob
from ..domain.models import MethodSpec
from ..domain.status import CANCELLED, NODE_FAIL, PENDING
from ..store.sqlite import Store
from .base import JobLedger, JobUpdate, build_task, ingest_result, keep_attempts, with_resources
from .local import fifo_path, lock_path
from .runner import (
    is_alive,
    kill_orphaned_method,
    process_identity,
    process_start_time,
    read_result,
    read_runner_info,
    write_manifest,
)

log = logging.getLogger("dshpc_jupyter.worker")
#: Seconds between attempts while another process holds the store locked.
BUSY_RETRY_S = 1.0

MANIFEST_FILE = "task.json"
RUNNER_LOG = "runner.log"


@dataclass
class Runner:
    """A runner process the worker watches: one it started (``popen``) or one it adopted."""

    job_id: str
    pid: int
    workspace: Path
    popen: subprocess.Popen[bytes] | None
    pidfd: int | None


class Worker:
    """Runs the local scheduler's jobs; see the module docstring."""

    def __init__(self, home: Home, ledger: JobLedger, slots: int, idle_timeout: float) -> None:
        self.home = home
        self.ledger = ledger
        self.slots = slots
        self.idle_timeout = idle_timeout
        self.running: dict[str, Runner] = {}
        self.cancelling: set[str] = set()
        self.selector = selectors.DefaultSelector()
        self.stopping = False
        self._fifo_fds: tuple[int, int] | None = None

    # --- the pipe that wakes us ------------------------------------------------------------------------

    def _open_fifo(self) -> None:
        path = fifo_path(self.home)
        with contextlib.suppress(FileExistsError):
            os.mkfifo(path, 0o600)
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        keeper = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # so the reader never sees EOF
        self._fifo_fds = (reader, keeper)
        self.selector.register(reader, selectors.EVENT_READ, None)

    def _close_fifo(self) -> None:
        if self._fifo_fds is not None:
            self.selector.unregister(self._fifo_fds[0])
            for fd in self._fifo_fds:
                os.close(fd)
            self._fifo_fds = None

    def _drain_fifo(self) -> None:
        assert self._fifo_fds is not None
        try:
            while os.read(self._fifo_fds[0], 4096):
                pass
        except BlockingIOError:
            pass

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True
        if self._fifo_fds is not None:
            with contextlib.suppress(OSError):
                os.write(self._fifo_fds[1], b"\n")

    # --- runners ---------------------------------------------------------------------------------------

    def _watch(self, runner: Runner) -> None:
        try:
            runner.pidfd = os.pidfd_open(runner.pid)
        except (AttributeError, OSError):
            runner.pidfd = None
        if runner.pidfd is not None:
            self.selector.register(runner.pidfd, selectors.EVENT_READ, runner.job_id)
        self.running[runner.job_id] = runner

    def _exited(self, runner: Runner) -> bool:
        if runner.popen is not None:
            return runner.popen.poll() is not None
        return process_start_time(runner.pid) is None

    def _finish(self, runner: Runner) -> None:
        """Ingest a runner's result; a runner gone without one lost its job (``NF``)."""
        del self.running[runner.job_id]
        if runner.pidfd is not None:
            self.selector.unregister(runner.pidfd)
            os.close(runner.pidfd)
        if runner.popen is not None:
            runner.popen.wait()
        # Retried here, not by the loop: the runner has left ``running``, so a retry from the top would lose it.
        self._retrying(self.ledger.apply_updates, [self._outcome(runner.job_id, runner.workspace)])
        self.cancelling.discard(runner.job_id)

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

    def _start(self) -> None:
        """Claim pending jobs up to the free slots and start a runner for each."""
        if self.stopping:
            return
        claimed = self.ledger.claim_pending("local", self.slots - len(self.running))
        for index, job in enumerate(claimed):
            try:
                self._launch(job)
            except OSError as exc:
                full = disk_full(exc, self.home.root)
                if full is None:
                    raise
                with contextlib.suppress(DshpcError):  # else the claim's lease runs out and they are requeued
                    self.ledger.requeue([job.job_id for job in claimed[index:]])
                raise full from None

    def _launch(self, job: ClaimedJob) -> None:
        """Start a runner for a claimed job."""
        workspace = self.home.workspace(job.job_id)
        keep_attempts(workspace, job.attempt)
        workspace.mkdir(parents=True, exist_ok=True)
        spec = with_resources(MethodSpec.model_validate_json(job.spec), json.loads(job.resources or "null"))
        task = build_task(
            self.home, job.job_id, job.file_hash, job.function_hash, spec,
            json.loads(job.parameters), None if job.file_inputs is None else json.loads(job.file_inputs),
        )  # fmt: skip
        write_manifest(workspace / MANIFEST_FILE, [[task]])
        with (workspace / RUNNER_LOG).open("ab") as runner_log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "dshpc_jupyter.schedulers.runner", str(workspace / MANIFEST_FILE)],
                stdin=subprocess.DEVNULL, stdout=runner_log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        identity = process_identity(popen.pid) or f"{popen.pid}:"
        runner = Runner(job.job_id, popen.pid, workspace, popen, None)
        self._watch(runner)
        if not self.ledger.mark_running(job.job_id, identity, time.time()):
            os.killpg(popen.pid, signal.SIGTERM)  # cancelled while it was being started

    def _cancel(self) -> None:
        for job_id, _ in self.ledger.cancel_requests("local"):
            runner = self.running.get(job_id)
            if runner is not None:
                self.cancelling.add(job_id)
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
            if is_alive(identity):
                assert identity is not None
                log.info("adopting running job %s (runner %s)", job.job_id, identity)
                self.ledger.mark_running(job.job_id, identity, time.time())
                self._watch(Runner(job.job_id, int(identity.partition(":")[0]), workspace, None, None))
            elif info is None and read_result(workspace) is None:
                requeue.append(job.job_id)
            else:
                ended.append(self._outcome(job.job_id, workspace))
        self.ledger.requeue(requeue)
        self.ledger.apply_updates(ended)

    # --- main loop -------------------------------------------------------------------------------------

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._open_fifo()
        self._retrying(self.recover)
        idle_since = time.monotonic()
        while True:
            self._retrying(self._cancel)
            self._retrying(self._start)
            if self.stopping:
                break
            if self.running:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > self.idle_timeout:
                break
            self._retrying(self._wait, idle_since)
        self._close_fifo()

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
        polling = any(r.pidfd is None for r in self.running.values())
        timeout = 0.1 if polling else max(0.05, min(1.0, self.idle_timeout - (time.monotonic() - idle_since)))
        for key, _ in self.selector.select(timeout):
            if key.data is None:
                self._drain_fifo()
        for runner in list(self.running.values()):
            if self._exited(runner):
                self._finish(runner)


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
