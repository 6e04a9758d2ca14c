"""Paged reads of the store's lists (docs/design.md section 13.3): each page is one indexed range query that
starts after the cursor's position in the list's order and asks for one row more than the page, to know
whether another page follows. Positions are unique and never reused (a job's ``seq``; a time with the row's
key), so a walk under concurrent inserts sees every row that existed when it started exactly once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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
T = TypeVar("T")
Row = Sequence[Any]


def jobs_page(store: Store, status: str | None, limit: int, cursor: str | None) -> Page[JobRecord]:
    """Jobs newest first (the seed's ``GET /jobs`` order), optionally of one status."""
    (before,) = decode_cursor(cursor, int) if cursor else (LAST_SEQ,)
    return _page(store, JOBS_PAGE_SQL, (status, status, before), limit, lambda row: job_from_row(row[:-1]), (-1,))


def files_page(store: Store, limit: int, cursor: str | None) -> Page[FileInfo]:
    """Files in the order they were stored (as ``GET /files`` always listed them)."""
    after = decode_cursor(cursor, float, str) if cursor else (None, None)
    return _page(store, FILES_PAGE_SQL, (after[0], *after), limit, file_from_row, (5, 0))


def batches_page(store: Store, limit: int, cursor: str | None) -> Page[BatchSummary]:
    """Batches newest first."""
    before = decode_cursor(cursor, float, str) if cursor else (None, None)
    return _page(store, BATCHES_PAGE_SQL, (before[0], *before), limit, batch_summary, (1, 0))


def methods_page(store: Store, latest_only: bool, limit: int, cursor: str | None) -> Page[MethodInfo]:
    """Methods by name, newest version first (only the latest of each name with ``latest_only``)."""
    name, seq = decode_cursor(cursor, str, int) if cursor else (None, None)
    params = (int(latest_only), name, name, name, seq)
    return _page(store, METHODS_PAGE_SQL, params, limit, lambda row: method_from_row(*row[:4]), (4, 5))


def _page(
    store: Store, sql: str, params: tuple[Any, ...], limit: int, decode: Callable[[Row], T], key: tuple[int, ...]
) -> Page[T]:
    """One page of ``sql`` (its last parameter the row count): ``limit + 1`` rows are read, so the extra one
    says whether a page follows; the cursor is then the ``key`` columns of the page's last row."""
    with store.read() as tx:
        rows = tx.connection.execute(sql, (*params, limit + 1)).fetchall()
    last = rows[limit - 1] if len(rows) > limit else None
    return Page.model_construct(
        items=[decode(row) for row in rows[:limit]],
        next_cursor=None if last is None else encode_cursor(*(last[column] for column in key)),
    )
