"""Paged reads of the store's lists (docs/design.md section 13.3): each page is one indexed range query that
starts after the cursor's position in the list's order and asks for one row more than the page, to know
whether another page follows. Positions are unique and never reused (a job's ``seq``; a time with the row's
key), so a walk under concurrent inserts sees every row that existed when it started exactly once."""

from __future__ import annotations

from ..domain.models import BatchSummary, FileInfo, JobRecord, MethodInfo, Page
from ..domain.pages import decode_cursor, encode_cursor
from .rows import BATCH_COLUMNS, JOB_COLUMNS, batch_summary, file_from_row, job_from_row, method_from_row
from .sqlite import Store

# Spelled from the modules' column lists, never from data (every value is a ``?`` parameter).
JOBS_PAGE_SQL = (
    f"SELECT {JOB_COLUMNS}, seq FROM jobs WHERE (? IS NULL OR status = ?) AND seq < ?"  # noqa: S608
    " ORDER BY seq DESC LIMIT ?"
)
FILES_PAGE_SQL = (
    "SELECT * FROM files WHERE ? IS NULL OR (upload_date, file_hash) > (?, ?) ORDER BY upload_date, file_hash LIMIT ?"
)
BATCHES_PAGE_SQL = (
    f"SELECT {BATCH_COLUMNS} FROM batches WHERE ? IS NULL OR (created_at, batch_id) < (?, ?)"  # noqa: S608
    " ORDER BY created_at DESC, batch_id DESC LIMIT ?"
)
METHODS_PAGE_SQL = (
    "SELECT function_hash, spec, registered_at, latest, name, registered_seq FROM (SELECT function_hash, spec,"
    " registered_at, name, registered_seq, registered_seq = (SELECT max(registered_seq) FROM methods"
    " WHERE name = m.name) AS latest FROM methods AS m) WHERE (? = 0 OR latest)"
    " AND (? IS NULL OR name > ? OR (name = ? AND registered_seq < ?)) ORDER BY name, registered_seq DESC LIMIT ?"
)
LAST_SEQ = 2**63 - 1


def jobs_page(store: Store, status: str | None, limit: int, cursor: str | None) -> Page[JobRecord]:
    """Jobs newest first (the seed's ``GET /jobs`` order), optionally of one status."""
    (before,) = decode_cursor(cursor, int) if cursor else (LAST_SEQ,)
    with store.read() as tx:
        rows = tx.connection.execute(JOBS_PAGE_SQL, (status, status, before, limit + 1)).fetchall()
    more = len(rows) > limit
    items = [job_from_row(row[:-1]) for row in rows[:limit]]
    return Page.model_construct(items=items, next_cursor=encode_cursor(rows[limit - 1][-1]) if more else None)


def files_page(store: Store, limit: int, cursor: str | None) -> Page[FileInfo]:
    """Files in the order they were stored (as ``GET /files`` always listed them)."""
    after = decode_cursor(cursor, float, str) if cursor else (None, None)
    with store.read() as tx:
        rows = tx.connection.execute(FILES_PAGE_SQL, (after[0], *after, limit + 1)).fetchall()
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return Page.model_construct(
        items=[file_from_row(row) for row in rows[:limit]],
        next_cursor=encode_cursor(last[5], last[0]) if last is not None else None,
    )


def batches_page(store: Store, limit: int, cursor: str | None) -> Page[BatchSummary]:
    """Batches newest first."""
    before = decode_cursor(cursor, float, str) if cursor else (None, None)
    with store.read() as tx:
        rows = tx.connection.execute(BATCHES_PAGE_SQL, (before[0], *before, limit + 1)).fetchall()
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return Page.model_construct(
        items=[batch_summary(row) for row in rows[:limit]],
        next_cursor=encode_cursor(last[1], last[0]) if last is not None else None,
    )


def methods_page(store: Store, latest_only: bool, limit: int, cursor: str | None) -> Page[MethodInfo]:
    """Methods by name, newest version first (only the latest of each name with ``latest_only``)."""
    name, seq = decode_cursor(cursor, str, int) if cursor else (None, None)
    with store.read() as tx:
        rows = tx.connection.execute(METHODS_PAGE_SQL, (int(latest_only), name, name, name, seq, limit + 1)).fetchall()
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return Page.model_construct(
        items=[method_from_row(*row[:4]) for row in rows[:limit]],
        next_cursor=encode_cursor(last[4], last[5]) if last is not None else None,
    )
