"""The live ``Batch``: the configs of one submission, their jobs as they run, and pandas views of both.

A Batch polls in the background (a coroutine on its connection's loop, so a kernel blocked in ``time.sleep``
does not stop it): all of its unfinished jobs in one ``job_statuses`` call per interval, never one call per
job, and it stops by itself when every job has ended. With ``concurrency`` it holds back configs and sends
them as earlier jobs end, so at most that many of its jobs are in progress at once (each sending is recorded
as its own batch on the service; running the same configs again attaches to the jobs already made).
A batch recorded on the service is reopened after a kernel restart with :meth:`Batch.load` or from
:func:`batches`; the jobs are the service's, so nothing runs twice.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from ..domain import status as st
from ..domain.models import BatchStatistics, JobRecord, MultiJobResult, MultiJobSimulationResponse
from .connection import Connection, current

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_POLL: Final = 0.5
MAX_BACKOFF: Final = 30.0

"""``state`` of a row: what a job ended as or is doing; ``error`` = the config got no job (invalid, refused or
cancelled before it was sent); ``queued`` = held back by ``concurrency``; ``dry run`` = would be submitted."""
SEED_STATISTICS: Final = tuple(BatchStatistics.model_fields)


@dataclass(frozen=True, slots=True)
class Row:
    """One config of the batch and where it is now."""

    index: int
    config: Mapping[str, Any]
    result: MultiJobResult | None
    job: JobRecord | None
    state: st.RowState

    @property
    def status(self) -> str | None:
        if self.job is not None:
            return self.job.status
        return self.result.new_status if self.result is not None else None

    @property
    def output(self) -> str | None:
        if self.job is not None and self.job.output is not None:
            return self.job.output
        return self.result.output if self.result is not None else None

    @property
    def message(self) -> str:
        return self.result.message if self.result is not None else "Queued (held back by --concurrency)"

    @property
    def error(self) -> str | None:
        """Why it failed: the job's error text, or the service's message for a config that got no job."""
        if self.job is not None and self.job.error:
            return self.job.error
        if self.state == "error":
            return self.message
        return None

    @property
    def duration(self) -> float | None:
        """Run time in seconds (start to end), once the job has ended."""
        if self.job is None or self.job.started_at is None or self.job.finished_at is None:
            return None
        return (self.job.finished_at - self.job.started_at).total_seconds()


@dataclass(frozen=True)
class BatchStats:
    """The seed's six statistics (summed over every sending) and where the batch is now.

    Live counts are per config (row): ``pending + running + completed + failed + errors + queued == configs``.
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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line for people."""
        if self.dry_run:
            joined = self.in_progress_jobs - self.successful_submissions
            new = self.successful_submissions - self.resubmitted_jobs
            return (
                f"dry run: {self.configs} configs: {self.completed_jobs} cached, {joined} in progress, {new} new, "
                f"{self.resubmitted_jobs} resubmitted, {self.failed_submissions} invalid; nothing was submitted"
            )
        parts = [f"{self.configs} configs", f"{self.completed} completed ({self.cached} cached)"]
        parts += [f"{n} {word}" for n, word in ((self.running, "running"), (self.pending, "pending"),
                                                (self.queued, "queued")) if n]  # fmt: skip
        parts += [f"{self.failed} failed", f"{self.errors} errors"]
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


def _state(result: MultiJobResult | None, job: JobRecord | None, dry_run: bool) -> st.RowState:
    if result is None:
        return st.row_state(None, None, False)
    code = job.status if job is not None else result.new_status
    return st.row_state(result.outcome, code, result.job_id is not None, dry_run)


class Batch:
    """A live handle on the jobs of one submission. Make one with :meth:`submit` or :meth:`load`."""

    def __init__(
        self,
        connection: Connection,
        configs: Sequence[Mapping[str, Any]],
        *,
        poll: float = DEFAULT_POLL,
        concurrency: int | None = None,
        dry_run: bool = False,
        submitted_at: float | None = None,
    ) -> None:
        if poll <= 0:
            raise ValueError(f"poll: must be a positive number of seconds, got {poll}")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency: must be at least 1, got {concurrency}")
        self.connection = connection
        self.configs = [dict(c) for c in configs]
        self.poll = poll
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.batch_ids: list[str] = []
        self.submitted_at = submitted_at if submitted_at is not None else time.time()
        #: The last polling problem (a service that did not answer), cleared by the next good answer.
        self.last_error: str | None = None
        self._results: list[MultiJobResult | None] = [None] * len(self.configs)
        self._jobs: dict[str, JobRecord] = {}
        self._statistics = BatchStatistics()
        self._queue = list(range(len(self.configs)))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._done = threading.Event()
        self._step_lock: asyncio.Lock | None = None
        self._poller: Any = None
        self._defaults: dict[str, dict[str, Any]] | None = None

    # --- making one ------------------------------------------------------------------------------------

    @classmethod
    def submit(
        cls,
        configs: Sequence[Mapping[str, Any]],
        *,
        connection: Connection | None = None,
        poll: float = DEFAULT_POLL,
        concurrency: int | None = None,
        dry_run: bool = False,
    ) -> Batch:
        """Send configs to the service and start following their jobs (a dry run sends nothing to run)."""
        batch = cls(connection or current(), configs, poll=poll, concurrency=concurrency, dry_run=dry_run)
        if dry_run:
            response = batch.connection.simulate_jobs(batch.configs, dry_run=True)
            batch._record(list(range(len(batch.configs))), response)
            batch._queue.clear()
        else:
            batch.connection.run(batch._send)
        batch._finish_if_done()
        batch.start()
        return batch

    @classmethod
    def load(cls, batch_id: str, *, connection: Connection | None = None, poll: float = DEFAULT_POLL) -> Batch:
        """Reopen a batch recorded on the service (after a kernel restart, or from another notebook)."""
        connection = connection or current()
        detail = connection.batch(batch_id)
        configs = [
            {"file_hash": r.file_hash, "method_name": r.method_name, "parameters": r.parameters} for r in detail.results
        ]
        batch = cls(connection, configs, poll=poll, submitted_at=detail.created_at.timestamp())
        batch._queue.clear()
        batch._results = list(detail.results)
        batch._statistics = detail.statistics
        batch.batch_ids.append(detail.batch_id)
        batch._apply(detail.jobs)
        batch._finish_if_done()
        batch.start()
        return batch

    # --- what it holds -----------------------------------------------------------------------------------

    @property
    def batch_id(self) -> str | None:
        """The service's id of the (first) sending; ``None`` for a dry run."""
        return self.batch_ids[0] if self.batch_ids else None

    @property
    def done(self) -> bool:
        """True once every config has an ended job (or none: invalid, or a dry run)."""
        return self._done.is_set()

    @property
    def version(self) -> int:
        """Grows by one at every change; a display re-renders when it moves."""
        return self._version

    def rows(self) -> list[Row]:
        """A consistent snapshot of every config and its job, in request order."""
        with self._lock:
            results, jobs = list(self._results), dict(self._jobs)
        return [
            Row(i, self.configs[i], result, job, _state(result, job, self.dry_run))
            for i, result in enumerate(results)
            for job in [jobs.get(result.job_id) if result is not None and result.job_id else None]
        ]

    @property
    def stats(self) -> BatchStats:
        rows = self.rows()
        counts = dict.fromkeys(("pending", "running", "completed", "failed", "errors", "queued"), 0)
        ended_since_submit = 0
        last_end = self.submitted_at
        for row in rows:
            if row.state == "in progress":
                counts[st.live_count(row.status)] += 1
            elif row.state == "queued":
                counts["queued"] += 1
            elif row.state in ("error", "dry run"):
                counts["errors"] += 1
            else:
                counts[row.state] += 1
            if row.job is not None and row.job.finished_at is not None:
                end = row.job.finished_at.timestamp()
                if end >= self.submitted_at:
                    ended_since_submit += 1
                    last_end = max(last_end, end)
        done = self.done
        elapsed = max(0.0, (last_end if done else time.time()) - self.submitted_at)
        throughput = ended_since_submit / elapsed if elapsed > 0 and ended_since_submit else None
        remaining = counts["pending"] + counts["running"] + counts["queued"]
        return BatchStats(
            **self._statistics.model_dump(),
            configs=len(rows),
            **counts,
            cached=sum(1 for r in rows if r.result is not None and r.result.outcome == st.CACHED),
            elapsed=elapsed,
            throughput=throughput,
            eta=remaining / throughput if throughput and remaining else (0.0 if done else None),
            done=done,
            dry_run=self.dry_run,
        )

    @property
    def df(self) -> pd.DataFrame:
        """One row per config in request order: the seed's result fields, the job's current state and timings,
        and one column per parameter (defaults filled in from the method's spec)."""
        import pandas as pd

        rows = self.rows()
        defaults = self._parameter_defaults(rows)
        names: dict[str, None] = {}
        for row in rows:
            names.update(dict.fromkeys(self._parameters(row, defaults)))
        frame = pd.DataFrame(
            {
                "job_id": [r.result.job_id if r.result else None for r in rows],
                "method_name": [r.config.get("method_name") for r in rows],
                "file_hash": [r.config.get("file_hash") for r in rows],
                "function_hash": [r.result.function_hash if r.result else None for r in rows],
                "parameters": [r.config.get("parameters", {}) for r in rows],
                "new_status": [r.result.new_status if r.result else None for r in rows],
                "old_status": [r.result.old_status if r.result else None for r in rows],
                "message": [r.message for r in rows],
                "output": [r.output for r in rows],
                "outcome": [r.result.outcome if r.result else None for r in rows],
                "status": [r.status for r in rows],
                "state": [r.state for r in rows],
                "cached": [r.result is not None and r.result.outcome == st.CACHED for r in rows],
                "error": [r.error for r in rows],
                "exit_code": pd.array([r.job.exit_code if r.job else None for r in rows], dtype="Int64"),
                "submitted_at": _times([r.job.created_at if r.job else None for r in rows]),
                "started_at": _times([r.job.started_at if r.job else None for r in rows]),
                "finished_at": _times([r.job.finished_at if r.job else None for r in rows]),
                "duration": pd.array([r.duration for r in rows], dtype="Float64"),
            }
        )
        for column in ("method_name", "file_hash", "function_hash", "new_status", "old_status", "message", "status"):
            frame[column] = frame[column].astype("category")
        frame["state"] = pd.Categorical(frame["state"], categories=st.ROW_STATES)
        frame["outcome"] = pd.Categorical(frame["outcome"], categories=st.OUTCOMES)
        for name in names:
            column = name if name not in frame.columns else f"param_{name}"
            values = [self._parameters(row, defaults).get(name) for row in rows]
            frame[column] = pd.Series(values, dtype="category" if _all_strings(values) else None)
        return frame

    def outputs(self) -> pd.DataFrame:
        """The JSON outputs as columns (``pandas.json_normalize``) beside each config's method, file and parameters,
        one row per config (same index as :attr:`df`); an output column named like one of those gets ``output.``
        in front. Outputs that are not JSON objects land in ``value`` (other JSON) or ``text`` (not JSON)."""
        import pandas as pd

        frame = self.df
        keep = ["method_name", "file_hash", *frame.columns[list(frame.columns).index("duration") + 1 :]]
        parsed = [
            _parse_output(out) if state == "completed" else {}
            for out, state in zip(frame["output"], frame["state"], strict=True)
        ]
        outputs = pd.json_normalize(parsed) if any(parsed) else pd.DataFrame(index=range(len(parsed)))
        outputs.index = frame.index
        outputs.columns = [f"output.{c}" if c in keep else str(c) for c in outputs.columns]
        return pd.concat([frame[keep], outputs], axis=1)

    # --- following the jobs ------------------------------------------------------------------------------

    def start(self) -> Batch:
        """Poll in the background until every job has ended (started by :meth:`submit` and :meth:`load`)."""
        with self._lock:
            if self._poller is None and not self._done.is_set():
                self._poller = self.connection.start(self._poll_loop)
        return self

    def stop(self) -> None:
        """Stop polling (the jobs go on; :meth:`refresh`, :meth:`wait` or :meth:`start` follow them again)."""
        with self._lock:
            poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()

    def refresh(self) -> Batch:
        """Ask the service now (one call for every unfinished job), instead of waiting for the next poll."""
        self.connection.run(self._step)
        return self

    def wait(self, timeout: float | None = None) -> Batch:
        """Block until every job has ended; ``TimeoutError`` after ``timeout`` seconds (the jobs go on)."""
        self.start()
        if not self._done.wait(timeout):
            stats = self.stats
            raise TimeoutError(
                f"batch {self.batch_id or ''}: {stats.pending + stats.running + stats.queued} job(s) still in progress "
                f"after {timeout} s; they go on (wait again, or cancel)"
            )
        return self

    def cancel(self) -> Batch:
        """Cancel every unfinished job of the batch and drop the configs not yet sent."""
        with self._lock:
            dropped, self._queue = self._queue, []
            for index in dropped:
                self._results[index] = MultiJobResult(
                    message="Cancelled before it was sent", file_hash=self.configs[index].get("file_hash"),
                    method_name=self.configs[index].get("method_name"),
                    parameters=self.configs[index].get("parameters"), outcome="refused",
                )  # fmt: skip
        ids = self._unfinished_ids()
        if ids:
            self.connection.cancel(ids)
        return self.refresh()

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until :attr:`version` moves past ``version`` (or ``timeout``); the new version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version

    def __repr__(self) -> str:
        return f"<dshpc_jupyter.Batch {self.batch_id or 'dry run'}: {self.stats.summary()}>"

    # --- internals ---------------------------------------------------------------------------------------

    def _unfinished_ids(self) -> list[str]:
        if self.dry_run:
            return []
        with self._lock:
            unfinished = (
                r.job_id
                for r in self._results
                if r is not None and r.job_id
                and not st.is_final(self._jobs[r.job_id].status if r.job_id in self._jobs else r.new_status)
            )  # fmt: skip
            return list(dict.fromkeys(unfinished))

    def _in_flight(self) -> int:
        return len(self._unfinished_ids())

    async def _send(self) -> None:
        """Send queued configs while fewer than ``concurrency`` jobs are in progress (all of them without it)."""
        while self._queue:
            room = len(self._queue) if self.concurrency is None else self.concurrency - self._in_flight()
            if room <= 0:
                return
            with self._lock:
                chunk, self._queue = self._queue[:room], self._queue[room:]
            response = await self.connection.backend.simulate_jobs([self.configs[i] for i in chunk])
            self._record(chunk, response)

    def _record(self, indexes: Sequence[int], response: MultiJobSimulationResponse) -> None:
        with self._changed:
            for index, result in zip(indexes, response.results, strict=True):
                self._results[index] = result
            totals = {name: getattr(self._statistics, name) + getattr(response, name) for name in SEED_STATISTICS}
            self._statistics = BatchStatistics(**totals)
            if response.batch_id:
                self.batch_ids.append(response.batch_id)
            self._bump()

    def _apply(self, records: Iterable[JobRecord]) -> None:
        """Take new job records; a record never goes back from an ended state (answers can cross)."""
        with self._changed:
            changed = False
            for record in records:
                known = self._jobs.get(record.job_id)
                if known is not None and (st.is_final(known.status) or known == record):
                    continue
                self._jobs[record.job_id] = record
                changed = True
            if changed:
                self._bump()

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()

    def _finish_if_done(self) -> bool:
        with self._lock:
            queued = bool(self._queue)
        if queued or self._unfinished_ids() or self._done.is_set():
            return self._done.is_set()
        self._done.set()
        with self._changed:
            self._bump()
        return True

    async def _step(self) -> None:
        """One round: send what ``concurrency`` allows, then ask for every unfinished job in one call."""
        if self._step_lock is None:
            self._step_lock = asyncio.Lock()
        async with self._step_lock:
            await self._send()
            ids = self._unfinished_ids()
            if ids:
                self._apply(await self.connection.backend.job_statuses(ids))
            await self._send()
            self._finish_if_done()

    async def _poll_loop(self) -> None:
        delay = self.poll
        try:
            while not self._finish_if_done():
                await asyncio.sleep(delay)
                try:
                    await self._step()
                except Exception as exc:  # a service that does not answer now may answer later
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    delay = min(delay * 2, MAX_BACKOFF)
                    with self._changed:
                        self._bump()
                else:
                    self.last_error, delay = None, self.poll
        finally:
            with self._lock:
                self._poller = None

    def _parameter_defaults(self, rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
        """function_hash -> {parameter: default}, asked once per Batch (empty when the service cannot say)."""
        if self._defaults is None:
            wanted = {r.result.function_hash for r in rows if r.result is not None and r.result.function_hash}
            try:
                methods = self.connection.list_methods(latest_only=False) if wanted else []
            except Exception:  # defaults only make the table nicer; the given parameters are still shown
                methods = []
            self._defaults = {
                m.function_hash: {p.name: p.default for p in m.parameters} for m in methods if m.function_hash in wanted
            }
        return self._defaults

    @staticmethod
    def _parameters(row: Row, defaults: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        given = row.config.get("parameters") or {}
        if not isinstance(given, Mapping):
            return {}
        known = defaults.get(row.result.function_hash or "", {}) if row.result is not None else {}
        return {**known, **given}


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
        value = json.loads(text)
    except ValueError:
        return {"text": text.strip()}
    return value if isinstance(value, dict) else {"value": value}


def batches(limit: int = 20, *, connection: Connection | None = None) -> pd.DataFrame:
    """The service's most recent batches, newest first; reopen one with ``Batch.load(batch_id)``."""
    import pandas as pd

    summaries = (connection or current()).batches(limit)
    columns = ["batch_id", "created_at", *SEED_STATISTICS]
    frame = pd.DataFrame(
        [{"batch_id": s.batch_id, "created_at": s.created_at, **s.statistics.model_dump()} for s in summaries],
        columns=columns,
    )
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    return frame


__all__ = ["DEFAULT_POLL", "Batch", "BatchStats", "Row", "batches"]
