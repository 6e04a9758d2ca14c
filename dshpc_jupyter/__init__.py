"""dshpc_jupyter: run batches of dsHPC jobs from a notebook, deduplicated, on your machine, a server or Slurm.

Names are imported on first use, so ``python -m dshpc_jupyter.schedulers.runner`` on a
compute node loads only the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: The public names and the module each lives in: the one list (``__all__`` is derived from it).
_EXPORTS = {
    "connect": "front.connection",
    "connect_async": "front.connection",
    "current": "front.connection",
    "Connection": "front.connection",
    "Backend": "backends.base",
    "JobConfig": "domain.models",
    "Batch": "front.batch",
    "BatchStats": "front.batch",
    "batches": "front.batch",
    "BatchView": "jupyter.display",
    "JobForm": "jupyter.form",
    "load_ipython_extension": "jupyter.magics",
    # the errors a user catches, all of them DshpcError
    "DshpcError": "domain.errors",
    "InvalidInputError": "domain.errors",
    "NotFoundError": "domain.errors",
    "ConflictError": "domain.errors",
    "AuthenticationError": "domain.errors",
    "LimitExceededError": "domain.errors",
    "SchedulerError": "domain.errors",
    "BackendError": "domain.errors",
    "MethodSpecError": "domain.errors",
    "StoreVersionError": "domain.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # the same names for the type checker, which cannot follow __getattr__ (tests/test_public_api.py)
    from .backends.base import Backend as Backend
    from .domain.errors import AuthenticationError as AuthenticationError
    from .domain.errors import BackendError as BackendError
    from .domain.errors import ConflictError as ConflictError
    from .domain.errors import DshpcError as DshpcError
    from .domain.errors import InvalidInputError as InvalidInputError
    from .domain.errors import LimitExceededError as LimitExceededError
    from .domain.errors import MethodSpecError as MethodSpecError
    from .domain.errors import NotFoundError as NotFoundError
    from .domain.errors import SchedulerError as SchedulerError
    from .domain.errors import StoreVersionError as StoreVersionError
    from .domain.models import JobConfig as JobConfig
    from .front.batch import Batch as Batch
    from .front.batch import BatchStats as BatchStats
    from .front.batch import batches as batches
    from .front.connection import Connection as Connection
    from .front.connection import connect as connect
    from .front.connection import connect_async as connect_async
    from .front.connection import current as current
    from .jupyter.display import BatchView as BatchView
    from .jupyter.form import JobForm as JobForm
    from .jupyter.magics import load_ipython_extension as load_ipython_extension


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dshpc_jupyter' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
