"""Jobs in progress per user (docs/design.md section 11.4): over a user's ``max_running``, new jobs wait rather
than being refused, and are handed to the scheduler in order as the user's jobs end.

A waiting job is recorded like any new job (``PD``, the caller's), with ``scheduler`` set to ``quota`` instead
of a real scheduler's name: no worker claims it and no cluster hears of it, it is found by its key (so an
identical config joins it), cancelled like any pending job, and counted as in progress. :func:`release` moves
the oldest waiting jobs of each user under their limit to the engine's scheduler, in one write transaction.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable

from ..domain.jobs import ClaimedJob
from ..domain.models import MethodSpec
from ..schedulers.base import Submission
from ..store.sqlite import NewJob
from ..store.team import HELD, TeamStore, active_jobs
from .identity import Caller

NewJobs = list[tuple[NewJob, Submission]]


def hold(conn: sqlite3.Connection, caller: Caller, new_jobs: NewJobs) -> tuple[NewJobs, list[NewJob]]:
    """Split a call's new jobs into those the scheduler gets now and those that wait (recorded held), inside
    the call's write transaction. Jobs of an owner who already has some waiting wait behind them."""
    if caller.name is None or caller.max_running is None or not new_jobs:
        return new_jobs, []
    running, waiting = active_jobs(conn, caller.name)
    room = 0 if waiting else max(0, caller.max_running - running)
    held = [dataclasses.replace(job, scheduler=HELD) for job, _ in new_jobs[room:]]
    return new_jobs[:room], held


def release(table: TeamStore, limit_of: Callable[[str], int | None], scheduler: str) -> list[Submission]:
    """Release the waiting jobs that now fit under their owners' limits; what to hand to ``scheduler``."""
    owners = table.held_owners()
    if not owners:
        return []
    claimed = table.release_held({owner: limit_of(owner) for owner in owners}, scheduler)
    return [_submission(job) for job in claimed]


def _submission(job: ClaimedJob) -> Submission:
    inputs = None if job.file_inputs is None else json.loads(job.file_inputs)
    spec = MethodSpec.model_validate_json(job.spec)
    parameters = json.loads(job.parameters)
    return Submission(job.job_id, job.file_hash, job.function_hash, spec, parameters, inputs, priority=job.priority)
