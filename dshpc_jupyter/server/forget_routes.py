"""The routes that forget jobs (docs/design.md section 12.3): many at once, or one by its own URL.

``DELETE /job/{job_id}`` is the REST spelling of forgetting one job, so it answers like one: 404 for an
unknown job, 409 for one in progress (cancel it first), else the same answer as ``POST /jobs/forget``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..backends.base import Backend
from ..domain.errors import ConflictError, NotFoundError
from ..domain.models import ForgetResponse, JobIdsRequest
from .wire import body_doc, parse_body, respond


def forget_routes(backend: Backend, responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["jobs"], responses=responses)

    @router.post("/jobs/forget", response_model=ForgetResponse, openapi_extra=body_doc(JobIdsRequest))
    async def forget_jobs(request: Request) -> Response:
        """Remove ended jobs from the cache with their workspaces and the output files nothing else needs;
        jobs in progress are listed under ``in_progress`` and kept."""
        payload = await parse_body(request, JobIdsRequest)
        return await respond(ForgetResponse, await backend.forget(payload.job_ids))

    @router.delete("/job/{job_id}", response_model=ForgetResponse)
    async def forget_job(job_id: str) -> Response:
        """Forget one ended job: 404 when unknown, 409 while it is in progress."""
        answer = await backend.forget([job_id])
        if answer.not_found:
            raise NotFoundError(f"Job '{job_id}' not found")
        if answer.in_progress:
            raise ConflictError(f"job_id: job '{job_id}' is in progress; cancel it before forgetting it")
        return await respond(ForgetResponse, answer)

    return router
