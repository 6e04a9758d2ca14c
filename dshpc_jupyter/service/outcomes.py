"""What each config's outcome is called in a response, and the seed's batch statistics counted from outcomes."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain import status as st
from ..domain.models import BatchStatistics, ResultRow

MSG_COMPLETED = "Completed job found"
MSG_IN_PROGRESS = "Job in progress"
MSG_NEW = "New job submitted"
MSG_RESUBMITTED = "New job submitted after previous failure"
MSG_RERUN = "Completed job found; run again (force)"
MSG_KEPT_FAILURE = "Failed job found; not resubmitted (resubmit={mode})"
DRY_MESSAGES: dict[str, str] = {
    "new": "Would submit a new job",
    "resubmitted": "Would resubmit after previous failure",
    "in_progress": MSG_IN_PROGRESS,
    "cached": MSG_COMPLETED,
    "shared": "Would share the job of an identical config in this batch",
    "rerun": "Completed job found; would run again (force)",
    "failed": MSG_KEPT_FAILURE,
}
LIVE_MESSAGES: dict[str, str] = {
    "new": MSG_NEW,
    "resubmitted": MSG_RESUBMITTED,
    "in_progress": MSG_IN_PROGRESS,
    "cached": MSG_COMPLETED,
    "shared": MSG_IN_PROGRESS,
    "rerun": MSG_RERUN,
    "failed": MSG_KEPT_FAILURE,
}


def statistics(results: Sequence[ResultRow]) -> BatchStatistics:
    """The seed's six statistics, from the outcomes (docs/design.md section 3: they add up; a failed job kept
    by ``resubmit`` counts as a failed submission, a forced rerun as a successful one)."""
    counts = dict.fromkeys(st.OUTCOMES, 0)
    for result in results:
        counts[result["outcome"]] += 1
    submitted = sum(counts[o] for o in st.SUBMITTED_OUTCOMES)
    return BatchStatistics(
        total_jobs=len(results),
        completed_jobs=counts[st.CACHED],
        in_progress_jobs=counts[st.JOINED] + submitted,
        failed_submissions=sum(counts[o] for o in st.FAILED_SUBMISSION_OUTCOMES),
        successful_submissions=submitted,
        resubmitted_jobs=counts[st.RESUBMITTED],
    )


def refused(row: ResultRow, reason: str) -> ResultRow:
    return row | {"outcome": "refused", "new_status": st.FAILED, "message": f"Submission failed: {reason}"}
