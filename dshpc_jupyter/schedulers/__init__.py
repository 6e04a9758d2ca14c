"""Schedulers: one short module per backend that runs jobs (local process pool, Slurm)."""

from __future__ import annotations

from typing import Any

from ..home import Home
from ..store import Store
from .base import Refusal, Scheduler, Submission

NAMES = ("local", "slurm")


def create_scheduler(name: str, home: Home, store: Store, **options: Any) -> Scheduler:
    """The scheduler called ``name``, configured by ``options`` (e.g. ``slots`` or ``partition``)."""
    if name == "local":
        from .local import LocalScheduler

        return LocalScheduler(home, store, **options)
    if name == "slurm":
        from .slurm import SlurmScheduler

        return SlurmScheduler(home, store, **options)
    raise ValueError(f"scheduler: unknown scheduler {name!r} (expected one of: {', '.join(NAMES)})")


__all__ = ["NAMES", "Refusal", "Scheduler", "Submission", "create_scheduler"]
