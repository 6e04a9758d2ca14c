"""Building an engine: a home directory, its store, and the scheduler that new jobs go to.

The one place that knows every scheduler by name, and each one's options as a typed, frozen dataclass, so the
layers above (the front, the server, the CLI) build an engine without importing a scheduler module, and an
option that is misspelt or belongs to another scheduler is refused here, by name, instead of surfacing as a
``TypeError`` from a constructor.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

from ..domain.errors import InvalidInputError
from ..domain.home import Home
from ..schedulers.base import Scheduler
from ..schedulers.local import LocalScheduler
from ..schedulers.slurm import (
    DEFAULT_LEASE_S,
    DEFAULT_POLL_INTERVAL_S,
    DEFAULT_RESULT_GRACE_S,
    DEFAULT_THROTTLE,
    SlurmScheduler,
)
from ..store.sqlite import Store
from .engine import Engine

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

OptionsT = TypeVar("OptionsT", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class LocalOptions:
    """The local scheduler's: ``slots`` (jobs at once) and the worker's ``idle_timeout`` (seconds); None reads
    ``$DSHPC_LOCAL_SLOTS`` / ``$DSHPC_WORKER_IDLE_TIMEOUT``, else the defaults."""

    slots: int | None = None
    idle_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    """The Slurm scheduler's (see :class:`~dshpc_jupyter.schedulers.slurm.SlurmScheduler`); those left None
    are read from ``$DSHPC_SLURM_*``, else default."""

    partition: str | None = None
    account: str | None = None
    sbatch_args: Sequence[str] | None = None
    workdir: str | os.PathLike[str] | None = None
    throttle: int | None = DEFAULT_THROTTLE
    pack: int | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL_S
    lease: float = DEFAULT_LEASE_S
    result_grace: float = DEFAULT_RESULT_GRACE_S


SchedulerOptions = LocalOptions | SlurmOptions
SCHEDULER_OPTIONS: dict[str, type[LocalOptions] | type[SlurmOptions]] = {"local": LocalOptions, "slurm": SlurmOptions}
SCHEDULER_NAMES = tuple(SCHEDULER_OPTIONS)


def option_names(kind: type[DataclassInstance]) -> tuple[str, ...]:
    """The options an options dataclass holds, in declaration order."""
    return tuple(field.name for field in fields(kind))


def options_from(
    kind: type[OptionsT], given: Mapping[str, Any], *, backend: str, others: Collection[str] = ()
) -> OptionsT:
    """``kind`` built from keyword options, each checked by name: one of ``others`` (options of another
    backend) is refused as not applying to ``backend``, any other unknown name as unknown."""
    valid = option_names(kind)
    unknown = [name for name in given if name not in valid and name not in others]
    if unknown:
        every = ", ".join(sorted({*valid, *others}))
        raise InvalidInputError(
            f"{', '.join(unknown)}: unknown option{'s' if len(unknown) > 1 else ''} (valid options: {every})"
        )
    misplaced = [name for name in given if name not in valid]
    if misplaced:
        raise InvalidInputError(
            f"{', '.join(misplaced)}: does not apply to {backend} (its options: {', '.join(valid) or 'none'})"
        )
    return kind(**given)


def scheduler_option_names() -> frozenset[str]:
    """The options of every scheduler."""
    return frozenset(name for kind in SCHEDULER_OPTIONS.values() for name in option_names(kind))


def scheduler_options(name: str, given: Mapping[str, Any], *, others: Collection[str] = ()) -> SchedulerOptions:
    """The typed options of the scheduler called ``name`` from keywords (``others``: options of backends that
    are not schedulers, which do not apply here either)."""
    kind = SCHEDULER_OPTIONS.get(name)
    if kind is None:
        raise InvalidInputError(
            f"scheduler: unknown scheduler {name!r} (expected one of: {', '.join(SCHEDULER_NAMES)})"
        )
    others = {*scheduler_option_names(), *others}
    return options_from(kind, given, backend=f"the embedded engine's {name} scheduler", others=others)


def create_scheduler(home: Home, store: Store, options: SchedulerOptions) -> Scheduler:
    """The scheduler that ``options`` configure."""
    if isinstance(options, LocalOptions):
        return LocalScheduler(home, store, slots=options.slots, idle_timeout=options.idle_timeout)
    return SlurmScheduler(
        home, store, partition=options.partition, account=options.account, sbatch_args=options.sbatch_args,
        workdir=options.workdir, throttle=options.throttle, pack=options.pack, poll_interval=options.poll_interval,
        lease=options.lease, result_grace=options.result_grace,
    )  # fmt: skip


def build_engine(home: str | os.PathLike[str] | None = None, options: SchedulerOptions | None = None) -> Engine:
    """An engine over the store in ``home`` whose new jobs go to the scheduler ``options`` configure (the local
    one by default); local jobs are always watched, whichever scheduler new jobs go to."""
    options = options or LocalOptions()
    paths = Home.open(home)
    store = Store(paths.db_path)
    try:
        chosen = create_scheduler(paths, store, options)
    except BaseException:
        store.close()
        raise
    others = [] if isinstance(options, LocalOptions) else [LocalScheduler(paths, store)]
    return Engine(paths, store, chosen, *others)


def open_engine(home: str | os.PathLike[str] | None = None, scheduler: str = "local", **options: Any) -> Engine:
    """:func:`build_engine` with the scheduler chosen by name and its options as keywords (checked by name)."""
    return build_engine(home, scheduler_options(scheduler, options))
