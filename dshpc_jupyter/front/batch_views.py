"""Pandas and summary views of a Batch, computed from snapshots of its rows: no I/O here (the parameter defaults
are fetched by the Batch and handed in as :class:`ParameterDefaults`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ..domain import status as st
from ..domain.bulk import no_gc_pauses
from ..domain.models import BatchStatistics, BatchSummary, LiveCounts, MethodInfo
from .batch_state import SEED_STATISTICS, Row
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


def rows_frame(rows: Sequence[Row], defaults: ParameterDefaults) -> pd.DataFrame:
    """One row per config in request order: the seed's result fields, the job's current state and timings,
    and one column per parameter (defaults filled in from the method's spec).

    Built column by column from plain lists (categories made once per column, durations from the two time
    columns), with the garbage collector paused: 100,000 rows in well under a second (bench/views.py)."""
    import pandas as pd

    with no_gc_pauses():
        # The models' field dicts: a dict lookup per cell instead of an attribute lookup through the model's class
        results = [{} if r.result is None else r.result.__dict__ for r in rows]
        jobs = [{} if r.job is None else r.job.__dict__ for r in rows]
        configs = [r.config for r in rows]

        def of_results(name: str) -> list[Any]:
            return [r.get(name) for r in results]

        def of_jobs(name: str) -> list[Any]:
            return [j.get(name) for j in jobs]

        outcomes = of_results("outcome")
        started, finished = _times(of_jobs("started_at")), _times(of_jobs("finished_at"))
        columns: dict[str, Any] = {
            "job_id": of_results("job_id"),
            "method_name": pd.Categorical([c.get("method_name") for c in configs]),
            "file_hash": pd.Categorical([c.get("file_hash") for c in configs]),
            "function_hash": pd.Categorical(of_results("function_hash")),
            "parameters": [c.get("parameters", {}) for c in configs],
            "new_status": pd.Categorical(of_results("new_status")),
            "old_status": pd.Categorical(of_results("old_status")),
            "message": pd.Categorical([r.message for r in rows]),
            "output": [r.output for r in rows],
            "outcome": pd.Categorical(outcomes, categories=st.OUTCOMES),
            "status": pd.Categorical([r.status for r in rows]),
            "state": pd.Categorical([r.state for r in rows], categories=st.ROW_STATES),
            "cached": [outcome == st.CACHED for outcome in outcomes],
            "error": [r.error for r in rows],
            "exit_code": pd.array(of_jobs("exit_code"), dtype="Int64"),
            "attempt": pd.array(of_jobs("attempt"), dtype="Int64"),
            "submitted_at": _times(of_jobs("created_at")),
            "started_at": started,
            "finished_at": finished,
            "queue_position": pd.array(of_jobs("queue_position"), dtype="Int64"),
            "duration": pd.array((finished - started).dt.total_seconds(), dtype="Float64"),
        }
        frame = pd.DataFrame(columns)
        for name, values in _parameter_columns(rows, defaults).items():
            column = name if name not in frame.columns else f"param_{name}"
            frame[column] = pd.Series(values, dtype="category" if _all_strings(values) else None)
    return frame


def _parameter_columns(rows: Sequence[Row], defaults: ParameterDefaults) -> dict[str, list[Any]]:
    """Each parameter's values, a column per name in the order first met: those given, over the method's
    defaults (what :meth:`ParameterDefaults.of` gives one row), without building a merged dict per row."""
    known_of = defaults.by_function or {}
    pairs: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = []
    for row in rows:
        given = row.config.get("parameters") or {}
        if not isinstance(given, Mapping):
            pairs.append(({}, {}))
            continue
        function_hash = row.result.function_hash if row.result is not None else None
        pairs.append((given, known_of.get(function_hash or "", {})))
    names: dict[str, None] = {}
    last: Mapping[str, Any] | None = None
    for given, known in pairs:
        if known is not last:  # consecutive rows mostly share a method's defaults: its names are added once
            names.update(dict.fromkeys(known))
            last = known
        if not given.keys() <= known.keys():  # a name the defaults lack (invalid, or defaults unknown)
            names.update(dict.fromkeys(given))
    return {name: [g[name] if name in g else k.get(name) for g, k in pairs] for name in names}


def outputs_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The JSON outputs of a :func:`rows_frame` as columns beside each config's method, file and parameters,
    same index; an output column named like one of those gets ``output.`` in front. Outputs that are not JSON
    objects land in ``value`` (other JSON) or ``text`` (not JSON). Nested objects are flattened
    (``pandas.json_normalize``: ``a.b``); flat ones, the usual case, go straight to a frame, several times
    faster."""
    import pandas as pd

    keep = ["method_name", "file_hash", *frame.columns[list(frame.columns).index("duration") + 1 :]]
    with no_gc_pauses():
        parsed = [
            _parse_output(out) if state == "completed" else {}
            for out, state in zip(frame["output"], frame["state"], strict=True)
        ]
        if not any(parsed):
            outputs = pd.DataFrame(index=range(len(parsed)))
        elif any(isinstance(value, dict) for output in parsed for value in output.values()):
            outputs = pd.json_normalize(parsed)
        else:
            outputs = pd.DataFrame(parsed)
    outputs.index = frame.index
    outputs.columns = [f"output.{c}" if c in keep else str(c) for c in outputs.columns]
    return pd.concat([frame[keep], outputs], axis=1)


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


def _times(values: Sequence[datetime | None]) -> Any:
    import pandas as pd

    return pd.to_datetime(pd.Series(list(values), dtype=object), utc=True)


def _all_strings(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, str) for v in present)


def _parse_output(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses and the standard parser reads (integers past 64 bits, NaN)
            value = json.loads(text)
        except ValueError:
            return {"text": text.strip()}
    return value if isinstance(value, dict) else {"value": value}
