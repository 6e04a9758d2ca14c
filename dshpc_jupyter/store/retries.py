"""Automatic retries, applied where a failure is recorded (docs/design.md section 12.1).

Every failure a scheduler or the local worker reports reaches the store through ``apply_updates``; inside its
write transaction, :func:`requeue_retries` takes out the failures their job's policy retries and puts those jobs
back to ``PD`` (same ``job_id``), with the attempt that ended appended to ``attempts`` and more memory (``OOM``)
or time (``TO``) for the next one. Whoever ingested the failure, both schedulers retry the same way, and the
partial unique index never sees a second live job: the job stays live throughout.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sqlite3
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from ..domain import status as st
from ..domain.jobs import JobUpdate
from ..domain.methods import parse_memory_limit, parse_time_limit
from ..domain.models import MethodSpec
from ..domain.retries import DEFAULT_POLICY, RETRIABLE_CODES, RetryPolicy, last_line
from .schema import ACTIVE_SET

_CANDIDATES_SQL = (
    "SELECT j.job_id, j.attempt, j.attempts, j.retry, j.resources, m.spec, j.cancel_requested, j.started_at,"
    " j.scheduler FROM jobs AS j LEFT JOIN methods AS m ON m.function_hash = j.function_hash"
    f" WHERE j.job_id IN (SELECT value FROM json_each(?)) AND j.status IN {ACTIVE_SET}"
)
_REQUEUE_SQL = (
    "UPDATE jobs SET status = ?, attempt = attempt + 1, attempts = ?, resources = ?, not_before = ?,"
    " scheduler_id = NULL, started_at = NULL, finished_at = NULL, exit_code = NULL, error = NULL, output = NULL,"
    f" output_files = NULL WHERE job_id = ? AND status IN {ACTIVE_SET}"
)


def requeue_retries(conn: sqlite3.Connection, updates: Sequence[JobUpdate]) -> list[JobUpdate]:
    """Requeue the jobs whose failure their policy retries (in the caller's transaction); the other updates,
    to apply as they are. A job flagged for cancellation is never retried: someone decided it should stop."""
    failures = {u.job_id: u for u in updates if u.status in RETRIABLE_CODES and u.retriable}
    if not failures:
        return list(updates)
    now = time.time()
    requeued: list[tuple[str, str, str, float, str]] = []
    for job_id, attempt, attempts, retry, resources, spec, cancelled, started_at, scheduler in conn.execute(
        _CANDIDATES_SQL, (json.dumps(list(failures)),)
    ):
        update = failures[job_id]
        policy = DEFAULT_POLICY if retry is None else _policy(retry)
        if cancelled or not policy.retries(update.status, attempt):
            continue
        used = json.loads(resources) if resources else _spec_resources(spec)
        ended = {  # an Attempt, as its JSON
            "attempt": attempt, "status": update.status, "exit_code": update.exit_code,
            "reason": last_line(update.error), "started_at": _iso(update.started_at or started_at),
            "finished_at": _iso(update.finished_at or now), "resources": used,
        }  # fmt: skip
        history = json.dumps([*json.loads(attempts or "[]"), ended])
        raised = json.dumps(next_resources(used, update.status, policy, local=scheduler == "local"))
        requeued.append((st.PENDING, history, raised, now + policy.backoff, job_id))
    conn.executemany(_REQUEUE_SQL, requeued)
    retried = {row[-1] for row in requeued}
    return [u for u in updates if u.job_id not in retried]


def next_resources(used: dict[str, str], code: str, policy: RetryPolicy, *, local: bool) -> dict[str, str]:
    """The next attempt's ``time`` and ``mem``: an ``OOM`` attempt's memory times ``mem_factor``, a ``TO``
    attempt's time times ``time_factor``, each capped by the policy (and a local job's memory by this
    machine's); an attempt that had no limit keeps none."""
    raised = dict(used)
    mem = parse_memory_limit(used.get("mem"))
    if code == st.OUT_OF_MEMORY and mem is not None:
        caps = [parse_memory_limit(policy.max_mem), _physical_memory() if local else None]
        mebibytes = [math.ceil(mem * policy.mem_factor / 2**20), *(c >> 20 for c in caps if c is not None)]
        raised["mem"] = f"{max(min(mebibytes), 1)}M"
    seconds = parse_time_limit(used.get("time"))
    if code == st.TIMEOUT and seconds is not None:
        cap = parse_time_limit(policy.max_time)
        raised["time"] = slurm_time(min(seconds * policy.time_factor, cap if cap is not None else math.inf))
    return raised


def slurm_time(seconds: float) -> str:
    """Seconds as a Slurm time, ``M:SS`` or ``H:MM:SS``, rounded up."""
    whole = max(math.ceil(seconds), 1)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@functools.lru_cache(maxsize=256)
def _policy(text: str) -> RetryPolicy:
    """A stored policy (a batch's jobs share one: parsed once)."""
    return RetryPolicy.model_validate_json(text)


def _spec_resources(spec: str | None) -> dict[str, str]:
    return {} if spec is None else dict(_limits(spec))


@functools.lru_cache(maxsize=256)
def _limits(spec: str) -> tuple[tuple[str, str], ...]:
    """The ``time`` and ``mem`` of a stored spec (parsed once per method version)."""
    resources = MethodSpec.model_validate_json(spec).resources
    return tuple((k, v) for k, v in (("time", resources.time), ("mem", resources.mem)) if v is not None)


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None


def _iso(epoch: float | None) -> str | None:
    """A time as the records' JSON spells it (what ``Attempt`` reads back)."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()
