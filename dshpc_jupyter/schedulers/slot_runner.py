"""A runner that serves one worker slot: it runs job after job, sent to it one at a time, in one process.

A runner started per job (``python -m ...runner``) spends some 40 ms of CPU importing, and a forked one some
7 ms copying the pages it touches, before its job starts: more than a quick method takes to run. So the local
worker starts one of these per slot (``python -m ...slot_runner``, standard library only, like the runner, in
its own session) and writes it one task at a time as a JSON line on its stdin; the runner runs it with
:func:`~.runner.run_task` (limits, sandbox, result file: the very same code) and answers on its stdout with
``>ID`` once the job's method has started and with the job's id once the result file is written. The worker
names the runner in the job's ``runner.json`` before it sends the task, so a worker that dies at any point
leaves a workspace that says who runs the job. Tiny jobs are sent ahead (``AHEAD_S``): the runner then finds its
next task waiting, and says the end of a job together with the start of the next, in one write.

Cancelling one job is per job, never per process: the worker writes the job's cancel file and sends SIGUSR1,
and the runner stops the method if that job is still the one it runs (a cancel meant for a job that has just
ended never touches the next). SIGTERM stops the runner itself: the job in hand is cancelled and it exits.

When its stdin ends (the worker has gone, or stopped), the runner finishes the jobs it was sent and exits, so
the next worker adopts them by the runner's identity, exactly as it adopts a runner started per job.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import sandbox
from .job_files import name_runner
from .runner import (
    CANCEL_FILE,
    Task,
    install_stop_handlers,
    process_identity,
    run_task,
    stop_requested,
)

READY = b"ready"
#: Said (before the last job's id) by a runner that ends after that job: it must not be sent another.
LEAVING = b"leaving"
#: Said before a job's id once its method has started (the job is then ``R``); a bare id says the job ended.
STARTED = b">"
#: A runner is handed tasks before it asks only while its jobs are tiny: only jobs whose method's last run took
#: less than this (seconds), and only while its current one has not started yet or started less than this ago.
#: A job handed ahead waits behind the ones before it, which is worth it only when the wait for the worker
#: between two jobs would cost more than the job. Off by default (0): a method's last job says nothing sure of
#: its next one (a parameter can make one job of a quick method long), and the jobs handed behind a job that
#: turns out long wait for it even when another slot is free. A sweep of uniformly tiny jobs turns it on.
AHEAD_S = 0.0
#: Sets ``AHEAD_S`` for the local worker (seconds; 0: never hand ahead).
AHEAD_ENV = "DSHPC_WORKER_AHEAD_S"
#: How many tasks such a runner holds at most: the one it runs and those handed ahead, so that it finds its next
#: one waiting even when the worker is slow to answer (on a busy machine) for the length of a job or two.
AHEAD_JOBS = 3


def ahead_seconds(value: str | None) -> float:
    """``AHEAD_S``, or the value of ``$DSHPC_WORKER_AHEAD_S``; a clear error naming it when that is no number."""
    if not value:
        return AHEAD_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"{AHEAD_ENV}: {value!r} is not a number of seconds (>= 0)")
    return seconds


class SlotRunner:
    """The worker's end of one slot runner."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dshpc_jupyter.schedulers.slot_runner"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        self.identity = process_identity(self.process.pid) or f"{self.process.pid}:"
        assert self.process.stdout is not None
        self.fd = self.process.stdout.fileno()
        #: The jobs it was handed and has not ended, in order: the first one runs (or is about to), the next
        #: ones wait for it (handed ahead, see ``AHEAD_S``).
        self.jobs: list[str] = []
        #: Those of ``jobs`` whose method is tiny (see ``AHEAD_S``).
        self.quick: set[str] = set()
        #: When its current job started (monotonic seconds), as it reported.
        self.started_at: float | None = None
        #: Set once it said it listens for SIGUSR1 (before that, a signal would kill it: the cancel file is
        #: enough then, as the runner looks for it before it starts the job).
        self.ready = False
        self.leaving = False
        self._pending = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, task: Task, quick: bool = False) -> bool:
        """Hand it a task (``quick``: of a tiny method); False when it is gone."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(vars(task)).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        self.jobs.append(task.job_id)
        if quick:
            self.quick.add(task.job_id)
        return True

    def ahead(self, tiny: float = AHEAD_S) -> int:
        """How many tasks to hand it now, behind the one it runs (``tiny``: ``AHEAD_S``)."""
        started = self.started_at
        quick = all(job_id in self.quick for job_id in self.jobs)
        if not (self.jobs and quick and self.ready and not self.leaving):
            return 0
        return AHEAD_JOBS - len(self.jobs) if started is None or time.monotonic() - started < tiny else 0

    def read(self) -> tuple[list[str], list[str]] | None:
        """The ids of the jobs it reports started, and of those it reports ended, since the last read (call when
        its stdout is readable); None once it has gone."""
        chunk = os.read(self.fd, 65536)
        if not chunk:
            return None
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        self.ready = self.ready or READY in lines
        self.leaving = self.leaving or LEAVING in lines
        started, ended, now = [], [], time.monotonic()
        for line in lines:
            if line.startswith(STARTED):
                started.append(line[1:].decode())
                self.started_at = now
            elif line and line not in (READY, LEAVING):
                ended.append(line.decode())
                self.started_at = None
        self.jobs = [job_id for job_id in self.jobs if job_id not in ended]
        self.quick.difference_update(ended)
        return started, ended

    def cancel(self, workspace: Path) -> None:
        """Stop the job of ``workspace`` if it is the one running (or about to run) here."""
        (workspace / CANCEL_FILE).touch()
        if self.ready:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGUSR1)

    def close(self) -> None:
        """No more tasks: it exits after the job in hand, which runs on."""
        with contextlib.suppress(OSError):
            assert self.process.stdin is not None
            self.process.stdin.close()
        if not self.jobs:  # it exits at once
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        else:
            self.process.poll()  # collected if it has gone (killed); else it runs on, its job adopted later
        assert self.process.stdout is not None
        self.process.stdout.close()


class SlotPool:
    """The worker's slot runners, at most one per slot: each runs one job at a time, and may hold the next
    (``AHEAD_S``); each one's stdout is watched on ``selector`` (its key's data is the runner)."""

    def __init__(self, selector: selectors.BaseSelector, tiny: float = AHEAD_S) -> None:
        self.selector = selector
        self.tiny = tiny
        self.all: list[SlotRunner] = []

    def free(self, runners: int) -> int:
        """How many tasks it takes now with at most ``runners`` runners running jobs: one per runner that may
        start one (an idle or a new one), and those runners take ahead."""
        return max(0, runners - self._busy()) + sum(runner.ahead(self.tiny) for runner in self.all)

    def takes(self, runners: int, quick: bool) -> bool:
        """Whether a runner takes a task now: an idle or a new one while fewer than ``runners`` run jobs, or for
        a ``quick`` task (of a tiny method) one that takes it ahead."""
        return self._busy() < runners or (quick and self._ahead() is not None)

    def start(self, task: Task, runners: int, quick: bool) -> SlotRunner | None:
        """Name a runner in the task's workspace, then send it the task (call when it ``takes`` one); another
        runner if that one has gone. None when none would take it."""
        for _ in range(2):
            runner = (self._idle() or self._new()) if self._busy() < runners else None
            runner = runner or (self._ahead() if quick else None)
            if runner is None:
                return None
            name_runner(task.workspace, runner.identity)
            if runner.send(task, quick):
                return runner
            self.discard(runner)
        return None

    def _busy(self) -> int:
        return sum(1 for runner in self.all if runner.jobs)

    def _idle(self) -> SlotRunner | None:
        return next((runner for runner in self.all if not runner.jobs and not runner.leaving), None)

    def _ahead(self) -> SlotRunner | None:
        runner = max(self.all, key=lambda r: r.ahead(self.tiny), default=None)
        return runner if runner is not None and runner.ahead(self.tiny) > 0 else None

    def discard(self, runner: SlotRunner) -> None:
        """It has gone (or must): stop watching it."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(runner.fd)
        with contextlib.suppress(ValueError):
            self.all.remove(runner)
        runner.close()

    def close(self) -> None:
        for runner in list(self.all):
            self.discard(runner)

    def _new(self) -> SlotRunner:
        runner = SlotRunner()
        self.all.append(runner)
        self.selector.register(runner.fd, selectors.EVENT_READ, runner)
        return runner


class _Idle:
    """Whether the runner waits for a task: a stop signal then ends it at once (no job to cancel)."""

    now = True


def _stop_signal(runner_handler: Any, signum: int, frame: Any) -> None:
    if _Idle.now:
        raise SystemExit(0)
    runner_handler(signum, frame)


class _Tasks:
    """The task lines on stdin, read with ``os.read``: the runner knows whether the next one has come already
    (then the end of a job is said together with the start of the next, in one write)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def arrived(self) -> bytes | None:
        """The next line if it has come, without waiting."""
        if b"\n" not in self.buffer and select.select([self.fd], [], [], 0)[0]:
            self._read()
        line, newline, rest = self.buffer.partition(b"\n")
        if not newline:
            return None
        self.buffer = rest
        return line

    def wait(self) -> bytes | None:
        """The next line; None once stdin has ended (a task sent by a worker that has gone since still runs)."""
        while b"\n" not in self.buffer:
            if not self._read():
                return None
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def _read(self) -> bool:
        chunk = os.read(self.fd, 65536)
        self.buffer += chunk
        return bool(chunk)


def serve() -> int:
    install_stop_handlers(cancel_files=True)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, functools.partial(_stop_signal, signal.getsignal(sig)))
    sandbox.prepare()
    environ = sandbox.allowed_environment(os.environ)  # read once, not per job
    tasks, unsaid = _Tasks(sys.stdin.fileno()), list[bytes]()
    _say(READY)
    while True:
        line = tasks.arrived()
        if line is None:
            _say(*unsaid)  # the ends not said yet, before waiting
            unsaid.clear()
            line = tasks.wait()
            if line is None:
                return 0
        _Idle.now = False
        task = Task.from_json(json.loads(line))
        # the worker named this runner in the workspace before it sent the task
        run_task(task, recorded=True, environ=environ, on_start=functools.partial(_started, unsaid, task.job_id))
        if stop_requested():
            _say(*unsaid, LEAVING, task.job_id.encode())  # in one write: the worker never reads one alone
            return 0
        unsaid.append(task.job_id.encode())
        _Idle.now = True


def _started(unsaid: list[bytes], job_id: str) -> None:
    """Its method has started: say so, with the ends of the jobs before it not said yet."""
    _say(*unsaid, STARTED + job_id.encode())
    unsaid.clear()


def _say(*lines: bytes) -> None:
    """Tell the worker, if it is still there (else the next one reads the result file)."""
    if lines:
        with contextlib.suppress(BrokenPipeError):
            os.write(sys.stdout.fileno(), b"\n".join(lines) + b"\n")


if __name__ == "__main__":
    sys.exit(serve())
