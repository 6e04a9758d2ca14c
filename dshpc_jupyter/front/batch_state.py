"""What a Batch knows, behind one lock: its configs, the service's answer for each, the latest record of each job,
the seed's statistics summed over every sending, the configs still held back, and a version that grows at every
change (a display re-renders when it moves).

No I/O here: the poller (:mod:`.poller`) brings the answers, the views (:mod:`.batch_views`) read snapshots.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from ..domain import status as st
from ..domain.models import BatchDetail, BatchStatistics, JobRecord, MultiJobResult, MultiJobSimulationResponse

SEED_STATISTICS: Final = tuple(BatchStatistics.model_fields)
QUEUED_MESSAGE: Final = "Queued (held back by --concurrency)"


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
        return self.result.message if self.result is not None else QUEUED_MESSAGE

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


def _row_state(result: MultiJobResult | None, job: JobRecord | None, dry_run: bool) -> st.RowState:
    if result is None:
        return st.row_state(None, None, False)
    code = job.status if job is not None else result.new_status
    return st.row_state(result.outcome, code, result.job_id is not None, dry_run)


class BatchState:
    """The configs of one submission and what the service said about each; every method is thread-safe."""

    def __init__(self, configs: Sequence[Mapping[str, Any]], *, dry_run: bool = False) -> None:
        self.configs = [dict(c) for c in configs]
        self.dry_run = dry_run
        #: The service's id of each sending, in order (one per chunk released by ``concurrency``).
        self.batch_ids: list[str] = []
        self._results: list[MultiJobResult | None] = [None] * len(self.configs)
        self._jobs: dict[str, JobRecord] = {}
        #: Every job id a result names: what a poll by change keeps of the store's changes.
        self._job_ids: set[str] = set()
        self._statistics = BatchStatistics()
        self._queue = list(range(len(self.configs)))
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._version = 0
        self._done = threading.Event()

    # --- reading ---------------------------------------------------------------------------------------

    @property
    def version(self) -> int:
        return self._version

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def statistics(self) -> BatchStatistics:
        """The seed's six statistics, summed over every sending."""
        return self._statistics

    @property
    def has_queued(self) -> bool:
        with self._lock:
            return bool(self._queue)

    def rows(self) -> list[Row]:
        """A consistent snapshot of every config and its job, in request order."""
        with self._lock:
            results, jobs = list(self._results), dict(self._jobs)
        return [
            Row(i, self.configs[i], result, job, _row_state(result, job, self.dry_run))
            for i, result in enumerate(results)
            for job in [jobs.get(result.job_id) if result is not None and result.job_id else None]
        ]

    def function_hashes(self) -> set[str]:
        """The methods (by function hash) the service resolved the sent configs to."""
        with self._lock:
            return {r.function_hash for r in self._results if r is not None and r.function_hash}

    @property
    def has_unfinished(self) -> bool:
        """Whether some job may still change (its first such job found, not the whole list built)."""
        with self._lock:
            return next(self._unfinished(), None) is not None

    def unfinished_ids(self) -> list[str]:
        """The jobs that may still change (none for a dry run), each once."""
        with self._lock:
            return self._unfinished_ids()

    def unrecorded_ids(self) -> list[str]:
        """The jobs answered as already ended (served from cache) whose record was never fetched: a row shows the
        timings of the run it came from only once it has it."""
        with self._lock:
            ended = (
                r.job_id for r in self._results
                if r is not None and r.job_id and r.job_id not in self._jobs and st.is_final(r.new_status)
            )  # fmt: skip
            return list(dict.fromkeys(ended))

    def wait_done(self, timeout: float | None) -> bool:
        return self._done.wait(timeout)

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until the version moves past ``version`` (or ``timeout``); the new version."""
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version

    # --- changing --------------------------------------------------------------------------------------

    def take_queued(self, room: int | None = None) -> list[int]:
        """Release up to ``room`` held-back configs (all of them with ``None``) for sending; their indexes."""
        with self._lock:
            count = len(self._queue) if room is None else max(room, 0)
            chunk, self._queue = self._queue[:count], self._queue[count:]
            return chunk

    def drop_queued(self) -> None:
        """Give every config not yet sent a 'refused' result: a cancelled batch sends nothing more."""
        with self._changed:
            dropped, self._queue = self._queue, []
            for index in dropped:
                config = self.configs[index]
                self._results[index] = MultiJobResult(
                    message="Cancelled before it was sent", file_hash=config.get("file_hash"),
                    method_name=config.get("method_name"), parameters=config.get("parameters"), outcome=st.REFUSED,
                )  # fmt: skip
            if dropped:
                self._bump()

    def record(self, indexes: Sequence[int], response: MultiJobSimulationResponse) -> None:
        """Take the service's answer for the configs at ``indexes`` (one sending)."""
        with self._changed:
            for index, result in zip(indexes, response.results, strict=True):
                self._results[index] = result
            self._job_ids.update(r.job_id for r in response.results if r.job_id)
            totals = {name: getattr(self._statistics, name) + getattr(response, name) for name in SEED_STATISTICS}
            self._statistics = BatchStatistics(**totals)
            if response.batch_id:
                self.batch_ids.append(response.batch_id)
            self._bump()

    def restore(self, detail: BatchDetail) -> None:
        """Take a batch recorded on the service (every config already sent)."""
        with self._changed:
            self._queue = []
            self._results = list(detail.results)
            self._job_ids.update(r.job_id for r in detail.results if r.job_id)
            self._statistics = detail.statistics
            self.batch_ids.append(detail.batch_id)
            self._bump()
        self.apply(detail.jobs)

    def apply(self, records: Iterable[JobRecord]) -> None:
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

    def apply_changes(self, records: Iterable[JobRecord]) -> None:
        """Take the records of a poll by change: the store's changes, of which only this batch's jobs count."""
        with self._lock:
            mine = [record for record in records if record.job_id in self._job_ids]
        if mine:
            self.apply(mine)

    def notify(self) -> None:
        """Say something changed that the state does not hold (a polling problem), so displays re-render."""
        with self._changed:
            self._bump()

    def finish_if_done(self) -> bool:
        """Mark the batch done once nothing is held back and every job has ended; whether it is done."""
        with self._changed:
            if self._done.is_set():
                return True
            if self._queue or next(self._unfinished(), None) is not None:
                return False
            self._done.set()
            self._bump()
            return True

    # --- under the lock --------------------------------------------------------------------------------

    def _unfinished_ids(self) -> list[str]:
        return list(dict.fromkeys(self._unfinished()))

    def _unfinished(self) -> Iterator[str]:
        if self.dry_run:
            return iter(())
        return (
            r.job_id
            for r in self._results
            if r is not None and r.job_id
            and not st.is_final(self._jobs[r.job_id].status if r.job_id in self._jobs else r.new_status)
        )  # fmt: skip

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()
