"""``GET /jobs/changes``: polling by change (docs/design.md section 14). A poller keeps the cursor of its last
answer and asks for what changed after it, so an idle poll of 100,000 jobs in flight is a few bytes, not the
records of all of them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ..backends.base import Backend
from ..domain.models import CHANGES_LIMIT, MAX_CHANGES_LIMIT, MAX_CURSOR, JobChanges
from .wire import OFFLOAD_ITEMS, respond


def change_routes(backend: Backend, responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["jobs"], responses=responses)

    @router.get("/jobs/changes", response_model=JobChanges)
    async def job_changes(
        since: int | None = Query(
            None, ge=0, le=MAX_CURSOR, description="The cursor of the last answer; omitted: start now."
        ),
        limit: int = Query(CHANGES_LIMIT, ge=1, le=MAX_CHANGES_LIMIT),
    ) -> Response:
        """The jobs changed after ``since``, oldest change first, and the cursor to ask from next (``more``
        when the answer stopped at ``limit``); without ``since``, no jobs and the current cursor."""
        changes = await backend.job_changes(since, limit)
        return await respond(JobChanges, changes, large=len(changes.jobs) > OFFLOAD_ITEMS)

    return router
