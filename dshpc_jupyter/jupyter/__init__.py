"""The Jupyter front end: magics (``%load_ext dshpc_jupyter``) and the live display of a Batch."""

from __future__ import annotations

from .display import BatchView, show
from .magics import DshpcMagics, load_ipython_extension

__all__ = ["BatchView", "DshpcMagics", "load_ipython_extension", "show"]
