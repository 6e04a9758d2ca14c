"""Summary views of a Batch (its statistics, the service's batches as a table) and the parameter defaults its
frames fill in (:mod:`.batch_frames`): computed from snapshots of its rows, no I/O here (the defaults are
fetched by the Batch and handed in as :class:`ParameterDefaults`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ..domain import status as st
from ..domain.models import BatchStatistics, BatchSummary, LiveCounts, MethodInfo
from .batch_row import Row
from .batch_state import SEED_STATISTICS
from .sweep import did_you_mean

if TYPE_CHECKING:
    import pandas as pd


#: How a row got its job, as the live table says it after the row state ("failed (kept)", "pending (rerun)").
OUTCOME_LABELS: dict[str, str] = {
    "cached": "cached", "new": "new", "resubmitted": "resubmitted", "in_progress": "joined", "rerun": "rerun",
    "failed": "kept",
}  # fmt: skip


@dataclass(frozen=True)
class BatchStats(Mapping[str, Any]):
    """The seed's six statistics (summed over every sending) and where the batch is now; also a read-only
    mapping of the same names (``stats["completed_jobs"]``, ``dict(stats)``), as a pandas user tries first.

    Live counts are per config (row): ``pending + running + completed + failed + cancelled + errors + queued +
    dry_run_rows == configs`` (``dry_run_rows``: the rows of a dry run that would be submitted, never errors).
    ``throughput`` counts jobs that ended since the batch was submitted, per second; ``eta`` is in seconds.
    """

    total_jobs: int
    successful_submissions: int
    failed_submissions: int
    completed_jobs: int
    in_progress_jobs: int
    resubmitted_jobs: int
    configs: int
    pending: int
    running: int
    completed: int
    failed: int
    errors: int
    queued: int
    cached: int
    elapsed: float
    throughput: float | None
    eta: float | None
    done: bool
    dry_run: bool
    dry_run_rows: int = 0
    #: Configs whose job was cancelled (``CA``): counted here, not in ``failed``.
    cancelled: int = 0
    #: Configs whose failed job was kept, not run again (``resubmit``; docs/design.md section 12.2).
    kept_failures: int = 0
    #: Configs whose completed job runs again (``force``).
    reruns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, name: str) -> Any:
        if name not in self.__dataclass_fields__:
            hint = did_you_mean(name, self.__dataclass_fields__).strip() or f"(one of {', '.join(self)})"
            raise KeyError(f"{name!r}: not a batch statistic {hint}")
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.__dataclass_fields__)

    def __len__(self) -> int:
        return len(self.__dataclass_fields__)

    def summary(self) -> str:
        """One line for people."""
        if self.dry_run:
            joined = self.in_progress_jobs - self.successful_submissions
            new = self.successful_submissions - self.resubmitted_jobs
            new -= self.reruns
            invalid = self.failed_submissions - self.kept_failures
            optional = "".join(f", {n} {word}" for n, word in ((self.kept_failures, "failed kept"),
                                                               (self.reruns, "cached rerun")) if n)  # fmt: skip
            return (
                f"dry run: {self.configs} configs: {self.completed_jobs} cached, {joined} in progress, {new} new, "
                f"{self.resubmitted_jobs} resubmitted, {invalid} invalid{optional}; nothing was submitted"
            )
        parts = [f"{self.configs} configs", f"{self.completed} completed ({self.cached} cached)"]
        parts += [f"{n} {word}" for n, word in ((self.running, "running"), (self.pending, "pending"),
                                                (self.queued, "queued")) if n]  # fmt: skip
        parts += [f"{self.failed} failed", *([f"{self.cancelled} cancelled"] if self.cancelled else []),
                  f"{self.errors} errors"]  # fmt: skip
        parts += [f"{n} {word}" for n, word in ((self.resubmitted_jobs, "resubmitted"),
                                                (self.kept_failures, "failed kept"),
                                                (self.reruns, "cached rerun")) if n]  # fmt: skip
        if self.done:
            parts.append(f"done in {_seconds(self.elapsed)}")
        else:
            parts.append(f"{_seconds(self.elapsed)} elapsed")
            if self.throughput:
                parts.append(f"{self.throughput:.2g} jobs/s")
            if self.eta is not None:
                parts.append(f"ETA {_seconds(self.eta)}")
        return " · ".join(parts)


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(int(value), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def batch_stats(
    rows: Sequence[Row], statistics: BatchStatistics, *, submitted_at: float, done: bool, dry_run: bool
) -> BatchStats:
    """The statistics of a snapshot of rows; throughput and ETA from the jobs that ended since ``submitted_at``."""
    counts = dict.fromkeys(("pending", "running", "completed", "failed", "errors", "queued"), 0)
    ended_since_submit = dry_run_rows = cancelled = 0
    last_end = submitted_at
    for row in rows:
        if row.state == "in progress":
            counts[st.live_count(row.status)] += 1
        elif row.state == "queued":
            counts["queued"] += 1
        elif row.state == "failed" and row.status == st.CANCELLED:
            cancelled += 1
        elif row.state == "dry run":
            dry_run_rows += 1
        elif row.state == "error":
            counts["errors"] += 1
        else:
            counts[row.state] += 1
        if row.job is not None and row.job.finished_at is not None:
            end = row.job.finished_at.timestamp()
            if end >= submitted_at:
                ended_since_submit += 1
                last_end = max(last_end, end)
    elapsed = max(0.0, (last_end if done else time.time()) - submitted_at)
    throughput = ended_since_submit / elapsed if elapsed > 0 and ended_since_submit else None
    remaining = counts["pending"] + counts["running"] + counts["queued"]
    return BatchStats(
        **statistics.model_dump(),
        configs=len(rows),
        **counts,
        cached=sum(1 for r in rows if r.result is not None and r.result.outcome == st.CACHED),
        elapsed=elapsed,
        throughput=throughput,
        eta=remaining / throughput if throughput and remaining else (0.0 if done else None),
        done=done,
        dry_run=dry_run,
        dry_run_rows=dry_run_rows,
        cancelled=cancelled,
        kept_failures=sum(1 for r in rows if r.result is not None and r.result.outcome == st.KEPT_FAILURE),
        reruns=sum(1 for r in rows if r.result is not None and r.result.outcome == st.RERUN),
    )


@dataclass
class ParameterDefaults:
    """function_hash -> {parameter: default} of the service's methods, as last fetched (``None``: not fetched);
    ``error`` says why the last fetch failed (the per-parameter columns then hold the given values only)."""

    by_function: dict[str, dict[str, Any]] | None = None
    error: str | None = None

    def learn(self, methods: Iterable[MethodInfo]) -> None:
        self.by_function = {m.function_hash: {p.name: p.default for p in m.parameters} for m in methods}
        self.error = None

    def failed(self, error: Exception) -> None:
        self.error = f"{type(error).__name__}: {error}"

    def covers(self, function_hashes: Iterable[str]) -> bool:
        """Whether every one of these methods' defaults is known (asking the service again would add nothing)."""
        known = self.by_function
        return known is not None and all(h in known for h in function_hashes)

    def of(self, row: Row) -> dict[str, Any]:
        """The row's parameters: those given, over its method's defaults."""
        given = row.config.get("parameters") or {}
        if not isinstance(given, dict) and not isinstance(given, Mapping):  # the cheap check first: dicts
            return {}
        function_hash = row.result.function_hash if row.result is not None else None
        known = (self.by_function or {}).get(function_hash or "", {})
        return {**known, **given}


def batches_frame(summaries: Sequence[BatchSummary], live: Sequence[LiveCounts | None] = ()) -> pd.DataFrame:
    """The service's batches as a table: id, name, creation time, the seed's six statistics (as at submission) and,
    where ``live`` gives them, where the batch's configs are now (``pending`` ... ``errors``; ``state``:
    ``done`` once nothing is pending or running); ``owner`` after ``name`` when any batch has one (a server for
    a team)."""
    import pandas as pd

    now = list(live) + [None] * (len(summaries) - len(live))
    current = tuple(LiveCounts.model_fields)
    columns = ["batch_id", "name", "created_at", "state", *current, *SEED_STATISTICS]
    frame = pd.DataFrame(
        [{"batch_id": s.batch_id, "name": s.name, "created_at": s.created_at, **s.statistics.model_dump(),
          **(counts.model_dump() if counts is not None else dict.fromkeys(current)),
          "state": None if counts is None else ("running" if counts.pending or counts.running else "done")}
         for s, counts in zip(summaries, now, strict=True)],
        columns=columns,
    )  # fmt: skip
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    if any(s.owner is not None for s in summaries):
        frame.insert(2, "owner", [s.owner for s in summaries])
    return frame
