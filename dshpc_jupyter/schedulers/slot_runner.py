"""A runner that serves one worker slot: it runs job after job, sent to it one at a time, in one process.

A runner started per job (``python -m ...runner``) spends some 40 ms of CPU importing, and a forked one some
7 ms copying the pages it touches, before its job starts: more than a quick method takes to run. So the local
worker starts one of these per slot (``python -m ...slot_runner``, standard library only, like the runner, in
its own session) and writes it one task at a time as a JSON line on its stdin; the runner runs it with
:func:`~.runner.run_task` (limits, sandbox, result file: the very same code) and answers with the job's id on a
line of its stdout once the result file is written. The worker names the runner in the job's ``runner.json``
before it sends the task, so a worker that dies at any point leaves a workspace that says who runs the job.

Cancelling one job is per job, never per process: the worker writes the job's cancel file and sends SIGUSR1,
and the runner stops the method if that job is still the one it runs (a cancel meant for a job that has just
ended never touches the next). SIGTERM stops the runner itself: the job in hand is cancelled and it exits.

When its stdin ends (the worker has gone, or stopped), the runner finishes the job in hand and exits, so the
next worker adopts that job by the runner's identity, exactly as it adopts a runner started per job.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import sandbox
from .runner import (
    CANCEL_FILE,
    Task,
    install_stop_handlers,
    process_identity,
    record_runner,
    run_task,
    stop_requested,
)

READY = b"ready"
#: Said (before the last job's id) by a runner that ends after that job: it must not be sent another.
LEAVING = b"leaving"


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
        #: The job it runs, if any.
        self.job_id: str | None = None
        #: Set once it said it listens for SIGUSR1 (before that, a signal would kill it: the cancel file is
        #: enough then, as the runner looks for it before it starts the job).
        self.ready = False
        self.leaving = False
        self._pending = b""

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, task: Task) -> bool:
        """Hand it a task; False when it is gone."""
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(vars(task)).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        self.job_id = task.job_id
        return True

    def read(self) -> list[str] | None:
        """The ids of the jobs it reports ended since the last read (call when its stdout is readable); None
        once it has gone."""
        chunk = os.read(self.fd, 65536)
        if not chunk:
            return None
        self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        self.ready = self.ready or READY in lines
        self.leaving = self.leaving or LEAVING in lines
        ended = [line.decode() for line in lines if line and line not in (READY, LEAVING)]
        if self.job_id in ended:
            self.job_id = None
        return ended

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
        if self.job_id is None:  # it exits at once
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        else:
            self.process.poll()  # collected if it has gone (killed); else it runs on, its job adopted later
        assert self.process.stdout is not None
        self.process.stdout.close()


class SlotPool:
    """The worker's slot runners: idle ones wait for a task; each one's stdout is watched on ``selector``
    (its key's data is the runner)."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.selector = selector
        self.idle: list[SlotRunner] = []
        self.all: list[SlotRunner] = []

    def start(self, task: Task) -> SlotRunner | None:
        """Name a runner in the task's workspace, then send it the task: an idle runner, or a new one if none
        is idle or the idle one has gone. None when no runner would take it."""
        for _ in range(2):
            runner = self.idle.pop() if self.idle else self._new()
            record_runner(Path(task.workspace), runner.identity, None)
            if runner.send(task):
                return runner
            self.discard(runner)
        return None

    def release(self, runner: SlotRunner) -> None:
        """Its job has ended: it waits for the next (unless it said it ends)."""
        if runner.leaving:
            self.discard(runner)
        else:
            self.idle.append(runner)

    def discard(self, runner: SlotRunner) -> None:
        """It has gone (or must): stop watching it."""
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(runner.fd)
        with contextlib.suppress(ValueError):
            self.idle.remove(runner)
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


def serve() -> int:
    install_stop_handlers(cancel_files=True)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, functools.partial(_stop_signal, signal.getsignal(sig)))
    sandbox.prepare()
    environ = dict(os.environ)  # read once, not per job
    _say(READY)
    for line in sys.stdin.buffer:  # a task sent by a worker that has gone since still runs
        _Idle.now = False
        task = Task.from_json(json.loads(line))
        run_task(task, recorded=True, environ=environ)  # the worker named this runner in the workspace
        if stop_requested():
            _say(LEAVING + b"\n" + task.job_id.encode())  # in one write: the worker never reads one alone
            break
        _say(task.job_id.encode())
        _Idle.now = True
    return 0


def _say(line: bytes) -> None:
    """Tell the worker, if it is still there (else the next one reads the result file)."""
    with contextlib.suppress(BrokenPipeError):
        os.write(sys.stdout.fileno(), line + b"\n")


if __name__ == "__main__":
    sys.exit(serve())
