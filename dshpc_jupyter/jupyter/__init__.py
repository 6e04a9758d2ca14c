"""The Jupyter front end: magics (``%load_ext dshpc_jupyter``), the live display of a Batch and the job form."""

from __future__ import annotations

from .display import BatchView, show
from .form import JobForm
from .magics import DshpcMagics, load_ipython_extension

__all__ = ["BatchView", "DshpcMagics", "JobForm", "load_ipython_extension", "show"]
