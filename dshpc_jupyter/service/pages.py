"""The engine's lists a page at a time (docs/design.md section 13.3): what the server's list routes answer and
what a client walks; the whole-list calls (``list_files`` ...) stay for callers in the same process."""

from __future__ import annotations

from ..domain.errors import InvalidInputError
from ..domain.models import BatchDetail, BatchSummary, FileInfo, JobRecord, MethodInfo, Page
from ..domain.pages import MAX_PAGE, decode_cursor, encode_cursor
from ..store import pages
from .engine import Engine


def check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(f"limit: must be an integer from 1 to {MAX_PAGE}, not {limit!r}")


def jobs_page(engine: Engine, status: str | None, limit: int, cursor: str | None) -> Page[JobRecord]:
    check_limit(limit)
    return pages.jobs_page(engine.store, status, limit, cursor)


def files_page(engine: Engine, limit: int, cursor: str | None) -> Page[FileInfo]:
    check_limit(limit)
    return pages.files_page(engine.store, limit, cursor)


def methods_page(engine: Engine, latest_only: bool, limit: int, cursor: str | None) -> Page[MethodInfo]:
    check_limit(limit)
    return pages.methods_page(engine.store, latest_only, limit, cursor)


def batches_page(engine: Engine, limit: int, cursor: str | None) -> Page[BatchSummary]:
    check_limit(limit)
    return pages.batches_page(engine.store, limit, cursor)


def batch_page(engine: Engine, batch_id: str, limit: int, cursor: str | None) -> BatchDetail:
    """A batch with ``limit`` of its results from the cursor (by index: a batch's results are only appended)
    and the records of their jobs; the statistics and live counts are the whole batch's."""
    check_limit(limit)
    (start,) = decode_cursor(cursor, int) if cursor else (0,)
    detail = engine.batch(batch_id)
    results = detail.results[start : start + limit]
    wanted = {r.job_id for r in results}
    more = start + limit < len(detail.results)
    return detail.model_copy(
        update={
            "results": results,
            "jobs": [job for job in detail.jobs if job.job_id in wanted],
            "next_cursor": encode_cursor(start + limit) if more else None,
        }
    )
