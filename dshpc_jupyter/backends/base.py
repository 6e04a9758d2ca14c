"""The ``Backend`` interface: one async API with two implementations, the embedded engine
(:mod:`.embedded`) and the HTTP client (:mod:`.client`). The front end talks only to this interface
(through :class:`.connection.Connection`), so it never knows which one it holds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

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
from ..domain.models import ConfigLike as ConfigLike  # one config as a caller gives it (declared with the models)


@runtime_checkable
class Backend(Protocol):
    """A dsHPC service. Use it from one event loop; :class:`.connection.Connection` gives the blocking view."""

    #: Where it is, for people: a home directory or a URL.
    location: str

    async def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]: ...

    async def list_methods(self, latest_only: bool = True) -> list[MethodInfo]: ...

    async def method_versions(self, name: str) -> list[MethodInfo]: ...

    async def upload_file(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_hash: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> FileInfo: ...

    async def check_hashes(self, hashes: Sequence[str]) -> HashCheckResponse: ...

    async def list_files(self) -> list[FileInfo]: ...

    async def simulate_job(self, config: ConfigLike) -> JobSimulationResponse: ...

    async def simulate_jobs(
        self, configs: Sequence[ConfigLike], *, dry_run: bool = False
    ) -> MultiJobSimulationResponse: ...

    async def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]: ...

    async def get_job(self, job_id: str) -> JobRecord: ...

    async def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]: ...

    async def cancel(self, job_ids: Sequence[str]) -> CancelResponse: ...

    async def batches(self, limit: int = 100) -> list[BatchSummary]: ...

    async def batch(self, batch_id: str) -> BatchDetail: ...

    async def cancel_batch(self, batch_id: str) -> CancelResponse: ...

    async def aclose(self) -> None: ...
