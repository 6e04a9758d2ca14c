"""The list routes, each a bounded page (docs/design.md section 13.3): ``limit`` and ``cursor`` on every one;
the JSON-array routes keep the seed's body (an array) and give the next page in ``Link: <...>; rel="next"``,
a batch's detail carries ``next_cursor``. Without parameters each answers its first page of the default size."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..backends.base import Backend
from ..domain.models import BatchDetail, BatchSummary, FileInfo, JobRecord, MethodInfo, Page
from ..domain.pages import (
    DEFAULT_BATCHES_PAGE,
    DEFAULT_FILES_PAGE,
    DEFAULT_JOBS_PAGE,
    DEFAULT_METHODS_PAGE,
    DEFAULT_RESULTS_PAGE,
    MAX_PAGE,
)
from ..service.identity import viewing
from .wire import OFFLOAD_ITEMS, respond

T = TypeVar("T")
SCOPE = Query("mine", description="On a server with users: `mine` (yours) or `all` (admins).")
CURSOR = Query(None, description="Where to start: the cursor in the previous page's Link header (or next_cursor).")


def limit_query(default: int) -> Any:
    return Query(default, ge=1, le=MAX_PAGE, description="Items on this page at most.")


async def array_page(request: Request, kind: Any, page: Page[T]) -> Response:
    """The page's items as the seed's JSON array, the next page's URL in a ``Link`` header."""
    response = await respond(list[kind], page.items, large=len(page.items) > OFFLOAD_ITEMS)
    if page.next_cursor is not None:
        response.headers["Link"] = f'<{request.url.include_query_params(cursor=page.next_cursor)}>; rel="next"'
    return response


def page_routes(backend: Backend, responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(responses=responses)

    @router.get("/files", response_model=list[FileInfo], tags=["files"])
    async def list_files(
        request: Request, limit: int = limit_query(DEFAULT_FILES_PAGE), cursor: str | None = CURSOR
    ) -> Response:
        """Stored files in the order they were stored."""
        return await array_page(request, FileInfo, await backend.files_page(limit, cursor))

    @router.get("/methods", response_model=list[MethodInfo], tags=["methods"])
    async def list_methods(
        request: Request,
        latest_only: bool = Query(True, description="Only the latest version of each name."),
        limit: int = limit_query(DEFAULT_METHODS_PAGE),
        cursor: str | None = CURSOR,
    ) -> Response:
        return await array_page(request, MethodInfo, await backend.methods_page(latest_only, limit, cursor))

    @router.get("/jobs", response_model=list[JobRecord], tags=["jobs"])
    async def list_jobs(
        request: Request,
        status: str | None = Query(None, description="Only jobs with this status code (CD, PD, R, F, ...)."),
        limit: int = limit_query(DEFAULT_JOBS_PAGE),
        cursor: str | None = CURSOR,
        scope: str = SCOPE,
    ) -> Response:
        """Jobs, newest first."""
        with viewing(scope):
            return await array_page(request, JobRecord, await backend.jobs_page(status, limit, cursor))

    @router.get("/batches", response_model=list[BatchSummary], tags=["batches"])
    async def list_batches(
        request: Request,
        limit: int = limit_query(DEFAULT_BATCHES_PAGE),
        cursor: str | None = CURSOR,
        scope: str = SCOPE,
        name: str | None = Query(None, description="Only the batches of this name, newest first (one page)."),
    ) -> Response:
        """Batches, newest first."""
        with viewing(scope):
            if name is not None:  # a name is a lookup, its batches few: one page, no cursor
                return await respond(list[BatchSummary], await backend.batches(limit, name=name))
            return await array_page(request, BatchSummary, await backend.batches_page(limit, cursor))

    @router.get("/batches/{batch_id}", response_model=BatchDetail, tags=["batches"])
    async def get_batch(
        batch_id: str, limit: int = limit_query(DEFAULT_RESULTS_PAGE), cursor: str | None = CURSOR
    ) -> Response:
        """A recorded batch: one page of its results with the current record of their jobs, the whole batch's
        statistics and live counts, and ``next_cursor`` where the next page starts."""
        detail = await backend.batch_page(batch_id, limit, cursor)
        return await respond(BatchDetail, detail, large=len(detail.results) > OFFLOAD_ITEMS)

    return router
