"""Connecting: ``connect()`` gives a blocking :class:`Connection`, ``connect_async()`` the async ``Backend``.

Like httpx's ``Client``/``AsyncClient`` pair. A ``Connection`` runs its backend on a private event loop in
a daemon thread, so it works the same in a script, in a notebook whose loop is already running, and from
the background threads that keep a live display up to date while a cell blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Coroutine, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..backends.base import Backend, ConfigLike
from ..backends.embedded import EmbeddedBackend
from ..domain.hashing import sha256_file
from ..domain.models import (
    BatchDetail,
    BatchSummary,
    CancelResponse,
    FileInfo,
    HashCheckResponse,
    JobRecord,
    JobSimulationResponse,
    MethodInfo,
    MultiJobSimulationResponse,
)
from ..service.factory import open_engine

T = TypeVar("T")
URL_ENV = "DSHPC_URL"
API_KEY_ENV = "DSHPC_API_KEY"


def connect_async(
    url: str | None = None,
    *,
    api_key: str | None = None,
    home: str | os.PathLike[str] | None = None,
    scheduler: str = "local",
    **options: Any,
) -> Backend:
    """The async ``Backend``: a remote service at ``url`` (or ``$DSHPC_URL``), else the embedded engine
    with its store under ``home`` (or ``$DSHPC_HOME``) and jobs on ``scheduler`` ("local" or "slurm").

    ``options`` go to the backend chosen: the HTTP client's (``timeout``, ``retries``, ``max_configs``) or the
    scheduler's (``slots``; ``partition``, ``account``, ``sbatch_args``, ``workdir``, ``pack``, ...)."""
    url = url or os.environ.get(URL_ENV)
    if url:
        from ..backends.http import HttpBackend

        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        return HttpBackend(url, api_key=key, **options)
    return EmbeddedBackend(open_engine(home, scheduler, **options))


class _LoopThread:
    """An event loop running forever in a daemon thread (so it never holds up interpreter exit)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="dshpc-loop", daemon=True)
        self.thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise RuntimeError("a blocking dshpc call was made on the connection's own loop: await the backend")
        return self.submit(coroutine).result()

    def stop(self) -> None:
        """Cancel what still runs on the loop (pollers of open Batches), then end the thread."""
        self.submit(_cancel_other_tasks()).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


async def _cancel_other_tasks() -> None:
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)


class Connection:
    """A blocking handle on a dsHPC service (embedded or remote): what notebooks and scripts hold."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._loop = _LoopThread()
        self._closed = False

    @property
    def location(self) -> str:
        return self.backend.location

    def __repr__(self) -> str:
        return f"<dshpc_jupyter.Connection to {self.location}>"

    def run(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Run one backend coroutine function on the connection's loop and wait for its result."""
        return self._loop.run(function(*args, **kwargs))

    def start(
        self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Start a coroutine on the connection's loop without waiting (e.g. a poller)."""
        return self._loop.submit(function(*args, **kwargs))

    def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        return self.run(self.backend.register_method, path)

    def list_methods(self, latest_only: bool = True) -> list[MethodInfo]:
        return self.run(self.backend.list_methods, latest_only)

    def method_versions(self, name: str) -> list[MethodInfo]:
        return self.run(self.backend.method_versions, name)

    def upload_file(self, source: bytes | str | os.PathLike[str], **options: Any) -> FileInfo:
        return self.run(self.backend.upload_file, source, **options)

    def upload_files(self, paths: Iterable[str | os.PathLike[str]]) -> list[str]:
        """Hash local files and upload only those the service does not have; their hashes, in order."""
        local = [Path(p).expanduser() for p in paths]
        hashes = [sha256_file(p) for p in local]
        missing = set(self.check_hashes(hashes).missing_hashes)
        for path, digest in zip(local, hashes, strict=True):
            if digest in missing:
                self.upload_file(path, file_hash=digest)
                missing.discard(digest)
        return hashes

    def check_hashes(self, hashes: Sequence[str]) -> HashCheckResponse:
        return self.run(self.backend.check_hashes, hashes)

    def list_files(self) -> list[FileInfo]:
        return self.run(self.backend.list_files)

    def simulate_job(self, config: ConfigLike) -> JobSimulationResponse:
        return self.run(self.backend.simulate_job, config)

    def simulate_jobs(self, configs: Sequence[ConfigLike], *, dry_run: bool = False) -> MultiJobSimulationResponse:
        return self.run(self.backend.simulate_jobs, configs, dry_run=dry_run)

    def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]:
        return self.run(self.backend.job_statuses, job_ids)

    def get_job(self, job_id: str) -> JobRecord:
        return self.run(self.backend.get_job, job_id)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        return self.run(self.backend.list_jobs, status, limit)

    def cancel(self, job_ids: Sequence[str]) -> CancelResponse:
        return self.run(self.backend.cancel, job_ids)

    def batches(self, limit: int = 100) -> list[BatchSummary]:
        return self.run(self.backend.batches, limit)

    def batch(self, batch_id: str) -> BatchDetail:
        return self.run(self.backend.batch, batch_id)

    def cancel_batch(self, batch_id: str) -> CancelResponse:
        return self.run(self.backend.cancel_batch, batch_id)

    def close(self) -> None:
        """Close the backend and stop the loop (and the pollers on it); closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self.run(self.backend.aclose)
        self._loop.stop()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_current: Connection | None = None
_current_lock = threading.Lock()


def connect(
    url: str | None = None,
    *,
    api_key: str | None = None,
    home: str | os.PathLike[str] | None = None,
    scheduler: str = "local",
    **options: Any,
) -> Connection:
    """Connect to a dsHPC service and make it the current one (what ``dshpc_jupyter.batches()`` and the
    magics use). Without ``url`` (or ``$DSHPC_URL``): the embedded engine, no server needed."""
    global _current
    connection = Connection(connect_async(url, api_key=api_key, home=home, scheduler=scheduler, **options))
    with _current_lock:
        _current = connection
    return connection


def current() -> Connection:
    """The current connection, connecting to the embedded default the first time."""
    with _current_lock:
        existing = _current
    return existing if existing is not None else connect()
