"""The ``Backend`` interface, declared once: one async API with two implementations, the embedded engine
(:mod:`.embedded`) and the HTTP client (:mod:`.http`). The front end and the server talk only to this
interface (the front through the blocking :class:`~dshpc_jupyter.front.blocking.Connection`, whose methods
are the sync twins of these), so neither knows which one it holds. ``tests/test_backend_conformance.py``
checks that every implementation has every operation with exactly this signature.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

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
from ..domain.models import ConfigLike as ConfigLike  # one config as a caller gives it (declared with the models)
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
from .logs import FOLLOW_POLL_S

#: Where ``connect()`` and the HTTP client look for a server's URL and API key when none is given.
URL_ENV = "DSHPC_URL"
API_KEY_ENV = "DSHPC_API_KEY"


@runtime_checkable
class Backend(Protocol):
    """A dsHPC service. Use it from one event loop; :class:`~dshpc_jupyter.front.blocking.Connection` gives
    the blocking view."""

    #: Where it is, for people: a home directory or a URL.
    location: str

    async def services_status(self) -> ServiceStatus:
        """What the service is (version, schedulers, store) and whether its store answers. An embedded engine
        needs no key and has no limits; a server states its own in ``auth_required`` and ``limits``."""
        ...

    async def whoami(self) -> WhoAmI:
        """Who the service takes the caller for: a server's user (name, role, quotas), or the embedded
        engine's local user (no name, every right)."""
        ...

    # --- methods -----------------------------------------------------------------------------------------

    async def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        """Register a method directory (or a directory of them); each becomes the latest of its name."""
        ...

    async def list_methods(self, latest_only: bool = True) -> list[MethodInfo]: ...

    async def method_versions(self, name: str) -> list[MethodInfo]:
        """Every version of the method called ``name``, latest first (NotFoundError for none)."""
        ...

    # --- files -------------------------------------------------------------------------------------------

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
        """Store content under its SHA-256 (checked against ``file_hash`` if given). Content already stored
        gives the stored record, or ConflictError without ``exist_ok`` (the seed's 409)."""
        ...

    async def check_hashes(self, hashes: Sequence[str]) -> HashCheckResponse: ...

    async def list_files(self) -> list[FileInfo]: ...

    async def get_file(self, file_hash: str) -> FileInfo:
        """The stored record of one file (NotFoundError when the store lacks it)."""
        ...

    async def read_range(self, file_hash: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes of a stored file from ``offset`` (fewer at its end): what downloads stream."""
        ...

    async def read_bytes(self, file_hash: str) -> bytes:
        """A whole stored file's bytes (an output file, say), checked against its hash."""
        ...

    async def download(self, file_hash: str, dest: str | os.PathLike[str]) -> Path:
        """Write a stored file to ``dest`` (into it, under the file's name, when it is a directory), streamed in
        constant memory, checked against its hash and renamed into place; the path written."""
        ...

    async def staged_size(self, file_hash: str) -> int:
        """How many bytes of a streamed upload of this hash the service holds (where to resume; 0 for none)."""
        ...

    async def append_staged(
        self, file_hash: str, offset: int, data: bytes, total_size: int, details: FileDetails | None = None
    ) -> StagedUpload:
        """Append a piece of a streamed upload at ``offset`` (ConflictError unless it is what the service holds);
        the piece that reaches ``total_size`` verifies the hash and stores the file (docs/design.md 8.3)."""
        ...

    # --- jobs --------------------------------------------------------------------------------------------

    async def simulate_job(self, config: ConfigLike) -> JobSimulationResponse: ...

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
        """Serve each config from cache, join its running job, or submit it, and record the batch. With
        ``dry_run`` nothing is submitted or recorded; ``append_to`` adds the configs to an earlier batch;
        ``options`` set the retry policy and which earlier jobs run again (docs/design.md section 12). New jobs
        start by ``priority`` (higher first), equal priorities batch by batch in turn. ``name`` is recorded
        with a new batch, to find it again by."""
        ...

    async def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The current records of many jobs at once (unknown ids are left out): what a poller calls."""
        ...

    async def job_changes(self, since: int | None = None, limit: int = CHANGES_LIMIT) -> JobChanges:
        """The jobs changed after cursor ``since``, oldest change first, at most ``limit`` (``more`` when others
        wait), and the cursor to ask from next; without ``since`` only the current cursor, where a poller
        starts. A poll costs the jobs that changed, not the jobs in flight (docs/design.md section 14)."""
        ...

    async def get_job(self, job_id: str) -> JobRecord: ...

    async def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]: ...

    async def cancel(self, job_ids: Sequence[str]) -> CancelResponse: ...

    async def forget(self, job_ids: Sequence[str]) -> ForgetResponse:
        """Remove ended jobs from the cache with their workspaces and the output files nothing else needs;
        jobs in progress are refused (cancel them first)."""
        ...

    async def read_log(self, job_id: str, stream: str = "stdout", offset: int = 0) -> LogChunk:
        """A piece of a job's ``stream`` (``stdout`` or ``stderr``) from byte ``offset``, while it runs and after."""
        ...

    def logs(
        self, job_id: str, *, stream: str = "stdout", follow: bool = True, poll: float = FOLLOW_POLL_S
    ) -> AsyncGenerator[str, None]:
        """The log's text as it comes (:func:`.logs.follow_log`): what is there, then, with ``follow``, what the
        job writes next, until it has ended."""
        ...

    # --- batches -----------------------------------------------------------------------------------------

    async def batches(self, limit: int = 100, *, name: str | None = None) -> list[BatchSummary]:
        """The newest batches first; ``name``: only those of that name."""
        ...

    async def batch(self, batch_id: str) -> BatchDetail: ...

    async def cancel_batch(self, batch_id: str) -> CancelResponse: ...

    # --- pipelines (docs/design.md section 10) -------------------------------------------------------------

    async def submit_pipeline(self, steps: Mapping[str, Any]) -> PipelineDetail:
        """Check a pipeline (step name to step; InvalidInputError naming the step, nothing recorded, when one is
        refused), record it and release the steps that depend on nothing; its state now."""
        ...

    async def pipeline(self, pipeline_id: str) -> PipelineDetail:
        """A pipeline's state now (a look also releases the steps its finished ones allow)."""
        ...

    async def cancel_pipeline(self, pipeline_id: str) -> PipelineDetail: ...

    # --- pages: each list a bounded page at a time (docs/design.md section 13.3) ---------------------------

    async def jobs_page(
        self, status: str | None = None, limit: int = DEFAULT_JOBS_PAGE, cursor: str | None = None
    ) -> Page[JobRecord]:
        """Jobs newest first from ``cursor`` (a page's ``next_cursor``; None for the first page)."""
        ...

    async def files_page(self, limit: int = DEFAULT_FILES_PAGE, cursor: str | None = None) -> Page[FileInfo]: ...

    async def methods_page(
        self, latest_only: bool = True, limit: int = DEFAULT_METHODS_PAGE, cursor: str | None = None
    ) -> Page[MethodInfo]: ...

    async def batches_page(
        self, limit: int = DEFAULT_BATCHES_PAGE, cursor: str | None = None
    ) -> Page[BatchSummary]: ...

    async def batch_page(
        self, batch_id: str, limit: int = DEFAULT_RESULTS_PAGE, cursor: str | None = None
    ) -> BatchDetail:
        """A batch with one page of its results (and their jobs); ``next_cursor`` where the next page starts."""
        ...

    async def aclose(self) -> None: ...
