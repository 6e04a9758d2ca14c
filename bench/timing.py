"""What the benchmarks share: timing a case, and a scheduler that runs nothing.

The scripts run as ``python bench/NAME.py``, so this folder is on ``sys.path`` and they import it as ``timing``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from dshpc_jupyter.domain.models import JobRecord
from dshpc_jupyter.schedulers.base import Refusal, Submission
from dshpc_jupyter.store.sqlite import JobUpdate

#: The clocks a benchmark may read: wall time, or this process's CPU time (on a machine shared with other work
#: the wall time measures the others' load as much as this code).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def best_of(
    repeat: int,
    run: Callable[[], object],
    setup: Callable[[], object] = lambda: None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, float]:
    """(best, median) seconds of ``repeat`` runs of ``run``, each after an untimed ``setup``."""
    times = []
    for _ in range(repeat):
        setup()
        start = clock()
        run()
        times.append(clock() - start)
    return min(times), statistics.median(times)


class QueueOnly:
    """A scheduler that accepts every job and runs none: the benchmark measures the engine alone."""

    name = "local"
    #: As the local scheduler it stands in for: nothing to ask it about each job when polling by change.
    records_results = True

    def submit(self, submissions: Sequence[Submission]) -> list[Refusal]:
        return []

    def poll(self, jobs: Sequence[JobRecord]) -> list[JobUpdate]:
        return []

    def cancel(self, jobs: Sequence[JobRecord]) -> None:
        pass

    def close(self) -> None:
        pass


def tmpfs_dir() -> Path | None:
    """``/dev/shm`` when it is a tmpfs this process may write, else None (the system's temp dir): where the tiny
    jobs' benchmarks make their files, so that they time the scheduler, not what the disk deleted lately."""
    shm = Path("/dev/shm")
    return shm if file_system(shm) == "tmpfs" and os.access(shm, os.W_OK) else None


def file_system(path: Path) -> str:
    """The type of the file system ``path`` is on, from ``/proc/mounts`` (the longest mount point above it)."""
    best, kind, resolved = "", "unknown", str(path.resolve())
    for line in Path("/proc/mounts").read_text(encoding="utf-8").splitlines():
        _, point, fs_type, *_ = line.split()
        if (resolved == point or resolved.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best, kind = point, fs_type
    return kind
