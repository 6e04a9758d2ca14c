"""A batch's rows kept as plain values, ready to be columns: one flat tuple per row, made as answers and job
records arrive, and one transposition into a list per field when a view asks.

The pandas views (:mod:`.batch_frames`) start from these lists rather than from :class:`.Row` snapshots: a
view of 100,000 rows then costs what pandas does with its columns plus one ``zip``, not a Python pass per row
and per field (docs/design.md section 14.2). Each row's values are :class:`.Row`'s own (one
definition of status, output, error and state: :mod:`.batch_row`'s functions), made when its result or its job's
record changes, so a view reads them as they are.

Not thread-safe by itself: the batch state changes and copies it under its lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any, Final

from ..domain.models import JobRecord, MultiJobResult
from .batch_row import row_error, row_message, row_output, row_state, row_status

#: What :func:`row_values` gives, in order: each becomes a column of :class:`Columns`.
FIELDS: Final = (
    "job_id", "function_hash", "new_status", "old_status", "outcome", "message", "status", "output", "error", "state",
    "exit_code", "attempt", "created_at", "started_at", "finished_at", "queue_position", "output_files",
)  # fmt: skip


def row_values(result: MultiJobResult | None, job: JobRecord | None, dry_run: bool) -> tuple[Any, ...]:
    """A row's values (:data:`FIELDS`) from its result and its job's latest record: what :class:`.Row` gives
    (its functions), as one flat tuple made when either changes (this runs for every change a poll brings)."""
    state = row_state(result, job, dry_run)
    message, error = row_message(result), row_error(result, job, state)
    status, output = row_status(result, job), row_output(result, job)
    given = _NO_RESULT if result is None else _RESULT_FIELDS(result.__dict__)
    ran = _NO_JOB if job is None else _JOB_FIELDS(job.__dict__)
    return (*given, message, status, output, error, state, *ran)


# The fields read from the models' own dicts in one call each: a row is made at every change, and a poll may
# bring 100,000 (field by field, the reads of 100,000 scattered records cost about twice as much).
_RESULT_FIELDS: Final = itemgetter(*FIELDS[:5])
_JOB_FIELDS: Final = itemgetter(*FIELDS[10:])
_NO_RESULT: Final = (None,) * 5
_NO_JOB: Final = (None,) * 7


class RowValues:
    """Each row's values as one tuple, in request order (replaced, never changed in place), with the columns
    that come from the configs alone (which never change). The batch state changes it under its lock."""

    def __init__(self, configs: Sequence[Mapping[str, Any]]) -> None:
        self.values = [row_values(None, None, False)] * len(configs)
        self.method_name = [config.get("method_name") for config in configs]
        self.file_hash = [config.get("file_hash") for config in configs]
        self.parameters = [config.get("parameters", {}) for config in configs]


@dataclass(frozen=True, slots=True)
class Columns:
    """One list per field, one entry per config in request order (``None``: the row has no such value yet)."""

    method_name: list[Any]
    file_hash: list[Any]
    parameters: list[Any]
    job_id: list[str | None]
    function_hash: list[str | None]
    new_status: list[str | None]
    old_status: list[str | None]
    outcome: list[str | None]
    message: list[str]
    status: list[str | None]
    output: list[str | None]
    error: list[str | None]
    state: list[str]
    exit_code: list[int | None]
    attempt: list[int | None]
    created_at: list[datetime | None]
    started_at: list[datetime | None]
    finished_at: list[datetime | None]
    queue_position: list[int | None]
    #: The job's ``{path: hash}`` as recorded (shared with the record: copy before handing it out).
    output_files: list[dict[str, str] | None]

    @classmethod
    def of(cls, table: RowValues, values: Sequence[tuple[Any, ...]]) -> Columns:
        """The columns of ``values`` (a copy of ``table.values``): one transposition, no pass per field."""
        transposed = [list(column) for column in zip(*values, strict=True)] if values else [[] for _ in FIELDS]
        return cls(table.method_name, table.file_hash, table.parameters, **dict(zip(FIELDS, transposed, strict=True)))


@dataclass(frozen=True, slots=True)
class ColumnsSnapshot:
    """What a view is built from: the configs, a copy of the columns, the version they were taken at, and the
    version of the answers alone (it moves when a sending is answered, not when a job changes)."""

    configs: Sequence[Mapping[str, Any]]
    columns: Columns
    version: int
    results_version: int
    #: Every input name the configs give (``file_inputs``), in the order first met.
    input_names: Sequence[str]
