"""The embedded backend: the :class:`.engine.Engine` behind the async ``Backend`` interface.

The engine's work is SQLite and process management, which block; every call runs in a worker thread, at most
``concurrency`` at once, so an event loop (a notebook's, or the HTTP server's) is never blocked by it. Reads and
writes have a capacity each: writes waiting for a store locked by another process never hold up a read.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

from .. import __version__
from ..domain.errors import DshpcError
from ..domain.hashing import sha256_bytes
from ..domain.models import (
    CHANGES_LIMIT,
    BatchDetail,
    BatchSummary,
    CancelResponse,
    ComponentStatus,
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
    ServiceLimits,
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
from ..service import pages
from ..service.engine import Engine
from ..service.logs import read_log
from ..service.transfers import copy_out, read_range
from .base import ConfigLike
from .logs import FOLLOW_POLL_S, follow_log

T = TypeVar("T")
DEFAULT_CONCURRENCY = 8
#: In-process nothing limits a call: the largest size there is (a server publishes its own limits instead).
#: Below this much free space on the home's disk, ``services_status`` reports the store degraded.
MIN_FREE_BYTES = 1 << 20
NO_LIMITS = ServiceLimits(max_configs=sys.maxsize, max_body_bytes=sys.maxsize)


class EmbeddedBackend:
    """A dsHPC service in this process: store under a home directory, jobs on the engine's scheduler."""

    def __init__(self, engine: Engine, *, concurrency: int = DEFAULT_CONCURRENCY) -> None:
        self.engine = engine
        self.location = str(engine.home.root)
        self._limiters: dict[bool, CapacityLimiter] = {}
        self._concurrency = concurrency

    async def _run(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function`` in a read thread."""
        return await self._in_thread(False, function, *args, **kwargs)

    async def _write(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``function`` in a write thread (it may wait for the store's write lock)."""
        return await self._in_thread(True, function, *args, **kwargs)

    async def _in_thread(self, write: bool, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        limiter = self._limiters.get(write)
        if limiter is None:
            limiter = self._limiters[write] = CapacityLimiter(self._concurrency)
        return await anyio.to_thread.run_sync(functools.partial(function, *args, **kwargs), limiter=limiter)

    async def services_status(self) -> ServiceStatus:
        """The engine's schedulers and whether its store answers (a failing store is reported, not raised)."""
        try:
            problem = await self._run(self.engine.store.integrity_problem)
            store = ComponentStatus(status="up" if problem is None else "down", error=problem and problem[:300])
        except Exception as exc:
            store = ComponentStatus(status="down", error=f"{type(exc).__name__}: {exc}"[:300])
        disk = os.statvfs(self.engine.home.root)
        free = disk.f_bavail * disk.f_frsize
        files = store
        if free < MIN_FREE_BYTES:  # a full disk fails every write: say so, and say which disk
            files = ComponentStatus(status="down", error=f"no space left on the disk holding {self.location} "
                                    f"({free} bytes free): uploads and new jobs wait")  # fmt: skip
        return ServiceStatus(
            status="ok" if store.status == files.status == "up" else "degraded",
            version=__version__,
            scheduler=self.engine.scheduler.name,
            schedulers=sorted(self.engine.schedulers),
            store=self.location,
            auth_required=False,
            limits=NO_LIMITS,
            jobs_db=store,
            files_db=files,
        )

    async def whoami(self) -> WhoAmI:
        return WhoAmI(name=None, role="admin")

    async def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        return await self._write(self.engine.register_method, path)

    async def list_methods(self, latest_only: bool = True) -> list[MethodInfo]:
        return await self._run(self.engine.list_methods, latest_only)

    async def method_versions(self, name: str) -> list[MethodInfo]:
        return await self._run(self.engine.method_versions, name)

    async def upload_file(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_hash: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        exist_ok: bool = True,
    ) -> FileInfo:
        return await self._write(
            self.engine.upload_file, source, file_hash=file_hash, filename=filename, content_type=content_type,
            metadata=metadata, exist_ok=exist_ok,
        )  # fmt: skip

    async def check_hashes(self, hashes: Sequence[str]) -> HashCheckResponse:
        return await self._run(self.engine.check_hashes, hashes)

    async def list_files(self) -> list[FileInfo]:
        return await self._run(self.engine.list_files)

    async def get_file(self, file_hash: str) -> FileInfo:
        return await self._run(self.engine.get_file, file_hash)

    async def read_range(self, file_hash: str, offset: int, length: int) -> bytes:
        return await self._run(read_range, self.engine.home, self.engine.store, file_hash, offset, length)

    async def read_bytes(self, file_hash: str) -> bytes:
        info = await self.get_file(file_hash)
        data = await self.read_range(file_hash, 0, info.file_size)
        if sha256_bytes(data) != info.file_hash:
            raise DshpcError(f"File '{file_hash}': the stored bytes no longer match their hash")
        return data

    async def download(self, file_hash: str, dest: str | os.PathLike[str]) -> Path:
        return await self._run(copy_out, self.engine.home, self.engine.store, file_hash, dest)

    async def staged_size(self, file_hash: str) -> int:
        return await self._run(self.engine.streams.staged_size, file_hash)

    async def append_staged(
        self, file_hash: str, offset: int, data: bytes, total_size: int, details: FileDetails | None = None
    ) -> StagedUpload:
        return await self._run(self.engine.streams.append, file_hash, offset, data, total_size, details)

    async def simulate_job(self, config: ConfigLike) -> JobSimulationResponse:
        return await self._write(self.engine.simulate_job, config)

    async def simulate_jobs(
        self,
        configs: Sequence[ConfigLike],
        *,
        dry_run: bool = False,
        append_to: str | None = None,
        options: SubmitOptions | None = None,
        priority: int = 0,
        name: str | None = None,
    ) -> MultiJobSimulationResponse:
        run = self._run if dry_run else self._write
        return await run(
            self.engine.simulate_jobs, configs, dry_run=dry_run, append_to=append_to, options=options,
            priority=priority, name=name,
        )  # fmt: skip

    async def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]:
        return await self._run(self.engine.job_statuses, job_ids)

    async def job_changes(self, since: int | None = None, limit: int = CHANGES_LIMIT) -> JobChanges:
        return await self._run(self.engine.job_changes, since, limit)

    async def get_job(self, job_id: str) -> JobRecord:
        return await self._run(self.engine.get_job, job_id)

    async def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        return await self._run(self.engine.list_jobs, status, limit)

    async def cancel(self, job_ids: Sequence[str]) -> CancelResponse:
        return await self._write(self.engine.cancel, job_ids)

    async def forget(self, job_ids: Sequence[str]) -> ForgetResponse:
        return await self._write(self.engine.forget, job_ids)

    async def read_log(self, job_id: str, stream: str = "stdout", offset: int = 0) -> LogChunk:
        return await self._run(read_log, self.engine, job_id, stream, offset)

    def logs(
        self, job_id: str, *, stream: str = "stdout", follow: bool = True, poll: float = FOLLOW_POLL_S
    ) -> AsyncGenerator[str, None]:
        return follow_log(self.read_log, job_id, stream, follow, poll)

    async def batches(self, limit: int = 100, *, name: str | None = None) -> list[BatchSummary]:
        return await self._run(self.engine.batches, limit, name=name)

    async def batch(self, batch_id: str) -> BatchDetail:
        return await self._run(self.engine.batch, batch_id)

    async def cancel_batch(self, batch_id: str) -> CancelResponse:
        return await self._write(self.engine.cancel_batch, batch_id)

    async def submit_pipeline(self, steps: Mapping[str, Any]) -> PipelineDetail:
        return await self._write(self.engine.pipelines.submit, steps)

    async def pipeline(self, pipeline_id: str) -> PipelineDetail:
        return await self._write(self.engine.pipelines.detail, pipeline_id)

    async def cancel_pipeline(self, pipeline_id: str) -> PipelineDetail:
        return await self._write(self.engine.pipelines.cancel, pipeline_id)

    async def jobs_page(
        self, status: str | None = None, limit: int = DEFAULT_JOBS_PAGE, cursor: str | None = None
    ) -> Page[JobRecord]:
        return await self._run(pages.jobs_page, self.engine, status, limit, cursor)

    async def files_page(self, limit: int = DEFAULT_FILES_PAGE, cursor: str | None = None) -> Page[FileInfo]:
        return await self._run(pages.files_page, self.engine, limit, cursor)

    async def methods_page(
        self, latest_only: bool = True, limit: int = DEFAULT_METHODS_PAGE, cursor: str | None = None
    ) -> Page[MethodInfo]:
        return await self._run(pages.methods_page, self.engine, latest_only, limit, cursor)

    async def batches_page(self, limit: int = DEFAULT_BATCHES_PAGE, cursor: str | None = None) -> Page[BatchSummary]:
        return await self._run(pages.batches_page, self.engine, limit, cursor)

    async def batch_page(
        self, batch_id: str, limit: int = DEFAULT_RESULTS_PAGE, cursor: str | None = None
    ) -> BatchDetail:
        return await self._run(pages.batch_page, self.engine, batch_id, limit, cursor)

    async def aclose(self) -> None:
        await self._write(self.engine.close)
