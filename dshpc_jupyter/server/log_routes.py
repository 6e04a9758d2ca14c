"""The route of a job's logs (docs/design.md section 13.1): a byte-offset read the client repeats to follow,
so no request is held open while a job is quiet and a dropped connection loses nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ..backends.base import Backend
from ..domain.models import LogChunk
from .wire import respond


def log_routes(backend: Backend, responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["jobs"], responses=responses)

    @router.get("/job/{job_id}/logs", response_model=LogChunk)
    async def job_logs(
        job_id: str,
        stream: str = Query("stdout", description="stdout or stderr"),
        offset: int = Query(0, description="Byte offset to read from: the next_offset of the previous answer."),
    ) -> Response:
        """Up to 1 MiB of the job's stdout or stderr from ``offset``; ``complete`` once the job has ended and
        the log is read to its end."""
        return await respond(LogChunk, await backend.read_log(job_id, stream, offset))

    return router
