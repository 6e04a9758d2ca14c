"""The HTTP client's lists, a page at a time and whole (docs/design.md section 13.3).

Every list route of the server answers one bounded page: a JSON-array route (``/jobs``, ``/files``,
``/methods``, ``/batches``) gives the next page's address in a ``Link: <...>; rel="next"`` header, a batch's
detail carries ``next_cursor``. The ``*_page`` operations return one page; the whole-list operations
(``list_files`` ...) follow the cursors until the end (or ``limit``), so a caller never sees the pages. A server
without pages (the seed's) sends no ``Link`` and its one answer is the whole list.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import ValidationError

from ..domain.errors import BackendError
from ..domain.models import BatchDetail, BatchSummary, FileInfo, JobRecord, MethodInfo, Page, adapter
from ..domain.pages import (
    DEFAULT_BATCHES_PAGE,
    DEFAULT_FILES_PAGE,
    DEFAULT_JOBS_PAGE,
    DEFAULT_METHODS_PAGE,
    DEFAULT_RESULTS_PAGE,
    MAX_PAGE,
)

T = TypeVar("T")


def next_cursor(response: httpx.Response) -> str | None:
    """The cursor in a response's ``Link: <...>; rel="next"`` header, None when there is no next page."""
    url = response.links.get("next", {}).get("url")
    if not url:
        return None
    found = parse_qs(urlsplit(url).query).get("cursor")
    return found[0] if found else None


class HttpPages:
    """The list operations of :class:`.http.HttpBackend`, over its retrying ``_get``."""

    location: str

    async def _get(self, path: str, params: Mapping[str, Any]) -> httpx.Response:
        """A GET that is safe to retry (the backend's)."""
        raise NotImplementedError

    async def _array_page(self, path: str, kind: type[T], params: dict[str, Any], cursor: str | None) -> Page[T]:
        response = await self._get(path, {**params, **({"cursor": cursor} if cursor else {})})
        try:
            items: list[T] = adapter(list[kind]).validate_json(response.content)  # type: ignore[valid-type]
        except ValidationError as exc:
            raise BackendError(
                f"GET {path}: unexpected answer from {self.location}: {exc.errors()[0]['msg']}", 502
            ) from None
        return Page(items=items, next_cursor=next_cursor(response))

    async def _walk(self, path: str, kind: type[T], params: dict[str, Any], most: int | None = None) -> list[T]:
        """Every item of a list, page after page (at most ``most``)."""
        found: list[T] = []
        cursor: str | None = None
        while most is None or len(found) < most:
            size = MAX_PAGE if most is None else min(MAX_PAGE, most - len(found))
            page = await self._array_page(path, kind, {**params, "limit": size}, cursor)
            found.extend(page.items)
            cursor = page.next_cursor
            if cursor is None or not page.items:
                break
        return found if most is None else found[:most]

    # --- pages -----------------------------------------------------------------------------------------

    async def jobs_page(
        self, status: str | None = None, limit: int = DEFAULT_JOBS_PAGE, cursor: str | None = None
    ) -> Page[JobRecord]:
        return await self._array_page("/jobs", JobRecord, _status({"limit": limit}, status), cursor)

    async def files_page(self, limit: int = DEFAULT_FILES_PAGE, cursor: str | None = None) -> Page[FileInfo]:
        return await self._array_page("/files", FileInfo, {"limit": limit}, cursor)

    async def methods_page(
        self, latest_only: bool = True, limit: int = DEFAULT_METHODS_PAGE, cursor: str | None = None
    ) -> Page[MethodInfo]:
        return await self._array_page("/methods", MethodInfo, {"limit": limit, **_latest(latest_only)}, cursor)

    async def batches_page(self, limit: int = DEFAULT_BATCHES_PAGE, cursor: str | None = None) -> Page[BatchSummary]:
        return await self._array_page("/batches", BatchSummary, {"limit": limit}, cursor)

    async def batch_page(
        self, batch_id: str, limit: int = DEFAULT_RESULTS_PAGE, cursor: str | None = None
    ) -> BatchDetail:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await self._get(f"/batches/{quote(batch_id, safe='')}", params)
        try:
            return BatchDetail.model_validate_json(response.content)
        except ValidationError as exc:
            raise BackendError(f"GET /batches/{batch_id}: unexpected answer: {exc.errors()[0]['msg']}", 502) from None

    # --- whole lists -----------------------------------------------------------------------------------

    async def list_files(self) -> list[FileInfo]:
        return await self._walk("/files", FileInfo, {})

    async def list_methods(self, latest_only: bool = True) -> list[MethodInfo]:
        return await self._walk("/methods", MethodInfo, _latest(latest_only))

    async def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        return await self._walk("/jobs", JobRecord, _status({}, status), most=limit)

    async def batches(self, limit: int = 100, *, name: str | None = None) -> list[BatchSummary]:
        return await self._walk("/batches", BatchSummary, {} if name is None else {"name": name}, most=limit)

    async def batch(self, batch_id: str) -> BatchDetail:
        """The whole batch: its results page after page, with their jobs (each once)."""
        detail = await self.batch_page(batch_id, MAX_PAGE)
        results, jobs = list(detail.results), {job.job_id: job for job in detail.jobs}
        while detail.next_cursor is not None:
            detail = await self.batch_page(batch_id, MAX_PAGE, detail.next_cursor)
            results.extend(detail.results)
            jobs.update((job.job_id, job) for job in detail.jobs)
        return detail.model_copy(update={"results": results, "jobs": list(jobs.values()), "next_cursor": None})


def _status(params: dict[str, Any], status: str | None) -> dict[str, Any]:
    return params if status is None else {**params, "status": status}


def _latest(latest_only: bool) -> dict[str, str]:
    return {"latest_only": "true" if latest_only else "false"}
