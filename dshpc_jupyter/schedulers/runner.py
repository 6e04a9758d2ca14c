"""Run jobs in their workspaces and write each one's result file: the supervisor every scheduler uses.

``python -m dshpc_jupyter.schedulers.runner MANIFEST [--index I]`` runs group ``I`` of the manifest's task
groups one after another (a group holds one task, or several when small jobs are packed). For each task it stages
the named inputs read-only, starts ``command script input_file params_file`` (the input argument is the inputs'
manifest for named inputs, absent for a parameters-only job) as an argv list in its own process group, enforces
the time and memory limits, lists the files written under ``outputs/`` with their hashes, and writes
``result.json`` (status, exit code, timings, stdout, stderr, output files) atomically.

It imports only the standard library (and the package's status vocabulary, itself standard-library only), so
it starts fast and runs on compute nodes that have only Python, and it never opens the store: the engine (or
the local worker) ingests the result files. It runs in its own session, so a scheduler process that dies does
not take its jobs down; whoever comes next adopts them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..domain.status import CANCELLED, COMPLETED, FAILED, OUT_OF_MEMORY, TIMEOUT
from . import sandbox
from .job_files import CANCEL_FILE as CANCEL_FILE
from .job_files import (
    INPUTS_DIR,
    INPUTS_FILE,
    OUTPUTS_DIR,
    Streams,
    collect_outputs,
    name_runner,
    record_method,
    sha256,
    write_file,
    write_json_atomic,
)
from .job_files import PARAMS_FILE as PARAMS_FILE
from .job_files import RESULT_FILE as RESULT_FILE
from .job_files import RUNNER_FILE as RUNNER_FILE
from .job_files import STDERR_FILE as STDERR_FILE
from .job_files import STDOUT_FILE as STDOUT_FILE
from .job_files import STDOUT_OUTPUT as STDOUT_OUTPUT
from .job_files import output_source as output_source
from .job_files import read_runner_info as read_runner_info

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
    #: Named inputs: input name to a stored file's path, or an ordered list of paths.
    inputs: dict[str, str | list[str]] | None = None

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
    #: Files to store content-addressed: relative path under ``outputs/`` (or ``@stdout``) to SHA-256.
    output_files: dict[str, str] = field(default_factory=dict)


def memory(size: int) -> str:
    """A size in bytes as people read it: MiB, or GiB from 1 GiB up."""
    return f"{size / 2**30:.4g} GiB" if size >= 2**30 else f"{size / 2**20:.4g} MiB"


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of a live process (identifies it across pid reuse); None once it has ended."""
    try:  # os.open/os.read: a runner reads one per job it starts, and a file object costs twice the read
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)
        try:
            fields = os.read(fd, 4096).rsplit(b")", 1)[1].split()
        finally:
            os.close(fd)
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


def kill_orphaned_method(workspace: Path) -> None:
    """Stop the method's process group of a job whose runner vanished (it would run on unsupervised)."""
    info = read_runner_info(workspace) or {}
    method = info.get("method")
    if is_alive(method):
        _kill_group(int(str(method).partition(":")[0]), signal.SIGKILL)


def write_manifest(path: Path, groups: list[list[Task]]) -> None:
    write_json_atomic(path, {"groups": [[asdict(task) for task in group] for group in groups]})


def read_result(workspace: Path) -> Result | None:
    """The result a runner wrote for a job, or None when there is none (yet)."""
    try:
        with open(f"{workspace}/{RESULT_FILE}", "rb") as stream:  # a text path: no Path made per job
            data = json.loads(stream.read())
    except (OSError, ValueError):
        return None
    return Result(**data)


class _Stop:
    """Set by SIGTERM/SIGINT: the scheduler cancelled us. ``look_now``, set by SIGUSR1 in a slot runner: look for
    the running job's cancel file now, not at the next half second."""

    requested = False
    look_now = False

    @classmethod
    def handle(cls, signum: int, frame: object) -> None:
        cls.requested = True

    @classmethod
    def look(cls, signum: int, frame: object) -> None:
        cls.look_now = True


def _stored_inputs(task: Task) -> list[Path]:
    """The stored files a job reads, each checked against its hash before the method starts."""
    if task.inputs is None:
        return [Path(task.input_file)] if task.input_file else []
    return [Path(v) for value in task.inputs.values() for v in ([value] if isinstance(value, str) else value)]


def _stage_inputs(task: Task, workspace: Path) -> str:
    """Link (or copy) each named input read-only under ``inputs/`` and write their manifest; the input argument
    to pass: the manifest's path, the seed's single file, or ``""`` for a parameters-only job."""
    if task.inputs is None:
        return task.input_file
    root = workspace / INPUTS_DIR
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    manifest: dict[str, str | list[str]] = {}
    for name, value in task.inputs.items():
        if isinstance(value, str):
            manifest[name] = _stage_one(Path(value), root / name)
        else:
            (root / name).mkdir()
            manifest[name] = [_stage_one(Path(v), root / name / str(i)) for i, v in enumerate(value)]
    write_json_atomic(workspace / INPUTS_FILE, manifest)
    return str(workspace / INPUTS_FILE)


def _stage_one(source: Path, target: Path) -> str:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    target.chmod(0o444)
    return str(target)


def _make_dirs(path: str) -> None:
    """``mkdir -p``, in one system call when the parent is there (as a slot runner's workspaces are)."""
    try:
        os.mkdir(path)  # noqa: PTH102 (text paths: no Path made per job)
    except FileExistsError:
        pass
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)  # noqa: PTH103


@functools.lru_cache(maxsize=64)
def _command_words(command: str) -> tuple[str, ...]:
    """A method's command split as a shell would (once per command in a runner that runs many jobs)."""
    return tuple(shlex.split(command))


def _argv(task: Task, params_file: str, input_arg: str) -> list[str]:
    words = list(_command_words(task.command))
    if words and words[0] in PYTHON_COMMANDS:
        words[0] = sys.executable
    elif words:
        resolved = _which(words[0], os.environ.get("PATH"))
        if resolved is None:
            raise FileNotFoundError(f"command {words[0]!r} of method {task.method_name!r} not found on PATH")
        words[0] = resolved
    return [*words, task.script, *([input_arg] if input_arg else []), params_file]


_FOUND: dict[tuple[str, str | None], str] = {}


def _which(command: str, path: str | None) -> str | None:
    """``shutil.which``, remembered once found: a runner that runs many jobs searches the PATH once per command
    (a command not found is looked for again: it may be installed since)."""
    if (command, path) not in _FOUND:
        resolved = shutil.which(command, path=path)
        if resolved is None:
            return None
        _FOUND[command, path] = resolved
    return _FOUND[command, path]


@functools.cache
def _own_identity(pid: int) -> str | None:
    """This process's identity (by pid: a forked child is another process, and looks again)."""
    return process_identity(pid)


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


def install_stop_handlers(*, cancel_files: bool = False) -> None:
    """SIGTERM, SIGINT and SIGHUP ask the runner to stop: the running method is stopped, the rest cancelled.
    ``cancel_files``: SIGUSR1 says a job's cancel file was just written (a runner that serves many jobs)."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _Stop.handle)
    if cancel_files:
        signal.signal(signal.SIGUSR1, _Stop.look)


def stop_requested() -> bool:
    """Whether this runner was told to stop (it ends after the job in hand)."""
    return _Stop.requested


def run_task(
    task: Task,
    *,
    recorded: bool = False,
    environ: Mapping[str, str] | None = None,
    on_start: Callable[[], None] | None = None,
) -> Result:
    """Run one task to its end and write its result file; never raises for the job's own failures.
    ``recorded``: whoever started this process has already named it in the workspace (the slot runner's
    worker). ``environ``: this process's environment, read once by a runner that runs many jobs. ``on_start``:
    called once the method has started (and is named in the workspace), never for a job that does not start."""
    workspace, space = Path(task.workspace), task.workspace  # as a path, and as text to join (cheaper per job)
    _make_dirs(space)
    params_file = f"{space}/{PARAMS_FILE}"
    write_file(params_file, json.dumps(task.parameters).encode())
    _make_dirs(f"{space}/{OUTPUTS_DIR}")
    job_env = {
        "JOB_ID": task.job_id,
        "JOB_WORKSPACE": space,
        "METHOD_DIR": task.method_dir,
        "PARAMS_FILE": params_file,
        "METHOD_NAME": task.method_name,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env = sandbox.job_environment(os.environ if environ is None else environ, job_env, workspace)
    runner = _own_identity(os.getpid())
    if not recorded:
        name_runner(space, runner)
    started = time.time()
    status, exit_code, notes, peak, streams = FAILED, None, [], 0, Streams(workspace)
    if _Stop.requested or os.path.exists(f"{space}/{CANCEL_FILE}"):  # noqa: PTH110 (a text path)
        status, notes = CANCELLED, ["cancelled before it started"]
    else:
        try:
            stored = _stored_inputs(task)
            for path in stored:
                mismatch = sandbox.input_mismatch(path)
                if mismatch is not None:
                    raise sandbox.ConfinementError(mismatch)
            input_arg = _stage_inputs(task, workspace)
            if input_arg:
                env["INPUTS_FILE" if task.inputs is not None else "INPUT_FILE"] = input_arg
            argv = _argv(task, params_file, input_arg)
            run = sandbox.confine(argv, env, workspace, stored, Path(task.method_dir))
            out, err = streams.create()
            child = subprocess.Popen(
                run.argv, cwd=workspace, env=run.env, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                start_new_session=True, user=run.user, group=run.user, extra_groups=[] if run.user else None,
            )  # fmt: skip
            record_method(space, process_identity(child.pid))
            if on_start is not None:
                on_start()
            status, notes, peak = _supervise(child, task, started)
            exit_code = child.returncode
            notes = notes or run.exit_notes(exit_code)
        except OSError as exc:
            status, exit_code, notes = FAILED, 127, [f"could not start the method: {exc}"]
        except sandbox.ConfinementError as exc:
            status, exit_code, notes = FAILED, None, [str(exc)]
    finished = time.time()
    (output, cut), (error, error_cut) = streams.read(OUTPUT_LIMIT, ERROR_LIMIT)
    outputs = collect_outputs(workspace) if status == COMPLETED else {}
    if cut:
        outputs[STDOUT_OUTPUT] = sha256(workspace / STDOUT_FILE)
        notes.append(f"output shows its first {OUTPUT_LIMIT} bytes; the whole stdout is output file {STDOUT_OUTPUT}")
    if error_cut:
        error = f"[... stderr cut to its last {ERROR_LIMIT} bytes]\n{error}"
    if notes:
        error = "\n".join([*notes, error]) if error else "\n".join(notes)
    result = Result(task.job_id, status, exit_code, started, finished, output, error, peak, notes, outputs)
    write_json_atomic(workspace / RESULT_FILE, vars(result))
    return result


def _supervise(child: Any, task: Task, started: float) -> tuple[str, list[str], int]:
    """Wait for the child, stopping its process group on cancel, time limit or memory limit."""
    pidfd = _pidfd(child.pid)
    try:
        reason, peak = _watch_child(child, pidfd, task, started)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    _kill_group(child.pid, signal.SIGKILL)
    if reason is not None:
        return reason[0], [f"{reason[1]}: process group stopped"], peak
    return (COMPLETED if child.returncode == 0 else FAILED), [], peak


def _watch_child(child: Any, pidfd: int | None, task: Task, started: float) -> tuple[tuple[str, str] | None, int]:
    """Wait for the child's end, or stop it at the first reason to (cancel, time, memory): (reason, peak RSS)."""
    peak = 0
    reason: tuple[str, str] | None = None
    cancel_file = f"{task.workspace}/{CANCEL_FILE}"
    next_cancel_check = time.monotonic() + CANCEL_CHECK_S
    cancelled_alone = False
    while True:
        if _ended_within(child, pidfd, POLL_S):
            if _Stop.requested and child.returncode != 0:  # the cancel reached the method as it was starting
                reason = (CANCELLED, "cancelled")
            break
        if time.monotonic() >= next_cancel_check or _Stop.look_now:  # a stat every half second, cheap even on NFS
            _Stop.look_now = False
            next_cancel_check = time.monotonic() + CANCEL_CHECK_S
            cancelled_alone = os.path.exists(cancel_file)  # noqa: PTH110 (a text path)
        if _Stop.requested or cancelled_alone:
            reason = (CANCELLED, "cancelled")
        elif task.time_limit is not None and time.time() - started > task.time_limit:
            reason = (TIMEOUT, f"time limit of {task.time_limit:g} s reached")
        elif task.mem_limit is not None:
            peak = max(peak, _group_rss(child.pid))
            if peak > task.mem_limit:
                reason = (OUT_OF_MEMORY, f"memory limit of {memory(task.mem_limit)} exceeded ({memory(peak)} resident)")
        if reason is not None:
            _kill_group(child.pid, signal.SIGTERM)
            try:
                child.wait(timeout=KILL_GRACE_S)
            except subprocess.TimeoutExpired:
                _kill_group(child.pid, signal.SIGKILL)
                child.wait()
            break
    return reason, peak


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _ended_within(child: Any, pidfd: int | None, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for the child to end; on its pidfd the wait returns the moment it ends,
    so a method that lasts a millisecond is not left waiting out a polling sleep."""
    if pidfd is not None:
        if not select.select([pidfd], [], [], timeout)[0]:
            return False
        child.wait()
        return True
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dshpc_jupyter.schedulers.runner", description=__doc__)
    parser.add_argument("manifest", type=Path)
    parser.add_argument(
        "--index", type=int, default=None, help="task group to run (default: $SLURM_ARRAY_TASK_ID or 0)"
    )
    args = parser.parse_args(argv)
    install_stop_handlers()
    index = args.index if args.index is not None else int(os.environ.get("SLURM_ARRAY_TASK_ID", "0"))
    groups = json.loads(args.manifest.read_text(encoding="utf-8"))["groups"]
    for data in groups[index]:
        run_task(Task.from_json(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
