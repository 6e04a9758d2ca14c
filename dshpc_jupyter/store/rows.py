"""Rows to records and back: how jobs, files and batches are laid out in the store's columns.

Kept apart from the statements so each ``SELECT`` and the decoder of its row read side by side in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

import orjson
from pydantic import TypeAdapter

from ..domain.models import BatchStatistics, BatchSummary, FileInfo, JobRecord, MethodInfo, MethodSpec, MultiJobResult
from ..domain.retries import Attempt

_RESULTS = TypeAdapter(list[MultiJobResult])
_ATTEMPTS = TypeAdapter(list[Attempt])

#: The columns every job query selects, in the order :func:`job_from_row` reads them.
JOB_COLUMNS = (
    "job_id, file_hash, method_name, function_hash, parameters, status, output, error, exit_code, "
    "created_at, started_at, finished_at, scheduler, scheduler_id, file_inputs, output_files, "
    "attempt, attempts, resources, not_before, owner, priority"
)
#: The columns every batch-summary query selects, in the order :func:`batch_summary` reads them.
BATCH_COLUMNS = "batch_id, created_at, total_jobs, statistics, name, owner"

PACKED_FIELDS = (
    "job_id", "outcome", "old_status", "new_status", "message", "file_hash", "method_name", "function_hash",
    "parameters", "file_inputs",
)  # fmt: skip
#: One result's packed fields, as a tuple (which orjson writes as an array).
_PACKED_ROW = itemgetter(*PACKED_FIELDS)


def chunks(items: Sequence[str], size: int = 30000) -> Iterator[Sequence[str]]:
    """``items`` in slices small enough for one ``json_each`` parameter."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _dt(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _json(text: str) -> Any:
    """orjson's parse (several times faster), or the standard one for integers past 64 bits, which it refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


_JOB_FIELDS = frozenset(JobRecord.model_fields)
_new = object.__new__
_set = object.__setattr__


def job_from_row(row: Sequence[Any]) -> JobRecord:
    """A job record from the ``JOB_COLUMNS`` of one row (trusted: the store wrote it).

    Built the way ``model_construct`` builds one, without its walk over the fields for defaults and aliases
    (every field is given here): that walk was most of the cost of a poll of 100,000 records."""
    started, finished, retry_at = row[10], row[11], row[19]
    record = _new(JobRecord)
    _set(record, "__dict__", {
        "job_id": row[0], "file_hash": row[1] or None, "method_name": row[2], "function_hash": row[3],
        "parameters": _json(row[4]), "status": row[5], "output": row[6], "error": row[7], "exit_code": row[8],
        "created_at": datetime.fromtimestamp(row[9], UTC),
        "started_at": None if started is None else datetime.fromtimestamp(started, UTC),
        "finished_at": None if finished is None else datetime.fromtimestamp(finished, UTC),
        "scheduler": row[12], "scheduler_id": row[13], "file_inputs": None if row[14] is None else _json(row[14]),
        "output_files": {} if row[15] is None else _json(row[15]),
        "attempt": row[16], "attempts": [] if row[17] is None else _ATTEMPTS.validate_json(row[17]),
        "resources": {} if row[18] is None else _json(row[18]),
        "retry_at": None if retry_at is None else datetime.fromtimestamp(retry_at, UTC),
        "queue_position": None, "owner": row[20], "priority": row[21],
    })  # fmt: skip
    _set(record, "__pydantic_fields_set__", set(_JOB_FIELDS))
    _set(record, "__pydantic_extra__", None)
    _set(record, "__pydantic_private__", None)
    return record


def file_from_row(row: Sequence[Any]) -> FileInfo:
    """A file record from a ``SELECT *`` row of ``files``."""
    return FileInfo(
        file_hash=row[0],
        filename=row[1],
        content_type=row[2],
        file_size=row[3],
        metadata=json.loads(row[4]) if row[4] is not None else None,
        upload_date=datetime.fromtimestamp(row[5], UTC),
    )


def file_values(info: FileInfo) -> tuple[Any, ...]:
    """A file record as the values of a row of ``files``, in column order."""
    metadata = json.dumps(info.metadata) if info.metadata is not None else None
    return (info.file_hash, info.filename, info.content_type, info.file_size, metadata, info.upload_date.timestamp())


def batch_summary(row: Sequence[Any]) -> BatchSummary:
    """A batch summary from the ``BATCH_COLUMNS`` of one row."""
    return BatchSummary(
        batch_id=row[0],
        created_at=datetime.fromtimestamp(row[1], UTC),
        total_jobs=row[2],
        statistics=BatchStatistics.model_validate_json(row[3]),
        name=row[4],
        owner=row[5],
    )


def pack_results(results: Sequence[Mapping[str, Any]]) -> bytes:
    """A batch's results as one compact JSON array of rows (outputs are not copied: they stay on the jobs)."""
    rows = list(map(_PACKED_ROW, results))
    try:
        return orjson.dumps(rows, default=str)
    except TypeError:  # parameters echoed as given may hold integers beyond 64 bits, which orjson refuses
        return json.dumps(rows, default=str).encode()


def unpack_results(packed: str | bytes) -> list[MultiJobResult]:
    """The results :func:`pack_results` packed."""
    # A row packed before ``file_inputs`` existed is one field short: the field is then left out (None).
    return _RESULTS.validate_python(
        [dict(zip(PACKED_FIELDS[: len(row)], row, strict=True)) for row in json.loads(packed)]
    )


def method_from_row(function_hash: str, spec: str, registered_at: float, latest: object) -> MethodInfo:
    """A method record from its stored spec and registration (``latest``: the last registered of its name)."""
    return MethodInfo(
        **MethodSpec.model_validate_json(spec).model_dump(),
        function_hash=function_hash,
        registered_at=datetime.fromtimestamp(registered_at, UTC),
        latest=bool(latest),
    )
