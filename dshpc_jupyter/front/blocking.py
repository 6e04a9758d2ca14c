"""The blocking :class:`Connection`: the ``Backend`` operations as plain calls, like httpx's ``Client`` beside
its ``AsyncClient``. Each method is the sync twin of the :class:`~dshpc_jupyter.backends.base.Backend`
operation of the same name and signature (``tests/test_backend_conformance.py`` pins that), run on a private
event loop in a daemon thread (:mod:`.loop`).
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..backends.base import Backend, ConfigLike
from ..backends.logs import FOLLOW_POLL_S
from ..domain.hashing import sha256_file
from ..domain.models import (
    CHANGES_LIMIT,
    BatchDetail,
    BatchSummary,
    CancelResponse,
    FileDetails,
    FileInfo,
    ForgetResponse,
    HashCheckResponse,
    JobChanges,
    JobRecord,
    JobSimulationResponse,
    LogChunk,
    MethodInfo,
    MultiJobSimulationResponse,
    Page,
    ServiceStatus,
    StagedUpload,
)
from ..domain.pages import (
    DEFAULT_BATCHES_PAGE,
    DEFAULT_FILES_PAGE,
    DEFAULT_JOBS_PAGE,
    DEFAULT_METHODS_PAGE,
    DEFAULT_RESULTS_PAGE,
)
from ..domain.pipeline_models import PipelineDetail
from ..domain.retries import SubmitOptions
from ..domain.team import WhoAmI
from .loop import LoopThread

T = TypeVar("T")


class Connection:
    """A blocking handle on a dsHPC service (embedded or remote): what notebooks and scripts hold."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._loop = LoopThread()
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

    def services_status(self) -> ServiceStatus:
        return self.run(self.backend.services_status)

    def whoami(self) -> WhoAmI:
        return self.run(self.backend.whoami)

    # --- methods -----------------------------------------------------------------------------------------

    def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        return self.run(self.backend.register_method, path)

    def list_methods(self, latest_only: bool = True) -> list[MethodInfo]:
        return self.run(self.backend.list_methods, latest_only)

    def method_versions(self, name: str) -> list[MethodInfo]:
        return self.run(self.backend.method_versions, name)

    # --- files -------------------------------------------------------------------------------------------

    def upload_file(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_hash: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        exist_ok: bool = True,
    ) -> FileInfo:
        return self.run(
            self.backend.upload_file, source, file_hash=file_hash, filename=filename, content_type=content_type,
            metadata=metadata, exist_ok=exist_ok,
        )  # fmt: skip

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

    def get_file(self, file_hash: str) -> FileInfo:
        return self.run(self.backend.get_file, file_hash)

    def read_range(self, file_hash: str, offset: int, length: int) -> bytes:
        return self.run(self.backend.read_range, file_hash, offset, length)

    def read_bytes(self, file_hash: str) -> bytes:
        """A stored file's bytes (an output file a job wrote, say), checked against its hash."""
        return self.run(self.backend.read_bytes, file_hash)

    def download(self, file_hash: str, dest: str | os.PathLike[str]) -> Path:
        """Write a stored file to ``dest`` (a file, or a folder to put it in under its name); the path."""
        return self.run(self.backend.download, file_hash, dest)

    def staged_size(self, file_hash: str) -> int:
        return self.run(self.backend.staged_size, file_hash)

    def append_staged(
        self, file_hash: str, offset: int, data: bytes, total_size: int, details: FileDetails | None = None
    ) -> StagedUpload:
        return self.run(self.backend.append_staged, file_hash, offset, data, total_size, details)

    # --- jobs --------------------------------------------------------------------------------------------

    def simulate_job(self, config: ConfigLike) -> JobSimulationResponse:
        return self.run(self.backend.simulate_job, config)

    def simulate_jobs(
        self,
        configs: Sequence[ConfigLike],
        *,
        dry_run: bool = False,
        append_to: str | None = None,
        options: SubmitOptions | None = None,
        priority: int = 0,
        name: str | None = None,
    ) -> MultiJobSimulationResponse:
        return self.run(
            self.backend.simulate_jobs, configs, dry_run=dry_run, append_to=append_to, options=options,
            priority=priority, name=name,
        )  # fmt: skip

    def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]:
        return self.run(self.backend.job_statuses, job_ids)

    def job_changes(self, since: int | None = None, limit: int = CHANGES_LIMIT) -> JobChanges:
        return self.run(self.backend.job_changes, since, limit)

    def get_job(self, job_id: str) -> JobRecord:
        return self.run(self.backend.get_job, job_id)

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        return self.run(self.backend.list_jobs, status, limit)

    def cancel(self, job_ids: Sequence[str]) -> CancelResponse:
        return self.run(self.backend.cancel, job_ids)

    def forget(self, job_ids: Sequence[str]) -> ForgetResponse:
        return self.run(self.backend.forget, job_ids)

    def read_log(self, job_id: str, stream: str = "stdout", offset: int = 0) -> LogChunk:
        return self.run(self.backend.read_log, job_id, stream, offset)

    def logs(
        self, job_id: str, *, stream: str = "stdout", follow: bool = True, poll: float = FOLLOW_POLL_S
    ) -> Iterator[str]:
        """A job's ``stream`` as text pieces, as they come: ``"".join(connection.logs(job_id))`` waits for the
        job's end and gives its whole stdout; ``follow=False`` gives what is there now."""
        pieces = self.backend.logs(job_id, stream=stream, follow=follow, poll=poll)
        try:
            while (piece := self.run(_next_piece, pieces)) is not None:
                yield piece
        finally:
            self.run(pieces.aclose)

    # --- batches -----------------------------------------------------------------------------------------

    def batches(self, limit: int = 100, *, name: str | None = None) -> list[BatchSummary]:
        return self.run(self.backend.batches, limit, name=name)

    def batch(self, batch_id: str) -> BatchDetail:
        return self.run(self.backend.batch, batch_id)

    def cancel_batch(self, batch_id: str) -> CancelResponse:
        return self.run(self.backend.cancel_batch, batch_id)

    # --- pipelines ---------------------------------------------------------------------------------------

    def submit_pipeline(self, steps: Mapping[str, Any]) -> PipelineDetail:
        return self.run(self.backend.submit_pipeline, steps)

    def pipeline(self, pipeline_id: str) -> PipelineDetail:
        return self.run(self.backend.pipeline, pipeline_id)

    def cancel_pipeline(self, pipeline_id: str) -> PipelineDetail:
        return self.run(self.backend.cancel_pipeline, pipeline_id)

    # --- pages ---------------------------------------------------------------------------------------------

    def jobs_page(
        self, status: str | None = None, limit: int = DEFAULT_JOBS_PAGE, cursor: str | None = None
    ) -> Page[JobRecord]:
        return self.run(self.backend.jobs_page, status, limit, cursor)

    def files_page(self, limit: int = DEFAULT_FILES_PAGE, cursor: str | None = None) -> Page[FileInfo]:
        return self.run(self.backend.files_page, limit, cursor)

    def methods_page(
        self, latest_only: bool = True, limit: int = DEFAULT_METHODS_PAGE, cursor: str | None = None
    ) -> Page[MethodInfo]:
        return self.run(self.backend.methods_page, latest_only, limit, cursor)

    def batches_page(self, limit: int = DEFAULT_BATCHES_PAGE, cursor: str | None = None) -> Page[BatchSummary]:
        return self.run(self.backend.batches_page, limit, cursor)

    def batch_page(self, batch_id: str, limit: int = DEFAULT_RESULTS_PAGE, cursor: str | None = None) -> BatchDetail:
        return self.run(self.backend.batch_page, batch_id, limit, cursor)

    def close(self) -> None:
        """The twin of ``aclose``: close the backend and stop the loop (and the pollers on it); closing again
        does nothing."""
        if self._closed:
            return
        self._closed = True
        self.run(self.backend.aclose)
        self._loop.stop()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _next_piece(pieces: AsyncGenerator[str, None]) -> str | None:
    """The next piece of a log, None at its end (StopAsyncIteration does not cross the loop's thread)."""
    return await anext(pieces, None)
