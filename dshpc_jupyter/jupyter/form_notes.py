"""What the form says about a submission: beside Submit (what the service did with it), and above the pending
list once its configs were sent, so a person never wonders whether they still have to press Submit."""

from __future__ import annotations

import html

from ..front.batch import Batch

OK_STYLE = "color:#1e7d32"


def submission_text(batch: Batch) -> str:
    """What the service did with a submission: new jobs, and the ones it already had."""
    s = batch.stats
    joined = s.in_progress_jobs - s.successful_submissions
    why = [(s.resubmitted_jobs, "after a failure"), (s.reruns, "rerun although cached")]  # the options' doing
    after = "".join(f" ({n} {words})" for n, words in why if n)
    invalid = s.failed_submissions - s.kept_failures
    text = (
        f"batch {batch.batch_id}: {s.total_jobs} config(s) → {s.successful_submissions} new job(s){after}, "
        f"{s.completed_jobs} from the cache, {joined} joined running jobs, {invalid} invalid"
    )
    if s.kept_failures:
        text += f", {s.kept_failures} failed kept (not run again)"
    if s.successful_submissions < s.total_jobs - s.failed_submissions:
        text += " · nothing runs twice"
    return text


def submitted_note(count: int, batch_id: str | None) -> str:
    """The pending list's first line once every config in it was submitted (until it changes)."""
    text = (
        f"✓ submitted: these {count} config(s) were sent as batch {batch_id} (its table is under Submit); "
        "Submit again joins the same jobs, Clear all starts a new set"
    )
    return f'<span class="dshpc-form-submitted" style="{OK_STYLE}">{html.escape(text)}</span>'


__all__ = ["submission_text", "submitted_note"]
