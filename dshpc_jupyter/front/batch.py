"""The live ``Batch``: the handle on the configs of one submission, their jobs as they run, and pandas views.

A Batch is three parts: its state (:mod:`.batch_state`: configs, answers, job records, version), its poller
(:mod:`.poller`: one ``job_changes`` call per interval for the jobs changed since the last, the ``concurrency``
throttle, backoff) and its views (:mod:`.batch_views`: ``df``, ``outputs()``, ``stats``). Properties only read
the state; the service is asked by :meth:`Batch.submit`, :meth:`Batch.load`, :meth:`Batch.refresh` and the poller.
A batch recorded on the service is reopened after a kernel restart with :meth:`Batch.load` or from
:func:`batches`; the jobs are the service's, so nothing runs twice.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.batch_names import check_batch_name
from ..domain.bulk import no_gc_pauses
from ..domain.errors import DshpcError, InvalidInputError
from ..domain.models import BatchStatistics, ForgetResponse, LiveCounts
from ..domain.retries import SubmitOptions
from .batch_columns import ColumnsSnapshot
from .batch_files import download_outputs, files_frame
from .batch_frames import outputs_frame, rows_frame
from .batch_lookup import load_detail
from .batch_parameters import ParameterColumn, ParameterColumns
from .batch_row import Row
from .batch_state import BatchState
from .batch_views import BatchStats, ParameterDefaults, batch_stats, batches_frame
from .connection import Connection, current
from .poller import DEFAULT_POLL, Poller
from .sweep import did_you_mean

if TYPE_CHECKING:
    import pandas as pd

#: A view built from the batch's columns, its parameter columns and the service's file names.
FrameBuilder = Callable[[ColumnsSnapshot, Mapping[str, ParameterColumn], Mapping[str, "str | None"]], "pd.DataFrame"]

#: What fetching the parameter defaults may fail with and the Batch records (anything else is a bug and raises).
SERVICE_ERRORS = (DshpcError, OSError)


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
        options: SubmitOptions | None = None,
        priority: int = 0,
    ) -> None:
        self.connection = connection
        self.state = BatchState(configs, dry_run=dry_run)
        self.poller = Poller(
            connection, self.state, poll=poll, concurrency=concurrency, options=options, priority=priority
        )
        self.submitted_at = submitted_at if submitted_at is not None else time.time()
        #: The methods' parameter defaults, for the per-parameter columns of :attr:`df` (fetched once).
        self.defaults = ParameterDefaults()
        #: The per-parameter columns made from them, until a sending is answered or the defaults change.
        self._parameters = ParameterColumns()
        #: file_hash -> file name on the service, for displays (fetched with the defaults).
        self.file_names: dict[str, str] = {}
        #: The notebook variable the batch is bound to (``--out``), which a display names for ``.df``.
        self.variable: str | None = None

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
        retry: int | Mapping[str, Any] | None = None,
        resubmit: str = "failed",
        force: bool = False,
        priority: int = 0,
        name: str | None = None,
    ) -> Batch:
        """Send configs to the service and start following their jobs (a dry run sends nothing to run).

        ``retry`` is the new jobs' retry policy (a number of retries, or a policy mapping), ``resubmit`` which
        failed jobs run again (``failed``, ``retriable``, ``never``), ``force`` runs completed ones again too
        (docs/design.md section 12); new jobs start by ``priority`` (higher first; equal priorities take turns
        batch by batch); ``name`` is recorded with the batch, to find it again by (``Batch.load(name)``)."""
        options = SubmitOptions.of(retry=retry, resubmit=resubmit, force=force)
        batch = cls(connection or current(), configs, poll=poll, concurrency=concurrency, dry_run=dry_run,
                    options=options, priority=priority)  # fmt: skip
        batch.poller.name = check_batch_name(name)
        if dry_run:
            response = batch.connection.simulate_jobs(batch.configs, dry_run=True, options=options, name=batch.name)
            batch.state.record(batch.state.take_queued(), response)
            batch.connection.run(batch.poller.fetch_ended)
        else:
            batch.connection.run(batch.poller.send)
        batch._first_defaults()
        batch.state.finish_if_done()
        batch.start()
        return batch

    @classmethod
    def load(cls, batch_id: str, *, connection: Connection | None = None, poll: float = DEFAULT_POLL) -> Batch:
        """Reopen a batch recorded on the service (after a kernel restart, or from another notebook), by its id
        or by its name while only one batch has that name."""
        connection = connection or current()
        detail = load_detail(connection, batch_id)
        configs = [
            {"file_hash": r.file_hash, "method_name": r.method_name, "parameters": r.parameters} for r in detail.results
        ]
        batch = cls(connection, configs, poll=poll, submitted_at=detail.created_at.timestamp())
        batch.poller.name = detail.name
        batch.state.restore(detail)
        batch._first_defaults()
        batch.state.finish_if_done()
        batch.start()
        return batch

    # --- what it holds -----------------------------------------------------------------------------------

    @property
    def configs(self) -> list[dict[str, Any]]:
        return self.state.configs

    @property
    def dry_run(self) -> bool:
        return self.state.dry_run

    @property
    def poll(self) -> float:
        return self.poller.poll

    @property
    def concurrency(self) -> int | None:
        return self.poller.concurrency

    @property
    def name(self) -> str | None:
        """The name given at submission (``None``: none)."""
        return self.poller.name

    @property
    def batch_ids(self) -> list[str]:
        """The service's id of every sending, in order."""
        return self.state.batch_ids

    @property
    def batch_id(self) -> str | None:
        """The service's id of the (first) sending; ``None`` for a dry run."""
        return self.batch_ids[0] if self.batch_ids else None

    @property
    def last_error(self) -> str | None:
        """The last polling problem (a service that did not answer), cleared by the next good answer."""
        return self.poller.last_error

    @property
    def defaults_error(self) -> str | None:
        """Why the methods' parameter defaults could not be fetched (``None``: they were, or were not needed)."""
        return self.defaults.error

    @property
    def done(self) -> bool:
        """True once every config has an ended job (or none: invalid, or a dry run)."""
        return self.state.done

    @property
    def version(self) -> int:
        """Grows by one at every change; a display re-renders when it moves."""
        return self.state.version

    @property
    def statistics(self) -> BatchStatistics:
        """The seed's six statistics, summed over every sending (:attr:`stats` adds where the jobs are now)."""
        return self.state.statistics

    def rows(self) -> list[Row]:
        """A consistent snapshot of every config and its job, in request order."""
        return self.state.rows()

    @property
    def stats(self) -> BatchStats:
        return batch_stats(
            self.rows(), self.statistics, submitted_at=self.submitted_at, done=self.done, dry_run=self.dry_run
        )

    @property
    def df(self) -> pd.DataFrame:
        """One row per config in request order: the seed's result fields, the job's current state and timings,
        and one column per parameter (defaults filled in from the method's spec, as fetched at submission)."""
        return self._frame(rows_frame)

    def files(self) -> pd.DataFrame:
        """The output files of every job: one row per file (``row`` of :attr:`df`, ``job_id``, ``path``, ``hash``,
        ``size``); a stdout kept whole because it was too long is the path ``@stdout``."""
        rows = self.rows()
        wanted = {h for r in rows if r.job is not None for h in r.job.output_files.values()}
        sizes = (
            {f.file_hash: f.file_size for f in self.connection.list_files() if f.file_hash in wanted} if wanted else {}
        )
        return files_frame(rows, sizes)

    def download(self, folder: str | Path) -> list[Path]:
        """Every output file into ``folder/<row>/<path>``, checked against its hash; the paths written."""
        return download_outputs(self.connection, self.files(), folder)

    def outputs(self) -> pd.DataFrame:
        """The JSON outputs as columns (``pandas.json_normalize``) beside each config's method, file and parameters,
        one row per config (same index as :attr:`df`); an output column named like one of those gets ``output.``
        in front. Outputs that are not JSON objects land in ``value`` (other JSON) or ``text`` (not JSON)."""
        return self._frame(outputs_frame)

    def logs(self, row: int, *, stream: str = "stdout", follow: bool = False) -> str:
        """The ``stream`` (``stdout`` or ``stderr``) of the job of config ``row``, whole even after it ended; with
        ``follow``, each piece is printed as the job writes it, until the job ends (end the cell with ``;``)."""
        pieces = []
        for piece in self.connection.logs(self._job_id(row), stream=stream, follow=follow):
            if follow:
                print(piece, end="", flush=True)
            pieces.append(piece)
        return "".join(pieces)

    def _job_id(self, row: int) -> str:
        rows = self.rows()
        if not 0 <= row < len(rows):
            raise InvalidInputError(f"row: {row} is not a row of this batch (it has rows 0 to {len(rows) - 1})")
        chosen = rows[row]
        job, result = chosen.job, chosen.result
        job_id = job.job_id if job is not None else (result.job_id if result is not None else None)
        if not job_id:
            raise InvalidInputError(f"row: config {row} has no job ({chosen.message})")
        return job_id

    def plot(self, kind: str = "states", *, parameter: str | None = None, ax: Any = None) -> Any:
        """A standard view with matplotlib (``pip install matplotlib``): ``"states"`` (jobs pending, running and
        ended over time), ``"durations"`` (run time by ``parameter``, default the first) or ``"gantt"`` (each job
        from start to end); draws on ``ax`` or a new figure and returns the Axes."""
        from .batch_plots import plot

        return plot(self._frame(rows_frame), kind, parameter=parameter, ax=ax)

    # --- following the jobs ------------------------------------------------------------------------------

    def start(self) -> Batch:
        """Poll in the background until every job has ended (started by :meth:`submit` and :meth:`load`)."""
        self.poller.start()
        return self

    def stop(self) -> None:
        """Stop polling (the jobs go on; :meth:`refresh`, :meth:`wait` or :meth:`start` follow them again)."""
        self.poller.stop()

    def refresh(self) -> Batch:
        """Ask the service now (what changed since the last poll), instead of waiting for the next poll; the
        parameter defaults too, if they could not be fetched or a method sent since is not among them."""
        self.connection.run(self.poller.step)
        hashes = self.state.function_hashes()
        if hashes and not self.defaults.covers(hashes):
            self._fetch_defaults()
        return self

    def wait(self, timeout: float | None = None) -> Batch:
        """Block until every job has ended; ``TimeoutError`` after ``timeout`` seconds (the jobs go on)."""
        self.start()
        if not self.state.wait_done(timeout):
            stats = self.stats
            raise TimeoutError(
                f"batch {self.batch_id or ''}: {stats.pending + stats.running + stats.queued} job(s) still in progress "
                f"after {timeout} s; they go on (wait again, or cancel)"
            )
        return self

    def cancel(self) -> Batch:
        """Cancel every unfinished job of the batch and drop the configs not yet sent."""
        self.state.drop_queued()
        ids = self.state.unfinished_ids()
        if ids:
            self.connection.cancel(ids)
        return self.refresh()

    def forget(self) -> ForgetResponse:
        """Remove this batch's ended jobs from the service's cache, with their workspaces and the output files
        nothing else needs; jobs still in progress are refused (``in_progress``: cancel them first). The rows
        keep what they last showed; the same configs submitted again run anew."""
        ids = list(dict.fromkeys(r.result.job_id for r in self.rows() if r.result is not None and r.result.job_id))
        return self.connection.forget(ids)

    def wait_for_change(self, version: int, timeout: float) -> int:
        """Block until :attr:`version` moves past ``version`` (or ``timeout``); the new version."""
        return self.state.wait_for_change(version, timeout)

    def __repr__(self) -> str:
        named = f"{self.name!r} " if self.name else ""
        return f"<dshpc_jupyter.Batch {named}{self.batch_id or 'dry run'}: {self.stats.summary()}>"

    # --- internals ---------------------------------------------------------------------------------------

    def _first_defaults(self) -> None:
        """Fetch the defaults at submission, unless no config can use them (every one got no method)."""
        if self.state.function_hashes() or self.state.has_queued:
            self._fetch_defaults()

    def _fetch_defaults(self) -> None:
        """One ``list_methods`` call; a service that cannot answer is recorded in :attr:`defaults_error`."""
        try:
            methods = self.connection.list_methods(latest_only=False)
        except SERVICE_ERRORS as exc:
            self.defaults.failed(exc)
        else:
            self.defaults.learn(methods)
        try:
            self.file_names = {f.file_hash: f.filename for f in self.connection.list_files() if f.filename}
        except SERVICE_ERRORS:
            self.file_names = {}  # names are a nicety of displays, which then show hash prefixes

    def method_hints(self) -> list[str]:
        """For each method name the service did not know, the closest registered name (one line each); asks the
        service for its methods only when some config named an unknown one."""
        prefix, suffix = "Method '", "' not found"
        messages = dict.fromkeys(
            r.result.message for r in self.rows()
            if r.result is not None and r.result.message.startswith(prefix) and r.result.message.endswith(suffix)
        )  # fmt: skip
        if not messages:
            return []
        try:
            names = list(dict.fromkeys(m.name for m in self.connection.list_methods()))
        except SERVICE_ERRORS:
            return []
        hints = ((message, did_you_mean(message[len(prefix) : -len(suffix)], names)) for message in messages)
        return [f"{message}{hint}" for message, hint in hints if hint]

    def _frame(self, build: FrameBuilder) -> pd.DataFrame:
        """A view of the batch's columns (``rows_frame``, ``outputs_frame``), with the file names its input
        columns show (asked of the service only when some config names inputs)."""
        if self.defaults.error is not None:
            warnings.warn(
                f"parameter defaults: could not be fetched ({self.defaults.error}); the per-parameter columns hold "
                "the given values only (batch.refresh() asks again)",
                stacklevel=3,
            )
        names = {f.file_hash: f.filename for f in self.connection.list_files()} if self.state.has_inputs else {}
        with no_gc_pauses():  # the snapshot, the parameter columns and the frame: no cycles (domain/bulk.py)
            snapshot = self.state.columns()
            return build(snapshot, self._parameters.of(snapshot, self.defaults), names)


def batches(limit: int = 20, *, connection: Connection | None = None) -> pd.DataFrame:
    """The service's most recent batches, newest first, with where each one's configs are now (one ``batch``
    call per batch; a batch the service cannot show now keeps its counts empty); reopen one with
    ``Batch.load(batch_id)``."""
    connection = connection or current()
    summaries = connection.batches(limit)
    live: list[LiveCounts | None] = []
    for summary in summaries:
        try:
            live.append(connection.batch(summary.batch_id).live)
        except SERVICE_ERRORS:
            live.append(None)
    return batches_frame(summaries, live)


__all__ = ["DEFAULT_POLL", "Batch", "BatchStats", "Row", "batches"]
