"""What a Batch knows, behind one lock: its configs, the service's answer for each, the latest record of each job,
the seed's statistics summed over every sending, the configs still held back, and a version that grows at every
change (a display re-renders when it moves).

No I/O here: the poller (:mod:`.poller`) brings the answers, the views (:mod:`.batch_views`, :mod:`.batch_frames`)
read snapshots: rows, or the same values as columns (:mod:`.batch_columns`), kept current as answers arrive.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Final

from ..domain import status as st
from ..domain.bulk import no_gc_pauses
from ..domain.models import BatchDetail, BatchStatistics, JobRecord, MultiJobResult, MultiJobSimulationResponse
from .batch_columns import Columns, ColumnsSnapshot, RowValues, row_values
from .batch_files import input_names
from .batch_row import Row, row_state

SEED_STATISTICS: Final = tuple(BatchStatistics.model_fields)


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
        #: Each row's values, ready to be columns; the rows of each job (configs that name the same job share it);
        #: a version of the answers alone (the parameter columns are kept while it stays); the configs' inputs.
        self._values = RowValues(self.configs)
        self._rows_of: dict[str, list[int]] = {}
        self._results_version = 0
        self._input_names: list[str] | None = None
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
            Row(i, self.configs[i], result, job, row_state(result, job, self.dry_run))
            for i, result in enumerate(results)
            for job in [jobs.get(result.job_id) if result is not None and result.job_id else None]
        ]

    def columns(self) -> ColumnsSnapshot:
        """The same snapshot as :meth:`rows`, as columns: the rows' values copied under the lock (one list) and
        transposed outside it (a few tens of milliseconds for 100,000 rows)."""
        with self._lock:
            values, version, results_version = list(self._values.values), self._version, self._results_version
        columns = Columns.of(self._values, values)  # outside the lock: the poller need not wait for it
        return ColumnsSnapshot(self.configs, columns, version, results_version, self.input_names)

    @property
    def input_names(self) -> list[str]:
        """Every input name the configs give (``file_inputs``), in the order first met."""
        with self._lock:
            if self._input_names is None:  # the configs never change: looked through once
                self._input_names = input_names(self.configs)
            return self._input_names

    @property
    def has_inputs(self) -> bool:
        return bool(self.input_names)

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
                self._results[index] = result = MultiJobResult(
                    message="Cancelled before it was sent", file_hash=config.get("file_hash"),
                    method_name=config.get("method_name"), parameters=config.get("parameters"), outcome=st.REFUSED,
                )  # fmt: skip
                self._took_result(index, result)
            if dropped:
                self._bump()

    def record(self, indexes: Sequence[int], response: MultiJobSimulationResponse) -> None:
        """Take the service's answer for the configs at ``indexes`` (one sending)."""
        with self._changed, no_gc_pauses():  # a tuple of values per row (domain/bulk.py)
            for index, result in zip(indexes, response.results, strict=True):
                self._results[index] = result
                self._took_result(index, result)
            self._job_ids.update(r.job_id for r in response.results if r.job_id)
            totals = {name: getattr(self._statistics, name) + getattr(response, name) for name in SEED_STATISTICS}
            self._statistics = BatchStatistics(**totals)
            if response.batch_id:
                self.batch_ids.append(response.batch_id)
            self._bump()

    def restore(self, detail: BatchDetail) -> None:
        """Take a batch recorded on the service (every config already sent)."""
        with self._changed, no_gc_pauses():
            self._queue = []
            self._results = list(detail.results)
            for index, result in enumerate(detail.results):
                self._took_result(index, result)
            self._job_ids.update(r.job_id for r in detail.results if r.job_id)
            self._statistics = detail.statistics
            self.batch_ids.append(detail.batch_id)
            self._bump()
        self.apply(detail.jobs)

    def apply(self, records: Iterable[JobRecord]) -> None:
        """Take new job records; a record never goes back from an ended state (answers can cross)."""
        with self._changed, no_gc_pauses():
            changed, values, results, dry_run = False, self._values.values, self._results, self.dry_run
            for record in records:
                known = self._jobs.get(record.job_id)
                if known is not None and (st.is_final(known.status) or known == record):
                    continue
                self._jobs[record.job_id] = record
                for index in self._rows_of.get(record.job_id, ()):  # a row's values, as its job changes
                    values[index] = row_values(results[index], record, dry_run)
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

    def _took_result(self, index: int, result: MultiJobResult) -> None:
        """Row ``index`` got ``result`` (in ``_results`` already): its values, and its job's rows."""
        self._results_version += 1
        job = None
        if result.job_id:
            self._rows_of.setdefault(result.job_id, []).append(index)
            job = self._jobs.get(result.job_id)
        self._values.values[index] = row_values(result, job, self.dry_run)

    def _bump(self) -> None:
        self._version += 1
        self._changed.notify_all()
