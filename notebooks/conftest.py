"""nbval runs the notebooks here in real kernels. Each notebook makes its own home under a fresh temporary
folder, inside this session's own folder (the kernels inherit ``TMPDIR``); when the session ends, the servers
those notebooks started (they leave a ``server.pid``) and the local workers of their homes are stopped and the
folder removed, so no process outlives the session even when a notebook failed halfway, and no other session's
files are touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

SESSION_TMP = Path(tempfile.mkdtemp(prefix="dshpc-notebooks-"))
os.environ["TMPDIR"] = str(SESSION_TMP)  # the kernels inherit it: their temporary homes land in this folder
os.environ.setdefault("DSHPC_WORKER_IDLE_TIMEOUT", "10")  # the kernels inherit it, and so do their workers
LOCAL_SLURM = Path(__file__).resolve().parents[1] / "scripts" / "local-slurm.sh"
SLURM_NOTEBOOKS = {"05-slurm.ipynb"}
SLURM_BINARIES = ("sbatch", "squeue", "sinfo", "slurmctld", "slurmd")
_SLURM_WAS_UP = pytest.StashKey[bool]()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The Slurm notebook runs where Slurm is: a cluster answers, or it can start the project's local one
    (Slurm's packages installed, and root)."""
    if collection_path.name not in SLURM_NOTEBOOKS:
        return None
    if not all(shutil.which(b) for b in SLURM_BINARIES):
        return True
    if os.geteuid() != 0 and subprocess.run(["sinfo"], capture_output=True).returncode != 0:
        return True
    return None


def _local_slurm_up() -> bool:
    """True when the project's local Slurm runs (False where this file was copied without the scripts)."""
    if not LOCAL_SLURM.exists():
        return False
    return subprocess.run([str(LOCAL_SLURM), "status"], capture_output=True).returncode == 0


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build matplotlib's font cache before any kernel starts: on a fresh machine the first import prints a
    "building the font cache" warning into the first plotting cell, which nbval would report as a difference.
    Note whether the local Slurm is up, so a cluster the Slurm notebook starts is stopped at the end."""
    with contextlib.suppress(ImportError):
        import matplotlib.font_manager  # noqa: F401
    session.config.stash[_SLURM_WAS_UP] = shutil.which("slurmctld") is not None and _local_slurm_up()


def _is_our_server(pid: int) -> bool:
    try:
        return b"dshpc_jupyter" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _stop_server(pid_file: Path) -> None:
    """SIGTERM (the server stops gracefully), then SIGKILL after 15 s; only a dshpc_jupyter process."""
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    for sig, patience in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if not _is_our_server(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + patience
        while _is_our_server(pid) and time.monotonic() < deadline:
            time.sleep(0.1)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not session.config.stash.get(_SLURM_WAS_UP, True) and _local_slurm_up():
        subprocess.run([str(LOCAL_SLURM), "stop"], capture_output=True)  # the Slurm notebook started it
    from dshpc_jupyter.domain.home import Home
    from dshpc_jupyter.schedulers.local import stop_worker

    for pid_file in SESSION_TMP.glob("**/server.pid"):
        _stop_server(pid_file)
    for home in {p.parent.parent for p in SESSION_TMP.glob("**/run/worker.lock")}:
        stop_worker(Home.open(home))
    shutil.rmtree(SESSION_TMP, ignore_errors=True)
