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
import tempfile
import time
from pathlib import Path

import pytest

SESSION_TMP = Path(tempfile.mkdtemp(prefix="dshpc-notebooks-"))
os.environ["TMPDIR"] = str(SESSION_TMP)  # the kernels inherit it: their temporary homes land in this folder
os.environ.setdefault("DSHPC_WORKER_IDLE_TIMEOUT", "10")  # the kernels inherit it, and so do their workers


def pytest_sessionstart(session: pytest.Session) -> None:
    """Build matplotlib's font cache before any kernel starts: on a fresh machine the first import prints a
    "building the font cache" warning into the first plotting cell, which nbval would report as a difference."""
    with contextlib.suppress(ImportError):
        import matplotlib.font_manager  # noqa: F401


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
    from dshpc_jupyter.home import Home
    from dshpc_jupyter.schedulers.local import stop_worker

    for pid_file in SESSION_TMP.glob("**/server.pid"):
        _stop_server(pid_file)
    for home in {p.parent.parent for p in SESSION_TMP.glob("**/run/worker.lock")}:
        stop_worker(Home.open(home))
    shutil.rmtree(SESSION_TMP, ignore_errors=True)
