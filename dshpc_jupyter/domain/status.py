"""Job status codes (Slurm's two-letter codes, as the dsHPC seed uses them) and their categories.

Every other module asks this one what a code means, so the categories are defined exactly once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Category(StrEnum):
    """What a status means for the per-config logic of ``simulate-jobs``."""

    COMPLETED = "completed"
    IN_PROGRESS = "in progress"
    FAILED = "failed"


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

IN_PROGRESS_CODES: Final = frozenset({PENDING, RUNNING, COMPLETING, CONFIGURING})
FAILED_CODES: Final = frozenset({FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE, PREEMPTED})
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
