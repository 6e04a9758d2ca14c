"""Run jobs in their workspaces and write each one's result file: the supervisor every scheduler uses.

``python -m dshpc_jupyter.schedulers.runner MANIFEST [--index I]`` runs group ``I`` of the manifest's task
groups one after another (a group holds one task, or several when small jobs are packed). For each task it starts
``command script input_file params_file`` as an argv list in its own process group, enforces the time and
memory limits, and writes ``result.json`` (status, exit code, timings, stdout, stderr) atomically.

It imports only the standard library (and the package's status vocabulary, itself standard-library only), so
it starts fast and runs on compute nodes that have only Python, and it never opens the store: the engine (or
the local worker) ingests the result files. It runs in its own session, so a scheduler process that dies does
not take its jobs down; whoever comes next adopts them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..domain.status import CANCELLED, COMPLETED, FAILED, OUT_OF_MEMORY, TIMEOUT
from . import sandbox

RESULT_FILE = "result.json"
RUNNER_FILE = "runner.json"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
PARAMS_FILE = "params.json"
#: Present in a workspace when the job was cancelled alone, without its packmates (the runner stops just it).
CANCEL_FILE = "cancel"
CANCEL_CHECK_S = 0.5
OUTPUT_LIMIT = 8 << 20
ERROR_LIMIT = 64 << 10
KILL_GRACE_S = 2.0
POLL_S = 0.05
PYTHON_COMMANDS = frozenset({"python", "python3"})


@dataclass
class Task:
    """Everything needed to run one job, as plain JSON."""

    job_id: str
    workspace: str
    command: str
    script: str
    input_file: str
    method_dir: str
    method_name: str
    parameters: dict[str, Any]
    time_limit: float | None = None
    mem_limit: int | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        return cls(**data)


@dataclass
class Result:
    """What ``result.json`` holds."""

    job_id: str
    status: str
    exit_code: int | None
    started_at: float
    finished_at: float
    output: str
    error: str
    peak_rss: int = 0
    notes: list[str] = field(default_factory=list)


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a live process (identifies it across pid reuse); None once it has ended."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] in (b"Z", b"X") else fields[19].decode()


def process_identity(pid: int) -> str | None:
    """``pid:start_time`` of a live process: what a later process checks to know it is still the same one."""
    started = process_start_time(pid)
    return None if started is None else f"{pid}:{started}"


def is_alive(identity: str | None) -> bool:
    pid, _, started = (identity or "").partition(":")
    return pid.isdigit() and bool(started) and process_start_time(int(pid)) == started


def read_runner_info(workspace: Path) -> dict[str, str | None] | None:
    """Who runs (or ran) a job: the runner's and the method's process identities, or None if none started."""
    try:
        data: dict[str, str | None] = json.loads((workspace / RUNNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data


def kill_orphaned_method(workspace: Path) -> None:
    """Stop the method's process group of a job whose runner vanished (it would run on unsupervised)."""
    info = read_runner_info(workspace) or {}
    method = info.get("method")
    if is_alive(method):
        _kill_group(int(str(method).partition(":")[0]), signal.SIGKILL)


def write_manifest(path: Path, groups: list[list[Task]]) -> None:
    _write_json_atomic(path, {"groups": [[asdict(task) for task in group] for group in groups]})


def read_result(workspace: Path) -> Result | None:
    """The result a runner wrote for a job, or None when there is none (yet)."""
    try:
        data = json.loads((workspace / RESULT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Result(**data)


def _write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


class _Stop:
    """Set by SIGTERM/SIGINT: the scheduler cancelled us."""

    requested = False

    @classmethod
    def handle(cls, signum: int, frame: object) -> None:
        cls.requested = True


def _argv(task: Task, params_file: Path) -> list[str]:
    words = shlex.split(task.command)
    if words and words[0] in PYTHON_COMMANDS:
        words[0] = sys.executable
    elif words:
        resolved = shutil.which(words[0])
        if resolved is None:
            raise FileNotFoundError(f"command {words[0]!r} of method {task.method_name!r} not found on PATH")
        words[0] = resolved
    return [*words, task.script, task.input_file, str(params_file)]


def _group_rss(pgid: int) -> int:
    """Resident memory of every process in a process group, from /proc (as Slurm's linuxproc does)."""
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[21]) * page
    return total


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path, limit: int) -> tuple[str, bool]:
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return "", False
    with path.open("rb") as stream:
        if size > limit:
            stream.seek(size - limit)
        return stream.read().decode("utf-8", errors="replace"), size > limit


def _head(path: Path, limit: int) -> tuple[str, bool]:
    if not path.exists():
        return "", False
    with path.open("rb") as stream:
        data = stream.read(limit + 1)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def run_task(task: Task) -> Result:
    """Run one task to its end and write its result file; never raises for the job's own failures."""
    import subprocess

    workspace = Path(task.workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    params_file = workspace / PARAMS_FILE
    params_file.write_text(json.dumps(task.parameters), encoding="utf-8")
    job_env = {
        "JOB_ID": task.job_id,
        "JOB_WORKSPACE": str(workspace),
        "INPUT_FILE": task.input_file,
        "METHOD_DIR": task.method_dir,
        "PARAMS_FILE": str(params_file),
        "METHOD_NAME": task.method_name,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env = sandbox.job_environment(os.environ, job_env, workspace)
    runner = process_identity(os.getpid())
    _write_json_atomic(workspace / RUNNER_FILE, {"runner": runner, "method": None})
    started = time.time()
    status, exit_code, notes, peak = FAILED, None, [], 0
    if _Stop.requested or (workspace / CANCEL_FILE).exists():
        status, notes = CANCELLED, ["cancelled before it started"]
    else:
        try:
            mismatch = sandbox.input_mismatch(Path(task.input_file))
            if mismatch is not None:
                raise sandbox.ConfinementError(mismatch)
            run = sandbox.confine(
                _argv(task, params_file), env, workspace, Path(task.input_file), Path(task.method_dir)
            )
            with (workspace / STDOUT_FILE).open("wb") as out, (workspace / STDERR_FILE).open("wb") as err:
                child = subprocess.Popen(
                    run.argv, cwd=workspace, env=run.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, user=run.user, group=run.user, extra_groups=[] if run.user else None,
                )  # fmt: skip
            _write_json_atomic(workspace / RUNNER_FILE, {"runner": runner, "method": process_identity(child.pid)})
            status, notes, peak = _supervise(child, task, started)
            exit_code = child.returncode
            notes = notes or run.exit_notes(exit_code)
        except OSError as exc:
            status, exit_code, notes = FAILED, 127, [f"could not start the method: {exc}"]
        except sandbox.ConfinementError as exc:
            status, exit_code, notes = FAILED, None, [str(exc)]
    finished = time.time()
    output, cut = _head(workspace / STDOUT_FILE, OUTPUT_LIMIT)
    error, error_cut = _tail(workspace / STDERR_FILE, ERROR_LIMIT)
    if cut:
        notes.append(f"output truncated to its first {OUTPUT_LIMIT} bytes (full text in {STDOUT_FILE})")
    if error_cut:
        error = f"[... stderr cut to its last {ERROR_LIMIT} bytes]\n{error}"
    if notes:
        error = "\n".join([*notes, error]) if error else "\n".join(notes)
    result = Result(task.job_id, status, exit_code, started, finished, output, error, peak, notes)
    _write_json_atomic(workspace / RESULT_FILE, asdict(result))
    return result


def _supervise(child: Any, task: Task, started: float) -> tuple[str, list[str], int]:
    """Wait for the child, stopping its process group on cancel, time limit or memory limit."""
    import subprocess

    peak = 0
    reason: tuple[str, str] | None = None
    cancel_file = Path(task.workspace) / CANCEL_FILE
    next_cancel_check = time.monotonic() + CANCEL_CHECK_S
    cancelled_alone = False
    while True:
        try:
            child.wait(timeout=POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if time.monotonic() >= next_cancel_check:  # a stat every half second, cheap even on NFS
            next_cancel_check = time.monotonic() + CANCEL_CHECK_S
            cancelled_alone = cancel_file.exists()
        if _Stop.requested or cancelled_alone:
            reason = (CANCELLED, "cancelled")
        elif task.time_limit is not None and time.time() - started > task.time_limit:
            reason = (TIMEOUT, f"time limit of {task.time_limit:g} s reached")
        elif task.mem_limit is not None:
            peak = max(peak, _group_rss(child.pid))
            if peak > task.mem_limit:
                reason = (OUT_OF_MEMORY, f"memory limit of {task.mem_limit} bytes exceeded ({peak} bytes resident)")
        if reason is not None:
            _kill_group(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_group(child.pid, signal.SIGKILL)
                child.wait()
            break
    _kill_group(child.pid, signal.SIGKILL)
    if reason is not None:
        return reason[0], [f"{reason[1]}: process group stopped"], peak
    return (COMPLETED if child.returncode == 0 else FAILED), [], peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dshpc_jupyter.schedulers.runner", description=__doc__)
    parser.add_argument("manifest", type=Path)
    parser.add_argument(
        "--index", type=int, default=None, help="task group to run (default: $SLURM_ARRAY_TASK_ID or 0)"
    )
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _Stop.handle)
    index = args.index if args.index is not None else int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    groups = json.loads(args.manifest.read_text(encoding="utf-8"))["groups"]
    for data in groups[index]:
        run_task(Task.from_json(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
