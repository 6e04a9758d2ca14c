"""What a call does with a config whose job ran before, as its options say (docs/design.md section 12.2).

The seed's rule is the default: a completed job is served from cache, one in progress is joined, a failed one
is submitted again. ``resubmit`` narrows the last (``retriable``: only a failure the retry policy would retry;
``never``: the failed job is answered as it is), and ``force`` runs a completed job again.
"""

from __future__ import annotations

from ..domain import status as st
from ..domain.errors import InvalidInputError, MethodSpecError
from ..domain.methods import check_retry_caps
from ..domain.retries import RetryPolicy, SubmitOptions
from ..domain.status import Outcome


def decide(previous: str | None, options: SubmitOptions, policy: RetryPolicy) -> Outcome:
    """The outcome of a config whose key's latest job has status ``previous`` (None: no job yet)."""
    if previous is None:
        return st.NEW
    if previous == st.COMPLETED:  # first: the usual answer of a cell run again
        return st.RERUN if options.force else st.CACHED
    if previous in st.IN_PROGRESS_CODES:
        return st.JOINED
    if options.force or options.resubmit == "failed":
        return st.RESUBMITTED
    if options.resubmit == "retriable" and previous in policy.on:
        return st.RESUBMITTED
    return st.KEPT_FAILURE


def check_options(options: SubmitOptions) -> None:
    """A call's retry caps must read as a time and a memory size (InvalidInputError naming the field)."""
    try:
        check_retry_caps(options.retry)
    except MethodSpecError as exc:
        raise InvalidInputError(str(exc)) from None
