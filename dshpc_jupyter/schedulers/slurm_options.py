"""What a user may set on the Slurm scheduler (``SlurmOptions``), and the same options read from
``$DSHPC_SLURM_*``: kept apart from the scheduler so each reads as one concept.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.errors import InvalidInputError

DEFAULT_THROTTLE = 256
DEFAULT_POLL_INTERVAL_S = 1.0
DEFAULT_LEASE_S = 300.0
DEFAULT_RESULT_GRACE_S = 30.0


def positive(name: str, value: object, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{name}: must be a positive integer, got {value!r}")


def from_environment() -> dict[str, Any]:
    """Options from ``$DSHPC_SLURM_PARTITION``, ``_ACCOUNT``, ``_WORKDIR``, ``_PACK`` and ``_SBATCH_ARGS`` (split
    like a shell would): how ``dshpc-jupyter serve --scheduler slurm`` and ``%dshpc_connect`` get them."""
    options: dict[str, Any] = {}
    for option in ("partition", "account", "workdir", "pack", "sbatch_args"):
        value = os.environ.get(f"DSHPC_SLURM_{option.upper()}")
        if value:
            options[option] = value
    if "pack" in options:
        if not options["pack"].isdigit():
            raise InvalidInputError(f"$DSHPC_SLURM_PACK: must be a positive integer, got {options['pack']!r}")
        options["pack"] = int(options["pack"])
    if "sbatch_args" in options:
        options["sbatch_args"] = shlex.split(options["sbatch_args"])
    return options


@dataclass(frozen=True, slots=True)
class SlurmOptions:
    """What a user may set on the Slurm scheduler; those left None are read from ``$DSHPC_SLURM_*``, else
    default. ``pack`` jobs share an array task; ``throttle`` is the array's ``%`` limit; ``lease`` is how long a
    claim protects pending jobs from being taken over; ``result_grace`` how long a result file may lag behind
    Slurm's verdict."""

    partition: str | None = None
    account: str | None = None
    sbatch_args: Sequence[str] | None = None
    workdir: str | os.PathLike[str] | None = None
    throttle: int | None = DEFAULT_THROTTLE
    pack: int | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL_S
    lease: float = DEFAULT_LEASE_S
    result_grace: float = DEFAULT_RESULT_GRACE_S
