"""Which pending job starts next (docs/design.md section 13.2): by priority, then fair share across the queue
groups (batches) of equal priority, then in submission order.

Fair share is kept as a rank stored with each job when it is inserted, so claiming stays one indexed query
however long the queue. The jobs of a group get consecutive ranks (one turn each), and groups take turns at
equal rank: round-robin. A new group starts ``HEAD_START`` turns before the current turn (the rank of the
oldest pending job: where the longest-waiting batch is now), so a batch of 8 submitted behind one of 2,000
runs at once, and a big newcomer runs ``HEAD_START`` jobs and then alternates with the old batch, which is
never held back by more than ``HEAD_START`` jobs per newcomer. A group that adds jobs later (a batch sent in
chunks) continues after its own last rank.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Protocol

from ..domain import status as st

#: The order of the queue: what ``claim_pending`` takes first and what ``queue_position`` counts.
QUEUE_ORDER = "priority DESC, queue_rank, seq"
PENDING = f"status = '{st.PENDING}'"
#: The condition of the index of jobs in progress (``jobs_active``), spelled as it is, so a query may use it.
IN_PROGRESS = st.sql_set(st.IN_PROGRESS_ORDER)
#: Priorities a call may give: Slurm's ``--nice`` takes far more, but a queue needs only an order.
PRIORITY_RANGE = range(-10_000, 10_001)
#: Turns a new batch gets before it alternates with the batches already waiting (see above).
HEAD_START = 32
# Spelled from the constants above, never from data (every value is a ``?`` parameter).
#: The current turn is the rank of the oldest job not started yet: pending, or claimed by a worker that has not
#: started it (one kept ready, see ``local_worker.READY_S``): each part is read through its own index.
FIRST_RANK_SQL = (
    "SELECT (SELECT queue_rank FROM ("  # noqa: S608
    f"SELECT * FROM (SELECT queue_rank, seq FROM jobs WHERE scheduler = ? AND {PENDING} AND priority = ?"
    " ORDER BY seq LIMIT 1)"
    f" UNION ALL SELECT queue_rank, seq FROM jobs WHERE scheduler = ? AND status IN {IN_PROGRESS}"
    f" AND status = '{st.STARTING}' AND priority = ?"
    ") ORDER BY seq LIMIT 1),"
    f" (SELECT MAX(queue_rank) FROM jobs WHERE queue_group = ? AND {PENDING})"
)
POSITIONS_SQL = (
    f"SELECT job_id, position FROM (SELECT job_id, ROW_NUMBER() OVER (ORDER BY {QUEUE_ORDER}) AS position"  # noqa: S608
    f" FROM jobs WHERE scheduler = ? AND {PENDING}) WHERE job_id IN (SELECT value FROM json_each(?))"
)


class Queued(Protocol):
    """A new job as the queue sees it (``NewJob``)."""

    @property
    def scheduler(self) -> str: ...

    @property
    def priority(self) -> int: ...

    @property
    def queue_group(self) -> str | None: ...


def assign_ranks(conn: sqlite3.Connection, jobs: Sequence[Queued]) -> list[int]:
    """The round-robin rank of each new job, in order (the i-th job of a group at a priority gets base + i)."""
    bases: dict[tuple[str, int, str | None], int] = {}
    ranks = []
    for job in jobs:
        where = (job.scheduler, job.priority, job.queue_group)
        if where not in bases:
            bases[where] = _first_rank(conn, *where)
        ranks.append(bases[where])
        bases[where] += 1
    return ranks


def _first_rank(conn: sqlite3.Connection, scheduler: str, priority: int, group: str | None) -> int:
    turn, last = conn.execute(FIRST_RANK_SQL, (scheduler, priority, scheduler, priority, group)).fetchone()
    if last is not None:
        return int(last) + 1
    return 0 if turn is None else int(turn) - HEAD_START


def queue_positions(conn: sqlite3.Connection, scheduler: str, job_ids: Sequence[str]) -> dict[str, int]:
    """The place (1 = next to start) in its scheduler's queue of each of these jobs that is pending."""
    rows = conn.execute(POSITIONS_SQL, (scheduler, json.dumps(list(job_ids))))
    return dict(rows.fetchall())
