"""The local scheduler: jobs run on this machine, at most ``slots`` at once, under a detached worker.

The pool lives in a worker process (:mod:`.local_worker`) that outlives the process that submitted the jobs:
a notebook kernel can restart, or several kernels and servers can share one home directory, and every job
still runs exactly once with at most ``slots`` running together. This side of it only wakes the worker (or
starts one when none is alive) and flags running jobs for cancellation; the worker does the rest, recording
through the ``JobLedger`` (claims are ``STARTING``, see :mod:`.base`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..domain.home import Home
from ..domain.models import JobRecord
from ..domain.status import STARTING
from .base import JobLedger, JobUpdate, Refusal, Submission
from .job_files import CANCEL_FILE
from .sandbox import worker_environment

SLOTS_ENV = "DSHPC_LOCAL_SLOTS"
IDLE_ENV = "DSHPC_WORKER_IDLE_TIMEOUT"
DEFAULT_IDLE_TIMEOUT_S = 60.0
LIVENESS_CHECK_S = 1.0
STARTUP_GRACE_S = 10.0


def fifo_path(home: Home) -> Path:
    return home.run_dir / "worker.fifo"


class WakeFifo:
    """The worker's end of its wake-up pipe (``wake_worker`` writes it): readable when jobs were queued or
    cancelled. It also holds the pipe open for writing itself, so that its reader never sees an end."""

    def __init__(self, path: Path) -> None:
        with contextlib.suppress(FileExistsError):
            os.mkfifo(path, 0o600)
        self.reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self._keeper = os.open(path, os.O_WRONLY | os.O_NONBLOCK)

    def drain(self) -> None:
        """Read what woke the worker, so the next wake-up is seen."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.reader, 4096):
                pass

    def nudge(self) -> None:
        """Wake the worker from within (a signal handler: the loop then sees it is stopping)."""
        with contextlib.suppress(OSError):
            os.write(self._keeper, b"\n")

    def close(self) -> None:
        os.close(self.reader)
        os.close(self._keeper)


def lock_path(home: Home) -> Path:
    return home.run_dir / "worker.lock"


def log_path(home: Home) -> Path:
    return home.run_dir / "worker.log"


def default_slots() -> int:
    configured = os.environ.get(SLOTS_ENV)
    return max(1, int(configured)) if configured else max(1, os.cpu_count() or 1)


def wake_worker(home: Home) -> bool:
    """Nudge the worker to look at the queue now; False when no worker is listening."""
    try:
        fd = os.open(fifo_path(home), os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENXIO, errno.ENOENT):
            return False
        raise
    try:
        os.write(fd, b"\n")
    except BlockingIOError:
        pass
    finally:
        os.close(fd)
    return True


def worker_pid(home: Home) -> int | None:
    """The pid of the live worker of this home, read from its lock file, or None."""
    import fcntl

    try:
        fd = os.open(lock_path(home), os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode().strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def stop_worker(home: Home, timeout: float = 10.0) -> bool:
    """Ask the worker to exit (its running jobs keep running and are adopted by the next worker)."""
    pid = worker_pid(home)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while worker_pid(home) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    return worker_pid(home) is None


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """What a user may set on the local scheduler: ``slots`` (jobs at once) and the worker's ``idle_timeout``
    (seconds before an idle worker exits); None reads ``$DSHPC_LOCAL_SLOTS`` / ``$DSHPC_WORKER_IDLE_TIMEOUT``,
    else the defaults (one slot per CPU, 60 s)."""

    slots: int | None = None
    idle_timeout: float | None = None


class LocalScheduler:
    """Runs jobs as local subprocesses through the home directory's worker."""

    name = "local"
    #: Its worker writes every result to the store itself: a poll only needs to know some job is waiting.
    records_results = True

    def __init__(self, home: Home, ledger: JobLedger, options: LocalOptions | None = None) -> None:
        options = options or LocalOptions()
        self.home = home
        self.ledger = ledger
        self.slots = options.slots or default_slots()
        self.idle_timeout = (
            options.idle_timeout
            if options.idle_timeout is not None
            else float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_TIMEOUT_S))
        )
        self._spawned: list[subprocess.Popen[bytes]] = []
        self._last_check = 0.0
        self._last_spawn = 0.0

    def ensure_worker(self) -> None:
        """Wake the worker, or start one when none is alive (a second one started by a race just exits).

        A worker this process started moments ago that is alive but not listening yet is starting up (too
        young to be exiting idle): it looks at the queue once it holds the lock, so another one would only race
        it, and could start late, after the first one has stopped.
        """
        self._spawned = [p for p in self._spawned if p.poll() is None]
        if wake_worker(self.home):
            return
        if self._spawned and time.monotonic() - self._last_spawn < min(self.idle_timeout, STARTUP_GRACE_S):
            return
        self._last_spawn = time.monotonic()
        with log_path(self.home).open("ab") as log:
            self._spawned.append(
                subprocess.Popen(
                    [sys.executable, "-m", "dshpc_jupyter.schedulers.local_worker", "--home", str(self.home.root),
                     "--slots", str(self.slots), "--idle-timeout", str(self.idle_timeout)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    env=worker_environment(os.environ),
                )
            )  # fmt: skip

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        if submissions:
            self.ensure_worker()
        return []

    def poll(self, jobs: Sequence[JobRecord]) -> list[JobUpdate]:
        """The worker writes results itself; polling only makes sure a worker is alive to do it."""
        now = time.monotonic()
        if jobs and now - self._last_check > LIVENESS_CHECK_S:
            self._last_check = now
            self.ensure_worker()
        return []

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        """Flag running jobs for the worker to stop. A claimed one (the engine has just ended it ``CA``) may sit
        in a slot runner, handed ahead: its cancel file stops it from starting there."""
        for job in jobs:
            if job.status == STARTING:
                with contextlib.suppress(FileNotFoundError):  # no workspace yet: no runner has it
                    (self.home.workspace(job.job_id) / CANCEL_FILE).touch()
        if self.ledger.request_cancel([job.job_id for job in jobs]):
            self.ensure_worker()

    def close(self) -> None:
        self._spawned = [p for p in self._spawned if p.poll() is None]
