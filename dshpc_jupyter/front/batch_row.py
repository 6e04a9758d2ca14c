"""One config of a batch and where it is now: the row every view shows, and the one definition of its status,
output, error and state (:mod:`.batch_columns` keeps the same values as columns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..domain import status as st
from ..domain.models import JobRecord, MultiJobResult

QUEUED_MESSAGE: Final = "Queued (held back by --concurrency)"


@dataclass(frozen=True, slots=True)
class Row:
    """One config of the batch and where it is now."""

    index: int
    config: Mapping[str, Any]
    result: MultiJobResult | None
    job: JobRecord | None
    state: st.RowState

    @property
    def status(self) -> str | None:
        return row_status(self.result, self.job)

    @property
    def output(self) -> str | None:
        return row_output(self.result, self.job)

    @property
    def message(self) -> str:
        return row_message(self.result)

    @property
    def error(self) -> str | None:
        """Why it failed: the job's error text, or the service's message for a config that got no job."""
        return row_error(self.result, self.job, self.state)

    @property
    def duration(self) -> float | None:
        """Run time in seconds (start to end), once the job has ended."""
        if self.job is None or self.job.started_at is None or self.job.finished_at is None:
            return None
        return (self.job.finished_at - self.job.started_at).total_seconds()


def row_state(result: MultiJobResult | None, job: JobRecord | None, dry_run: bool) -> st.RowState:
    if result is None:
        return st.row_state(None, None, False)
    code = job.status if job is not None else result.new_status
    return st.row_state(result.outcome, code, result.job_id is not None, dry_run)


# The values of a row, as functions of its result and its job's record: :class:`Row`'s properties, and the
# columns (:mod:`.batch_columns`) filled from them without a Row per change.


def row_status(result: MultiJobResult | None, job: JobRecord | None) -> str | None:
    if job is not None:
        return job.status
    return result.new_status if result is not None else None


def row_output(result: MultiJobResult | None, job: JobRecord | None) -> str | None:
    if job is not None and job.output is not None:
        return job.output
    return result.output if result is not None else None


def row_message(result: MultiJobResult | None) -> str:
    return result.message if result is not None else QUEUED_MESSAGE


def row_error(result: MultiJobResult | None, job: JobRecord | None, state: st.RowState) -> str | None:
    if job is not None and job.error:
        return job.error
    if state == "error":
        return row_message(result)
    return None
