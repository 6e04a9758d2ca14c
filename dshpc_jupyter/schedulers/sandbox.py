"""Confining a job's method process: a clean environment, and a bubblewrap sandbox where the machine has one.

The runner calls :func:`confine` just before it starts a method (standard library only: the runner runs on
compute nodes with Python alone). What holds (README, "Security"):

- always: the method gets only the allow-listed environment variables (no server secrets), its input file is
  checked against the SHA-256 it is stored under before it runs (a mismatch fails the job and leaves a
  ``.mismatch`` flag beside the file), and it is never run as root: a root runner without a sandbox runs it as
  ``nobody``, and refuses when ``nobody`` could not reach its files;
- with bubblewrap (``bwrap``, Debian's ``bubblewrap``): the whole file system is read-only, the home directory
  is hidden (no store, no other workspaces, no method copies) but for the job's workspace (read-write), its input
  and its method copy (read-only); it has its own PID, IPC and UTS namespaces, no capabilities, and, under a
  root runner, is uid 65534 inside its user namespace.

``DSHPC_SANDBOX``: ``auto`` (the default: bubblewrap when it works here), ``bwrap`` (required: fail the job
otherwise), ``none`` (no bubblewrap; the clean environment, the hash check and the non-root rule still hold),
``off`` (no bubblewrap and no change of user, even under root: the operator's explicit choice). In a Slurm job,
``auto`` leaves the confinement to Slurm (the job runs as Slurm runs it, with the clean environment, its
``SLURM_*`` variables and the hash check). Directories
listed in ``DSHPC_SANDBOX_WRITABLE`` (``:``-separated; a shared scratch space) stay writable in the sandbox.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..domain.errors import DshpcError
from .job_files import sha256

SANDBOX_ENV = "DSHPC_SANDBOX"
WRITABLE_ENV = "DSHPC_SANDBOX_WRITABLE"
NOBODY = 65534
#: What a method sees of its runner's environment, besides the job's own variables and Slurm's ``SLURM_*``
#: (its job's id, CPUs and nodes, which Slurm also uses to find the job's processes).
JOB_ENV_ALLOWED = frozenset({"PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "TERM"})
#: Prefixes of variables the worker (and so the runner) keeps: the package's settings, Python's, Slurm's.
WORKER_ENV_PREFIXES = ("DSHPC_", "PYTHON", "SLURM_", "LC_")
WORKER_ENV_ALLOWED = frozenset({"PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR", "VIRTUAL_ENV", "USER"})
#: Never passed on, whatever their prefix: the client's key for a remote service.
SECRET_NAMES = frozenset({"DSHPC_API_KEY"})
#: The method's temporary directory (``TMPDIR``), in its workspace.
SCRATCH_DIR = "tmp"
_SHA256_NAME = re.compile(r"^[0-9a-f]{64}$")


class ConfinementError(DshpcError):
    """The method cannot be run confined as required; the job fails with this message."""


@dataclass
class Confinement:
    """How to start one method: its argv (bubblewrap's, wrapping the method's), environment and user."""

    argv: list[str]
    env: dict[str, str]
    user: int | None = None
    wrapped: bool = False

    def exit_notes(self, returncode: int) -> list[str]:
        """What a failed method's exit status says when its stderr may be empty: killed by a signal (the OOM
        killer, an operator). Under bubblewrap a signal arrives as 128 + its number, like an exit with that code."""
        if returncode < 0:
            return [f"the method's process was killed by signal {_signal_name(-returncode)}"]
        if self.wrapped and returncode > 128:
            name = _signal_name(returncode - 128)
            return [f"the method's process ended with status {returncode} (killed by signal {name}, or exited so)"]
        return []


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def worker_environment(source: Mapping[str, str]) -> dict[str, str]:
    """The environment a local worker is started with: the allow-list, so a server's secrets (its API key, in
    whatever variable) never reach the worker, its runners or their ``/proc/PID/environ``."""
    return {
        name: value
        for name, value in source.items()
        if name not in SECRET_NAMES and (name in WORKER_ENV_ALLOWED or name.startswith(WORKER_ENV_PREFIXES))
    }


def job_environment(source: Mapping[str, str], job: Mapping[str, str], workspace: Path) -> dict[str, str]:
    """The method's environment: the allow-list from ``source``, the job's variables, home and temp in the
    workspace."""
    env = allowed_environment(source)
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    scratch = f"{workspace}/{SCRATCH_DIR}"
    with contextlib.suppress(FileExistsError):
        os.mkdir(scratch)  # noqa: PTH102 (a text path: no Path made per job)
    return {**env, **job, "HOME": str(workspace), "TMPDIR": scratch}


def allowed_environment(source: Mapping[str, str]) -> dict[str, str]:
    """What of ``source`` a method may see (a runner of many jobs filters its environment once)."""
    return {name: value for name, value in source.items() if name in JOB_ENV_ALLOWED or name.startswith("SLURM_")}


#: Stored inputs this process has hashed and found sound, by path: the file's identity and change times then.
_VERIFIED: dict[str, tuple[int, int, int, int, int]] = {}
_VERIFIED_KEPT = 4096


def input_mismatch(input_file: Path) -> str | None:
    """Whether a stored input still holds what its name (its SHA-256) says; when not, flag it beside itself
    (``HASH.mismatch``, holding the hash it has now) and say what is wrong. A runner of many jobs hashes each
    input once while it is unchanged (same inode, size, mtime and ctime: any write moves the ctime, which no
    caller can set back), not once per job: a sweep of 1,000 jobs over a 1 GiB input read it 1,000 times."""
    if not _SHA256_NAME.match(input_file.name):
        return None
    seen = input_file.stat()
    signature = (seen.st_dev, seen.st_ino, seen.st_size, seen.st_mtime_ns, seen.st_ctime_ns)
    if _VERIFIED.get(str(input_file)) == signature:
        return None
    actual = sha256(input_file)
    if actual == input_file.name:
        if len(_VERIFIED) >= _VERIFIED_KEPT:
            _VERIFIED.clear()
        _VERIFIED[str(input_file)] = signature
        return None
    flag = input_file.with_name(input_file.name + ".mismatch")
    with contextlib.suppress(OSError):
        flag.write_text(actual + "\n", encoding="ascii")
    return (
        f"input file {input_file.name} no longer matches its hash (it now hashes to {actual}): it was changed "
        f"in the store, so the job was not run; the file is flagged ({flag.name}): upload it again"
    )


def confine(
    argv: list[str], env: dict[str, str], workspace: Path, inputs: Sequence[Path], method_dir: Path
) -> Confinement:
    """The confined way to start ``argv`` for a job (see the module's docstring), or ConfinementError."""
    mode = _mode()
    if mode not in ("auto", "bwrap", "none", "off"):
        raise ConfinementError(f"{SANDBOX_ENV}: {mode!r} is not one of auto, bwrap, none, off")
    if mode == "auto" and "SLURM_JOB_ID" in os.environ:
        # Slurm confines and limits its jobs itself, and runs them as their submitter; inside bubblewrap's
        # namespaces it could no longer stop a job at its time limit.
        return Confinement(argv, env)
    if mode in ("auto", "bwrap") and bubblewrap() is not None:
        return Confinement(_bwrap_argv(workspace, inputs, method_dir) + argv, env, wrapped=True)
    if mode == "bwrap":
        raise ConfinementError(f"{SANDBOX_ENV}=bwrap, but bubblewrap (bwrap) does not work on this machine")
    if os.geteuid() != 0 or mode == "off":
        return Confinement(argv, env)
    unreachable = [str(p) for p in (workspace, *inputs, method_dir, Path(argv[0])) if not _reachable(p)]
    if unreachable:
        raise ConfinementError(
            "the runner is root and has no sandbox (install bubblewrap), and user nobody cannot reach "
            f"{unreachable[0]}: refusing to run the method as root"
        )
    os.chown(workspace, NOBODY, NOBODY)
    os.chown(workspace / SCRATCH_DIR, NOBODY, NOBODY)
    return Confinement(argv, env, user=NOBODY)


def _mode() -> str:
    return os.environ.get(SANDBOX_ENV, "auto").strip().lower() or "auto"


def prepare() -> None:
    """Probe bubblewrap now if jobs started from this process may use it: a fork server's runners inherit the
    answer instead of each paying for the probe."""
    if _mode() in ("auto", "bwrap") and "SLURM_JOB_ID" not in os.environ:
        bubblewrap()


def _bwrap_argv(workspace: Path, inputs: Sequence[Path], method_dir: Path) -> list[str]:
    binary = bubblewrap()
    assert binary is not None
    args = [binary, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    for shared in filter(None, os.environ.get(WRITABLE_ENV, "").split(os.pathsep)):
        if Path(shared).is_dir():
            args += ["--bind", shared, shared]
    home = workspace.parents[2] if len(workspace.parents) > 2 else None
    if home is not None and (home / "store.sqlite").exists():
        args += ["--tmpfs", str(home)]  # the store, the other workspaces and method copies: out of sight
    args += ["--bind", str(workspace), str(workspace)]
    for stored in inputs:
        args += ["--ro-bind", str(stored), str(stored)]
    args += ["--ro-bind", str(method_dir), str(method_dir)]
    return [*args, *_BWRAP_ISOLATION, "--chdir", str(workspace), "--"]


def _bwrap_isolation() -> list[str]:
    base = ["--unshare-all", "--share-net", "--die-with-parent", "--cap-drop", "ALL"]
    if os.geteuid() == 0:
        base += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY)]
    return base


_BWRAP_ISOLATION = _bwrap_isolation()


@functools.cache
def bubblewrap() -> str | None:
    """The ``bwrap`` binary when it can build the sandbox on this machine (user namespaces may be off in a
    container), else None; tried once per process."""
    binary = shutil.which("bwrap")
    if binary is None:
        return None
    probe = [binary, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", *_BWRAP_ISOLATION, "--", "true"]
    try:
        done = subprocess.run(probe, stdin=subprocess.DEVNULL, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return binary if done.returncode == 0 else None


def _reachable(path: Path) -> bool:
    """Whether any user (``nobody``) can use ``path``: every directory above it searchable by others, and
    itself readable (and searchable, for a directory)."""
    resolved = path.resolve()
    mode = resolved.stat().st_mode
    own = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & own == own and all(parent.stat().st_mode & stat.S_IXOTH for parent in resolved.parents)
