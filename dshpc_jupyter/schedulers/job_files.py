"""The files of a job's workspace, as the runner writes them and the workers read them: their names, atomic
writes, the method's two streams and its listed outputs. Standard library only (the runner's boundary), and cheap
in system calls: a tiny job writes and reads several of these per run.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

RESULT_FILE = "result.json"
RUNNER_FILE = "runner.json"
STDOUT_FILE = "stdout.txt"
STDERR_FILE = "stderr.txt"
PARAMS_FILE = "params.json"
INPUTS_DIR = "inputs"
INPUTS_FILE = "inputs.json"
OUTPUTS_DIR = "outputs"
#: The name under which a stdout over ``OUTPUT_LIMIT`` is listed among the output files, kept whole.
STDOUT_OUTPUT = "@stdout"
#: Present in a workspace when the job was cancelled alone, without its packmates (the runner stops just it).
CANCEL_FILE = "cancel"


def read_runner_info(workspace: Path) -> dict[str, str | None] | None:
    """Who runs (or ran) a job: the runner's and the method's process identities, or None if none was named.
    The file is JSON lines, each adding to the ones before (``name_runner``, then ``record_method``); a last line
    cut short (its writer died in the write, or is still in it) is not read."""
    try:
        text = (workspace / RUNNER_FILE).read_text(encoding="utf-8")
    except OSError:
        return None
    info: dict[str, str | None] = {}
    for line in text.splitlines():
        try:
            info.update(json.loads(line))
        except ValueError:
            break
    return {"runner": info.get("runner"), "method": info.get("method")} if "runner" in info else None


def name_runner(workspace: str | Path, runner: str | None) -> None:
    """Name a job's runner in its workspace, before anything runs there: one plain write (no rename: a rename
    over an earlier file frees an inode per job, which costs every later file creation on some file systems,
    see docs/design.md 7.6). The slot runner's worker names it before it sends the task, a runner started per
    job names itself; a file left empty or half written (its writer died in the write, before sending or
    starting anything) reads as no runner, and the job is queued again, which is then right."""
    write_file(f"{workspace}/{RUNNER_FILE}", json.dumps({"runner": runner, "method": None}).encode() + b"\n")


def record_method(workspace: str | Path, method: str | None) -> None:
    """Add the method's process identity once the runner has started it: what a later worker needs to stop a
    method whose runner vanished. Appended as a line (never rewritten): a reader sees the name alone, or both."""
    fd = os.open(f"{workspace}/{RUNNER_FILE}", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        os.write(fd, json.dumps({"method": method}).encode() + b"\n")
    finally:
        os.close(fd)


def never_started(workspace: Path) -> bool:
    """Whether no runner got as far as starting this job's method: a runner creates ``stdout.txt`` just before
    it starts one, and a new attempt starts without the last one's files."""
    return not os.path.exists(f"{workspace}/{STDOUT_FILE}")  # noqa: PTH110 (a text path: no Path per job)


def write_json_atomic(path: Path, data: object) -> None:
    """Write, then rename over: a reader sees the old file or the new one, never half (no fsync: a job's
    files need not outlive the machine, only the processes)."""
    tmp = f"{path.parent}/.{path.name}.{os.getpid()}.tmp"
    write_file(tmp, json.dumps(data).encode())
    os.replace(tmp, path)  # noqa: PTH105 (a text path: no Path made per file)


def write_file(path: str, data: bytes) -> None:
    """The file's whole content in one write, with the fewest system calls (a tiny job writes several)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def output_source(workspace: Path, name: str) -> Path:
    """Where an output file listed in a result lies in its workspace."""
    return workspace / STDOUT_FILE if name == STDOUT_OUTPUT else workspace / OUTPUTS_DIR / name


def collect_outputs(workspace: Path) -> dict[str, str]:
    """Every regular file under ``outputs/`` (symlinks are not followed) with its SHA-256."""
    found: dict[str, str] = {}
    if not _has_entries(f"{workspace}/{OUTPUTS_DIR}"):  # most jobs write none: no tree walk, no Path made
        return found
    root = workspace / OUTPUTS_DIR
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        linked = any((root / PurePosixPath(*rel.parts[: n + 1])).is_symlink() for n in range(len(rel.parts)))
        if not linked and path.is_file():
            found[rel.as_posix()] = sha256(path)
    return found


def _has_entries(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:
            return next(entries, None) is not None
    except OSError:
        return False


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Streams:
    """The method's ``stdout.txt`` and ``stderr.txt``: created for it, then read back through the same open
    files (no second open); a job that never started has neither, and shows empty ones."""

    def __init__(self, workspace: Path) -> None:
        self.paths = (f"{workspace}/{STDOUT_FILE}", f"{workspace}/{STDERR_FILE}")
        self.fds: list[int] = []

    def create(self) -> tuple[int, int]:
        for path in self.paths:
            self.fds.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666))
        return self.fds[0], self.fds[1]

    def read(self, head: int, tail: int) -> tuple[tuple[str, bool], tuple[str, bool]]:
        """The first ``head`` bytes of stdout and the last ``tail`` of stderr, each with whether it was cut."""
        if len(self.fds) < 2:
            self.close()
            return ("", False), ("", False)
        try:
            out = os.pread(self.fds[0], head + 1, 0)
            size = os.fstat(self.fds[1]).st_size
            err = os.pread(self.fds[1], min(size, tail), max(0, size - tail)) if size else b""
        finally:
            self.close()
        return (out[:head].decode(errors="replace"), len(out) > head), (err.decode(errors="replace"), size > tail)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
