"""dshpc_jupyter: run batches of dsHPC jobs from a notebook, deduplicated, on your machine, a server or Slurm.

Names are imported on first use, so ``python -m dshpc_jupyter.schedulers.runner`` on a
compute node loads only the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "connect": "front.connection",
    "connect_async": "front.connection",
    "current": "front.connection",
    "Connection": "front.connection",
    "Backend": "backends.base",
    "DshpcError": "domain.errors",
    "JobConfig": "domain.models",
    "Batch": "front.batch",
    "BatchStats": "front.batch",
    "batches": "front.batch",
    "BatchView": "jupyter.display",
    "JobForm": "jupyter.form",
    "load_ipython_extension": "jupyter.magics",
}

if TYPE_CHECKING:
    from .backends.base import Backend
    from .domain.errors import DshpcError
    from .domain.models import JobConfig
    from .front.batch import Batch, BatchStats, batches
    from .front.connection import Connection, connect, connect_async, current
    from .jupyter.display import BatchView
    from .jupyter.form import JobForm
    from .jupyter.magics import load_ipython_extension


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dshpc_jupyter' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "Backend",
    "Batch",
    "BatchStats",
    "BatchView",
    "Connection",
    "DshpcError",
    "JobConfig",
    "JobForm",
    "__version__",
    "batches",
    "connect",
    "connect_async",
    "current",
    "load_ipython_extension",
]
