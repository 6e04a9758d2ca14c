"""The local worker's fork server: each job's runner is a fork of a process that has already imported the runner.

A runner started as ``python -m ...runner`` spends some 40 ms of CPU importing before its job starts, more than a
quick method takes to run. The worker therefore starts this server once (``python -m ...forkserver``, standard
library only, like the runner) and sends it tasks as JSON lines on its stdin; for each one the server forks a
child that *is* a runner like any other: its own session (its process group is what a cancel signals), its
identity (``pid:start time``) named in the workspace's ``runner.json`` before the method can start, the task run
by :func:`~.runner.run_task`, the result file written, its output in the workspace's ``runner.log``. So limits,
cancel, result files, adoption after a worker crash and ``NF`` for a runner that vanished work exactly as for a
runner started on its own. The server answers each task with one JSON line, in order: ``{"runner": identity}``,
or ``{"error": message, "errno": n}`` when no runner started (the worker puts the job back in the queue).

The handshake decides, even when the server is killed half-way, whether a child runs its job: the child starts
its session and waits; the server names it in ``runner.json`` and only then lets it go. A child whose server
died first runs the job only if ``runner.json`` names it, so whoever reads ``runner.json`` once the server is
gone (the worker) knows for sure whether the job runs (adopt it) or not (queue it again).

The server exits when its stdin ends (the worker has gone); its runners, in their own sessions, run on.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import select
import subprocess
import sys
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import sandbox
from .runner import Task, install_stop_handlers, process_identity, read_runner_info, record_runner, run_task

RUNNER_LOG = "runner.log"
#: How long the worker waits for the server to answer a task before it gives the server up as lost.
ANSWER_TIMEOUT_S = 30.0


def _run_child(data: dict[str, Any], log_fd: int, go_r: int) -> None:
    """The forked runner: never returns."""
    code = 1
    try:
        install_stop_handlers()
        os.setsid()
        go = os.read(go_r, 1)
        os.close(go_r)
        task = Task.from_json(data)
        if not go and (read_runner_info(Path(task.workspace)) or {}).get("runner") != process_identity(os.getpid()):
            os._exit(0)  # the server died before naming this runner: the worker queues the job again
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        run_task(task, recorded=True)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(BaseException):
            sys.stderr.flush()
        os._exit(code)


def start_runner(data: dict[str, Any]) -> dict[str, Any]:
    """Fork a runner for one task; the answer for the worker."""
    workspace = Path(data["workspace"])
    try:
        log_fd = os.open(workspace / RUNNER_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        return {"error": f"could not open {RUNNER_LOG}: {exc}", "errno": exc.errno}
    go_r, go_w = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in (log_fd, go_r, go_w):
            os.close(fd)
        return {"error": f"could not start a runner: {exc}", "errno": exc.errno}
    if pid == 0:
        os.close(go_w)
        _run_child(data, log_fd, go_r)
    os.close(log_fd)
    os.close(go_r)
    try:
        identity = process_identity(pid)
        if identity is None:
            return {"error": "the runner ended as it started", "errno": None}
        record_runner(workspace, identity, None)
        with contextlib.suppress(BrokenPipeError):  # it died since: the worker finds it gone, without a result
            os.write(go_w, b"g")
        return {"runner": identity}
    finally:
        os.close(go_w)


def _reap() -> None:
    """Collect the runners that have ended (their exit was seen by the worker on its pidfd)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


@dataclass(frozen=True, slots=True)
class Started:
    """What became of one task sent to the server: the identity of its runner, or why none runs it."""

    runner: str | None
    error: str | None = None
    errno: int | None = None


class ForkServer:
    """The worker's end: starts the server when first needed, and again after it was lost."""

    def __init__(self, answer_timeout: float = ANSWER_TIMEOUT_S) -> None:
        self.answer_timeout = answer_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._pending = b""

    def start(self, tasks: Sequence[Task]) -> list[Started]:
        """Start a runner for each task, answers in order. A server lost on the way (killed, hung) is stopped
        for sure, then ``runner.json`` says for each task left whether a runner of it runs."""
        process = self._process()
        answers: list[Started] = []
        try:
            assert process.stdin is not None
            process.stdin.write(b"".join(json.dumps(asdict(task)).encode() + b"\n" for task in tasks))
            process.stdin.flush()
            while len(answers) < len(tasks):
                line = self._answer(process)
                if line is None:
                    break
                answers.append(Started(**json.loads(line)))
        except (BrokenPipeError, ValueError, TypeError):
            pass
        if len(answers) < len(tasks):
            self._stop(process)  # at once: killed if it still runs, so what it did is final
            answers += [self._decided(task) for task in tasks[len(answers) :]]
        return answers

    def close(self) -> None:
        """End the server (it exits at the end of its input); the runners it started run on."""
        if self.process is not None:
            self._stop(self.process, patience=10.0)

    def _process(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dshpc_jupyter.schedulers.forkserver"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )  # fmt: skip
            self._pending = b""
        return self.process

    def _answer(self, process: subprocess.Popen[bytes]) -> bytes | None:
        """The next line the server writes; None at its end or after ``answer_timeout`` seconds of silence."""
        assert process.stdout is not None
        fd = process.stdout.fileno()
        while b"\n" not in self._pending:
            if not select.select([fd], [], [], self.answer_timeout)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def _stop(self, process: subprocess.Popen[bytes], patience: float = 0.0) -> None:
        with contextlib.suppress(OSError):
            assert process.stdin is not None
            process.stdin.close()
        try:
            process.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self.process = None

    @staticmethod
    def _decided(task: Task) -> Started:
        """With the server gone, ``runner.json`` is final: a runner it names runs the job; none, none does."""
        runner = (read_runner_info(Path(task.workspace)) or {}).get("runner")
        return Started(runner, None if runner else "the fork server was lost before it started a runner")


def serve() -> int:
    sandbox.prepare()
    # What is loaded now is shared with every child; frozen, the collector of a child never touches (so copies) it.
    gc.freeze()
    out = sys.stdout.fileno()
    for line in sys.stdin.buffer:
        answer = start_runner(json.loads(line))
        os.write(out, json.dumps(answer).encode() + b"\n")
        _reap()
    _reap()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
