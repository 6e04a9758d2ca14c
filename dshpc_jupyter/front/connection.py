"""Connecting: ``connect()`` gives a blocking :class:`~.blocking.Connection` and makes it the process's current
one (what ``dshpc_jupyter.batches()``, the magics and the CLI use); ``connect_async()`` (:mod:`.backend_choice`)
gives the async ``Backend`` itself, like httpx's ``Client``/``AsyncClient`` pair.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .backend_choice import connect_async
from .blocking import Connection

__all__ = ["Connection", "connect", "connect_async", "current"]

_current: Connection | None = None
_current_lock = threading.Lock()


def connect(
    url: str | None = None,
    *,
    api_key: str | None = None,
    token: str | None = None,
    home: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    **options: Any,
) -> Connection:
    """Connect to a dsHPC service and make it the current one. Without ``url`` (or ``$DSHPC_URL``): the
    embedded engine, no server needed. ``options`` are checked as :func:`connect_async` says."""
    global _current
    connection = Connection(connect_async(url, api_key=api_key, token=token, home=home, scheduler=scheduler, **options))
    with _current_lock:
        _current = connection
    return connection


def current() -> Connection:
    """The current connection, connecting to the embedded default the first time."""
    with _current_lock:
        existing = _current
    return existing if existing is not None else connect()
