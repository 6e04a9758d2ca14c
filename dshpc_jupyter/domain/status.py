"""The status vocabulary, defined once: job status codes (Slurm's, as the dsHPC seed uses them), their categories,
the outcome of a config, and the state word of a row of a batch.

Every other module asks this one what a word means: the store derives its SQL sets from these tuples, the runner
and the schedulers write these constants, and the front shows these states. It imports only the standard
library, because the runner (which runs on compute nodes) imports it. docs/design.md section 2 is its prose.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal, get_args


class Category(StrEnum):
    """What a status means for the per-config logic of ``simulate-jobs``."""

    COMPLETED = "completed"
    IN_PROGRESS = "in progress"
    FAILED = "failed"


# --- job status codes ------------------------------------------------------------------------------------

COMPLETED: Final = "CD"
PENDING: Final = "PD"
RUNNING: Final = "R"
COMPLETING: Final = "CG"
CONFIGURING: Final = "CF"
FAILED: Final = "F"
CANCELLED: Final = "CA"
TIMEOUT: Final = "TO"
NODE_FAIL: Final = "NF"
OUT_OF_MEMORY: Final = "OOM"
BOOT_FAIL: Final = "BF"
DEADLINE: Final = "DL"
PREEMPTED: Final = "PR"

#: A job a local worker has claimed and is starting: Slurm's "configuring" (resources given, not yet running)
#: is exactly that state, so the claim is this code, named for what it means here.
STARTING: Final = CONFIGURING

#: In progress, in a fixed order (the store's SQL sets and partial indexes are spelled from these tuples).
IN_PROGRESS_ORDER: Final = (PENDING, RUNNING, COMPLETING, CONFIGURING)
#: Not started yet: pending, or claimed by a worker that has not started its runner.
NOT_STARTED_ORDER: Final = (PENDING, STARTING)
#: At most one job per job key may be in one of these at a time (the cache holds it, or it is on its way).
LIVE_ORDER: Final = (COMPLETED, *IN_PROGRESS_ORDER)
FAILED_ORDER: Final = (FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, PREEMPTED)

IN_PROGRESS_CODES: Final = frozenset(IN_PROGRESS_ORDER)
NOT_STARTED_CODES: Final = frozenset(NOT_STARTED_ORDER)
FAILED_CODES: Final = frozenset(FAILED_ORDER)
ALL_CODES: Final = frozenset({COMPLETED}) | IN_PROGRESS_CODES | FAILED_CODES

DESCRIPTIONS: Final[dict[str, str]] = {
    COMPLETED: "completed",
    PENDING: "pending",
    RUNNING: "running",
    COMPLETING: "completing",
    CONFIGURING: "configuring",
    FAILED: "failed (non-zero exit)",
    CANCELLED: "cancelled",
    TIMEOUT: "time limit reached",
    NODE_FAIL: "node or runner lost",
    OUT_OF_MEMORY: "memory limit exceeded",
    BOOT_FAIL: "boot failure",
    DEADLINE: "deadline reached",
    PREEMPTED: "preempted",
}


def category(code: str) -> Category:
    """The category of a status code; unknown codes are a programming error."""
    if code == COMPLETED:
        return Category.COMPLETED
    if code in IN_PROGRESS_CODES:
        return Category.IN_PROGRESS
    if code in FAILED_CODES:
        return Category.FAILED
    raise ValueError(f"unknown job status code {code!r}")


def is_in_progress(code: str | None) -> bool:
    return code in IN_PROGRESS_CODES


def is_final(code: str | None) -> bool:
    """True once a job can no longer change state (completed or any failure)."""
    return code == COMPLETED or code in FAILED_CODES


def sql_set(codes: tuple[str, ...]) -> str:
    """A tuple of codes as an SQL list literal, ``('PD','R')``: the store splices these (never user data)."""
    assert all(code in ALL_CODES for code in codes)
    return "(" + ",".join(f"'{code}'" for code in codes) + ")"


# --- outcomes: what happened to one config of a call ----------------------------------------------------

Outcome = Literal["cached", "in_progress", "new", "resubmitted", "invalid", "refused", "rerun", "failed"]
"""Served from cache, joined a running job, submitted, resubmitted after a failure, rejected (unknown
method or file, invalid parameters), refused by the scheduler, run again although cached (``force``), or its
failed job kept and not run again (``resubmit`` said no)."""

OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)
CACHED: Final[Outcome] = "cached"
JOINED: Final[Outcome] = "in_progress"
NEW: Final[Outcome] = "new"
RESUBMITTED: Final[Outcome] = "resubmitted"
INVALID: Final[Outcome] = "invalid"
REFUSED: Final[Outcome] = "refused"
RERUN: Final[Outcome] = "rerun"
KEPT_FAILURE: Final[Outcome] = "failed"
#: Outcomes of a config that got no job: counted as ``failed_submissions``.
UNSERVED_OUTCOMES: Final[frozenset[Outcome]] = frozenset({INVALID, REFUSED})
#: Outcomes that created a job in this call: counted as ``successful_submissions``.
SUBMITTED_OUTCOMES: Final[frozenset[Outcome]] = frozenset({NEW, RESUBMITTED, RERUN})
#: Outcomes counted as ``failed_submissions``: no job, or only a failed one that does not run again.
FAILED_SUBMISSION_OUTCOMES: Final[frozenset[Outcome]] = UNSERVED_OUTCOMES | {KEPT_FAILURE}


# --- the state of a row of a batch (one config and where its job is now) --------------------------------

RowState = Literal["completed", "in progress", "failed", "error", "queued", "dry run"]
"""``queued``: not sent yet (held back by a concurrency limit); ``error``: sent, got no job; ``dry run``: what a
dry run would submit; else the category of its job's current status."""

ROW_STATES: Final[tuple[RowState, ...]] = get_args(RowState)
#: Row states that no longer change.
FINAL_ROW_STATES: Final = frozenset({"completed", "failed", "error", "dry run"})

LiveCount = Literal["pending", "running", "completed", "failed", "errors"]
"""Where a batch's configs are now, as counted in ``LiveCounts`` and ``BatchStats``."""


_DRY_RUN_STATES: Final[dict[str, RowState]] = {
    CACHED: "completed", JOINED: "in progress", INVALID: "error", KEPT_FAILURE: "failed",
}  # fmt: skip
_CATEGORY_STATES: Final[dict[Category, RowState]] = {
    Category.COMPLETED: "completed",
    Category.IN_PROGRESS: "in progress",
    Category.FAILED: "failed",
}


def row_state(outcome: Outcome | None, code: str | None, has_job: bool, dry_run: bool = False) -> RowState:
    """The state of one config: ``outcome`` of its call (None: not sent yet), ``code`` its job's current status
    (or the status it was given), ``has_job`` whether it got a job id."""
    if outcome is None:
        return "queued"
    if dry_run:
        return _DRY_RUN_STATES.get(outcome, "dry run")
    if not has_job or code is None:
        return "error"
    return _CATEGORY_STATES[category(code)]


def live_count(code: str | None) -> LiveCount:
    """The counter a config falls in, from its job's current status (None: it has no job)."""
    if code is None:
        return "errors"
    if code in NOT_STARTED_CODES:
        return "pending"
    if code in IN_PROGRESS_CODES:
        return "running"
    return "completed" if code == COMPLETED else "failed"
