"""nbval runs the notebooks here in real kernels. Each notebook makes its own home under a fresh temporary
folder; the local workers those homes started are stopped when the session ends, so no process outlives it."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

STARTED = time.time()
os.environ.setdefault("DSHPC_WORKER_IDLE_TIMEOUT", "10")  # the kernels inherit it, and so do their workers


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from dshpc_jupyter.home import Home
    from dshpc_jupyter.schedulers.local import stop_worker

    for folder in Path(tempfile.gettempdir()).glob("dshpc-*-*"):
        if folder.is_dir() and folder.stat().st_mtime >= STARTED:
            for home in {p.parent.parent for p in folder.glob("**/run/worker.lock")}:
                stop_worker(Home.open(home))
            shutil.rmtree(folder, ignore_errors=True)
