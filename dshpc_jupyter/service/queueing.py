"""Priorities on submission and places in the queue on reading (docs/design.md section 13.2); the order itself
is the store's (:mod:`..store.queue`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..domain import status as st
from ..domain.errors import InvalidInputError
from ..domain.models import JobRecord
from ..store.queue import PRIORITY_RANGE
from ..store.sqlite import Store


class Queueing(NamedTuple):
    """Where the new jobs of one call queue: their priority, and the group they take turns as (the batch)."""

    priority: int
    queue_group: str


def check_priority(priority: object) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITY_RANGE:
        raise InvalidInputError(
            f"priority: must be an integer from {PRIORITY_RANGE.start} to {PRIORITY_RANGE.stop - 1}, not {priority!r}"
        )


def with_queue_positions(store: Store, records: Sequence[JobRecord]) -> list[JobRecord]:
    """The records with ``queue_position`` set on the pending ones (one query per scheduler that has any)."""
    pending: dict[str, list[str]] = {}
    for record in records:
        if record.status == st.PENDING:
            pending.setdefault(record.scheduler, []).append(record.job_id)
    if not pending:
        return list(records)
    positions = {
        job_id: position
        for scheduler, job_ids in pending.items()
        for job_id, position in store.queue_positions(scheduler, job_ids).items()
    }
    return [
        record.model_copy(update={"queue_position": positions[record.job_id]}) if record.job_id in positions else record
        for record in records
    ]
