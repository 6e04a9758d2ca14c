"""Building an engine: a home directory, its store, and the scheduler that new jobs go to.

The one place that knows every scheduler by name, with its options type (a frozen dataclass declared beside
each scheduler, which is all a scheduler takes besides the home and the ledger). The layers above (the front,
the server, the CLI) build an engine without importing a scheduler module, and an option that is misspelt or
belongs to another scheduler is refused here, by name, instead of surfacing as a ``TypeError`` further down.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from ..domain.errors import InvalidInputError
from ..domain.home import Home
from ..schedulers.base import Scheduler
from ..schedulers.local import LocalOptions, LocalScheduler
from ..schedulers.slurm import SlurmOptions, SlurmScheduler
from ..store.sqlite import Store
from .engine import Engine

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

OptionsT = TypeVar("OptionsT", bound="DataclassInstance")


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
    """The scheduler that ``options`` configure (each scheduler takes its own options type)."""
    if isinstance(options, LocalOptions):
        return LocalScheduler(home, store, options)
    return SlurmScheduler(home, store, options)


def build_engine(home: str | os.PathLike[str] | None = None, options: SchedulerOptions | None = None) -> Engine:
    """An engine over the store in ``home`` whose new jobs go to the scheduler ``options`` configure (the local
    one by default); local jobs are always watched, whichever scheduler new jobs go to. Jobs left in progress
    by a crash are picked up as the engine opens (:func:`resume`)."""
    options = options or LocalOptions()
    paths = Home.open(home)
    store = Store(paths.db_path)
    try:
        chosen = create_scheduler(paths, store, options)
    except BaseException:
        store.close()
        raise
    others = [] if isinstance(options, LocalOptions) else [LocalScheduler(paths, store)]
    engine = Engine(paths, store, chosen, *others)
    try:
        resume(engine)
    except BaseException:
        engine.close()
        raise
    return engine


def resume(engine: Engine) -> None:
    """Pick up at once the jobs a crash left in progress: each scheduler polls its active jobs (the local one
    starts a worker for them), instead of waiting for a client to ask about one of them."""
    engine.poll_in_progress()


def open_engine(home: str | os.PathLike[str] | None = None, scheduler: str = "local", **options: Any) -> Engine:
    """:func:`build_engine` with the scheduler chosen by name and its options as keywords (checked by name)."""
    return build_engine(home, scheduler_options(scheduler, options))
