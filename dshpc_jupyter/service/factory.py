"""Building an engine: a home directory, its store, and the scheduler that new jobs go to.

The one place that knows every scheduler by name, so the layers above (the front, the server, the CLI) build an
engine without importing a scheduler module themselves.
"""

from __future__ import annotations

import os
from typing import Any

from ..domain.home import Home
from ..schedulers.base import Scheduler
from ..schedulers.local import LocalScheduler
from ..store.sqlite import Store
from .engine import Engine

SCHEDULER_NAMES = ("local", "slurm")


def create_scheduler(name: str, home: Home, store: Store, **options: Any) -> Scheduler:
    """The scheduler called ``name``, configured by ``options`` (e.g. ``slots`` or ``partition``)."""
    if name == "local":
        return LocalScheduler(home, store, **options)
    if name == "slurm":
        from ..schedulers.slurm import SlurmScheduler

        return SlurmScheduler(home, store, **options)
    raise ValueError(f"scheduler: unknown scheduler {name!r} (expected one of: {', '.join(SCHEDULER_NAMES)})")


def open_engine(home: str | os.PathLike[str] | None = None, scheduler: str = "local", **options: Any) -> Engine:
    """An engine over the store in ``home``; local jobs are always watched, whichever scheduler new jobs
    go to."""
    paths = Home.open(home)
    store = Store(paths.db_path)
    chosen = create_scheduler(scheduler, paths, store, **options)
    others = [] if scheduler == "local" else [LocalScheduler(paths, store)]
    return Engine(paths, store, chosen, *others)
