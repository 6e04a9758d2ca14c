"""The engine: dsHPC's per-config logic and statistics (docs/design.md section 3) over a Store and Schedulers.

A batch is handled set-wise rather than config by config: configs are checked and hashed in memory (method
versions resolved once per name, parameter sets canonicalized once per distinct value), then one write
transaction looks up every job key in a single indexed query, inserts the new jobs and records the batch.
Holding SQLite's write lock across the lookup and the inserts is what makes submissions exactly-once between
processes; identical configs inside a batch share the job of the first of them. Configs arrive typed
(:mod:`..domain.configs`); result rows stay typed (``ResultRow``) until the response is validated once.

The methods here are synchronous; :mod:`.embedded` exposes them as the async ``Backend``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast, get_args

from ..domain import status as st
from ..domain.configs import Config, ConfigError, FileInputs
from ..domain.errors import DiskFullError, InvalidInputError, InvalidParametersError, LimitExceededError, NotFoundError
from ..domain.hashing import canonical_json, inputs_key, is_sha256_hex, job_key
from ..domain.home import Home
from ..domain.methods import ParameterSchema, install_method, load_method, method_dirs
from ..domain.models import (
    BatchDetail,
    BatchStatistics,
    BatchSummary,
    CancelResponse,
    ConfigLike,
    FileInfo,
    HashCheckResponse,
    JobRecord,
    JobSimulationResponse,
    LiveCounts,
    MethodInfo,
    MethodSpec,
    MultiJobSimulationResponse,
    ResultRow,
    read_config,
)
from ..domain.status import Outcome
from ..schedulers.base import JobUpdate, Scheduler, Submission
from ..store.sqlite import LatestJob, NewJob, Store
from .inputs import declared_inputs_problem, missing_file, resolved_inputs
from .staging import stage_upload
from .transfers import StreamedUploads, keep_staged

MSG_COMPLETED = "Completed job found"
MSG_IN_PROGRESS = "Job in progress"
MSG_NEW = "New job submitted"
MSG_RESUBMITTED = "New job submitted after previous failure"
DRY_MESSAGES: dict[str, str] = {
    "new": "Would submit a new job",
    "resubmitted": "Would resubmit after previous failure",
    "in_progress": MSG_IN_PROGRESS,
    "cached": MSG_COMPLETED,
    "shared": "Would share the job of an identical config in this batch",
}
LIVE_MESSAGES: dict[str, str] = {
    "new": MSG_NEW,
    "resubmitted": MSG_RESUBMITTED,
    "in_progress": MSG_IN_PROGRESS,
    "cached": MSG_COMPLETED,
    "shared": MSG_IN_PROGRESS,
}


@dataclass(slots=True)
class _Checked:
    """One config after the engine's checks: its job key and what a new job needs, or the message saying why it
    gets no job. ``file_hash`` is echoed as sent; the job and its key use the lower-case form."""

    file_hash: str | None
    method_name: str | None
    parameters: Any
    function_hash: str | None = None
    error: str | None = None
    key: str = ""
    canonical: dict[str, Any] | None = None
    file_inputs: Any = None
    #: The named inputs the job runs on: lower-cased, a declared ``multiple`` input always an array.
    inputs: FileInputs | None = None


def _statistics(results: Sequence[ResultRow]) -> BatchStatistics:
    """The seed's six statistics, from the outcomes (docs/design.md section 3: they add up)."""
    counts = dict.fromkeys(st.OUTCOMES, 0)
    for result in results:
        counts[result["outcome"]] += 1
    submitted = sum(counts[o] for o in st.SUBMITTED_OUTCOMES)
    return BatchStatistics(
        total_jobs=len(results),
        completed_jobs=counts[st.CACHED],
        in_progress_jobs=counts[st.JOINED] + submitted,
        failed_submissions=sum(counts[o] for o in st.UNSERVED_OUTCOMES),
        successful_submissions=submitted,
        resubmitted_jobs=counts[st.RESUBMITTED],
    )


def _refused(row: ResultRow, reason: str) -> ResultRow:
    return row | {"outcome": "refused", "new_status": st.FAILED, "message": f"Submission failed: {reason}"}


#: Configs one batch may hold, appends included: beyond it a batch's detail is too big to answer in one piece.
MAX_BATCH_CONFIGS = 50_000


class Engine:
    """The embedded dsHPC service: files, methods, jobs and batches in one home directory."""

    max_batch_configs = MAX_BATCH_CONFIGS

    def __init__(self, home: Home, store: Store, scheduler: Scheduler, *others: Scheduler) -> None:
        self.home = home
        self.store = store
        self.scheduler = scheduler
        self.schedulers: dict[str, Scheduler] = {s.name: s for s in (*others, scheduler)}
        self._schemas: dict[str, ParameterSchema] = {}
        self.streams = StreamedUploads(home, store)

    def close(self) -> None:
        for scheduler in self.schedulers.values():
            scheduler.close()
        self.store.close()

    # --- methods ---------------------------------------------------------------------------------------

    def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        """Register a method directory (or a directory of them); each becomes the latest of its name."""
        with method_dirs(path) as directories:
            loaded = [load_method(directory) for directory in directories]
            for method in loaded:
                install_method(self.home, method)
                self.store.add_method(method.function_hash, method.spec)
        hashes = {m.function_hash for m in loaded}
        return [m for m in self.store.list_methods(latest_only=False) if m.function_hash in hashes]

    def list_methods(self, latest_only: bool = True) -> list[MethodInfo]:
        return self.store.list_methods(latest_only=latest_only)

    def method_versions(self, name: str) -> list[MethodInfo]:
        versions = self.store.list_methods(name=name, latest_only=False)
        if not versions:
            raise NotFoundError(f"Method '{name}' not found")
        return versions

    def _schema(self, function_hash: str, spec: MethodSpec) -> ParameterSchema:
        schema = self._schemas.get(function_hash)
        if schema is None:
            schema = self._schemas[function_hash] = ParameterSchema(spec, function_hash)
        return schema

    # --- files -----------------------------------------------------------------------------------------

    def upload_file(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_hash: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        exist_ok: bool = True,
    ) -> FileInfo:
        """Store content (bytes, or a file's path) under its SHA-256, verified against ``file_hash`` if given.

        An upload of content already stored returns the stored record (or ConflictError, without
        ``exist_ok``); the bytes are kept once whatever the number of uploads.
        """
        file_hash = file_hash.lower() if isinstance(file_hash, str) else file_hash
        if file_hash is not None and not is_sha256_hex(file_hash):
            raise InvalidInputError("file_hash: must be 64 hexadecimal characters (a SHA-256 digest)")
        if isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            if not path.is_file():
                raise InvalidInputError(f"path: {str(path)!r} is not a readable file")
            filename = filename or path.name
        staged, digest, size = stage_upload(self.home, source)
        if file_hash is not None and digest != file_hash:
            staged.unlink(missing_ok=True)
            raise InvalidInputError(f"file_hash: does not match the content, whose SHA-256 is {digest}")
        return keep_staged(
            self.home, self.store, staged, digest, size,
            filename=filename, content_type=content_type, metadata=metadata, exist_ok=exist_ok,
        )  # fmt: skip

    def check_hashes(self, hashes: Sequence[str]) -> HashCheckResponse:
        """Which hashes the store holds, answered in the spelling asked (hashes compare case-insensitively)."""
        existing = self.store.existing_files([h.lower() for h in hashes if isinstance(h, str)])
        return HashCheckResponse(
            existing_hashes=[h for h in hashes if h.lower() in existing],
            missing_hashes=[h for h in hashes if h.lower() not in existing],
        )

    def list_files(self) -> list[FileInfo]:
        return self.store.list_files()

    def get_file(self, file_hash: str) -> FileInfo:
        info = self.store.get_file(file_hash.lower())
        if info is None:
            raise NotFoundError(f"File '{file_hash}' not found")
        return info

    # --- jobs ------------------------------------------------------------------------------------------

    def simulate_job(self, config: ConfigLike) -> JobSimulationResponse:
        """The seed's single-job call: the same logic as one config of a batch (no batch is recorded)."""
        result = self._simulate([config], dry_run=False, record=False).results[0]
        return JobSimulationResponse(
            job_id=result.job_id,
            new_status=result.new_status,
            old_status=result.old_status,
            output=result.output,
            message=result.message,
            function_hash=result.function_hash,
            outcome=result.outcome,
        )

    def simulate_jobs(
        self,
        configs: Sequence[ConfigLike],
        *,
        dry_run: bool = False,
        append_to: str | None = None,
    ) -> MultiJobSimulationResponse:
        """Serve each config from cache, join its running job, or submit it; record the batch.

        With ``dry_run`` nothing is submitted or recorded: each result says what would happen. ``append_to``
        adds the configs to a batch recorded earlier instead of a new one, so a client that sends a large batch
        in chunks still gets one batch holding every config in order (the response covers this call's configs).
        """
        if dry_run and append_to is not None:
            raise InvalidInputError("batch_id: a dry run records nothing, so it cannot add to a batch")
        try:
            return self._simulate(configs, dry_run=dry_run, record=not dry_run, append_to=append_to)
        except DiskFullError:  # no space to record the batch: an answer that submits nothing is still served
            answer = self._simulate(configs, dry_run=True, record=False)
            if dry_run or append_to is not None or answer.successful_submissions:
                raise
            return answer.model_copy(update={"dry_run": False})

    def _prepare(self, items: Sequence[object]) -> list[_Checked]:
        """Check every config and compute its job key; errors stay per config."""
        configs = [read_config(item) for item in items]
        valid = [c for c in configs if isinstance(c, Config)]
        methods = self.store.latest_methods({c.method_name for c in valid})
        named = (h for c in valid for v in (c.file_inputs or {}).values() for h in ([v] if isinstance(v, str) else v))
        hashes = {c.file_hash.lower() for c in valid if c.file_hash} | {h.lower() for h in named}
        files = self.store.existing_files(sorted(hashes))
        return [self._check(config, methods, files) for config in configs]

    def _check(
        self, config: Config | ConfigError, methods: Mapping[str, tuple[str, MethodSpec]], files: set[str]
    ) -> _Checked:
        """The seed's checks of one config, in its order: the config, its method, its file, its parameters."""
        if isinstance(config, ConfigError):
            return _Checked(
                config.file_hash, config.method_name, config.parameters, error=config.message,
                file_inputs=config.file_inputs,
            )  # fmt: skip
        file_hash = config.file_hash or None
        method = methods.get(config.method_name)
        if method is None:
            error = f"Method '{config.method_name}' not found"
            return _Checked(
                file_hash, config.method_name, config.parameters, error=error, file_inputs=config.file_inputs
            )
        checked = _Checked(
            file_hash, config.method_name, config.parameters, function_hash=method[0], file_inputs=config.file_inputs
        )
        inputs_problem = declared_inputs_problem(method[1], config)
        if inputs_problem is not None:
            checked.error = f"Invalid inputs: {inputs_problem}"
            return checked
        checked.inputs = resolved_inputs(method[1], config.file_inputs)
        missing = missing_file(config, files)
        if missing is not None:
            checked.error = missing
            return checked
        try:
            checked.canonical, params_key = self._schema(*method).canonicalize(config.parameters)
        except InvalidParametersError as exc:
            checked.error = f"Invalid parameters: {exc}"
            return checked
        checked.key = job_key(inputs_key(config.file_hash.lower(), checked.inputs), params_key)
        return checked

    def _simulate(
        self, items: Sequence[object], *, dry_run: bool, record: bool, append_to: str | None = None
    ) -> MultiJobSimulationResponse:
        """Decide every config, record the new jobs with the batch, then hand the jobs to the scheduler.

        The lookup of every job key, the insert of the new jobs and the batch share one write transaction: that
        makes submissions exactly-once between processes, and a crash leaves all of a batch or none of it. The
        scheduler hears of the jobs only once they are committed, never of a job the store does not know.
        """
        configs = self._prepare(items)
        leaders: dict[str, int] = {}
        for index, config in enumerate(configs):
            if config.error is None:
                leaders.setdefault(config.key, index)
        batch_id = (append_to or uuid.uuid4().hex) if record else None
        offset = 0
        now = time.time()
        with self.store.read() if dry_run else self.store.write() as tx:
            results, new_jobs = self._decide(configs, leaders, tx.latest_jobs(list(leaders)), dry_run, now)
            statistics = _statistics(results)
            if append_to is not None:
                offset = tx.extend_batch(append_to, statistics, results)
                if offset < 0:
                    raise NotFoundError(f"Batch '{append_to}' not found")
                if offset + len(results) > self.max_batch_configs:
                    raise LimitExceededError(f"batch_id: {offset} + {len(results)} configs is over the limit of "
                                             f"{self.max_batch_configs} per batch: start a new batch")  # fmt: skip
            elif batch_id is not None:
                tx.insert_batch(batch_id, now, statistics, results)
            if new_jobs:
                tx.insert_jobs(job for job, _ in new_jobs)
        if new_jobs:
            submitted = self._submit([submission for _, submission in new_jobs], results)
            if submitted is not results:
                results, statistics = submitted, _statistics(submitted)
                if batch_id is not None:
                    self._record_refusals(batch_id, offset, results)
        # Built by the code above, so exactly typed: strict validation is both a check and the fast path.
        return MultiJobSimulationResponse.model_validate(
            {"results": results, "batch_id": batch_id, "dry_run": dry_run, **statistics.model_dump()}, strict=True
        )

    def _decide(
        self,
        configs: Sequence[_Checked],
        leaders: dict[str, int],
        latest: dict[str, LatestJob],
        dry_run: bool,
        now: float,
    ) -> tuple[list[ResultRow], list[tuple[NewJob, Submission]]]:
        """The seed's rule for each config, given the most recent job of each key: its result row, and the
        new jobs to record and submit."""
        results: list[ResultRow] = []
        new_jobs: list[tuple[NewJob, Submission]] = []
        messages = DRY_MESSAGES if dry_run else LIVE_MESSAGES
        for index, config in enumerate(configs):
            job_id: str | None = None
            new_status = old_status = output = None
            if config.error is not None:
                outcome: Outcome = "invalid"
                message = config.error
            elif leaders[config.key] != index:
                leader = results[leaders[config.key]]
                job_id, new_status, output = leader["job_id"], leader["new_status"], leader["output"]
                outcome = "cached" if leader["outcome"] == "cached" else "in_progress"
                message = messages["shared"] if outcome == "in_progress" else leader["message"]
            else:
                previous = latest.get(config.key)
                if previous is not None and previous.status == st.COMPLETED:
                    outcome, job_id, new_status, output = "cached", previous.job_id, previous.status, previous.output
                elif previous is not None and st.is_in_progress(previous.status):
                    outcome, job_id, new_status = "in_progress", previous.job_id, previous.status
                else:
                    outcome = "new" if previous is None else "resubmitted"
                    old_status = None if previous is None else previous.status
                    if not dry_run:
                        job_id, new_status = uuid.uuid4().hex, st.PENDING
                        new_jobs.append(self._new_job(job_id, config, now))
                message = messages[outcome]
            results.append(
                {"job_id": job_id, "new_status": new_status, "old_status": old_status, "output": output,
                 "message": message, "file_hash": config.file_hash, "method_name": config.method_name,
                 "function_hash": config.function_hash, "parameters": config.parameters, "outcome": outcome,
                 "file_inputs": config.file_inputs}
            )  # fmt: skip
        return results, new_jobs

    def _new_job(self, job_id: str, config: _Checked, now: float) -> tuple[NewJob, Submission]:
        """The row to insert for a new job, and what its scheduler will need to run it."""
        assert config.method_name and config.function_hash and config.canonical is not None
        file_hash = (config.file_hash or "").lower()
        inputs = None if config.inputs is None else canonical_json(config.inputs)
        row = NewJob(
            job_id, config.key, file_hash, config.method_name, config.function_hash,
            canonical_json(config.canonical), now, self.scheduler.name, inputs,
        )  # fmt: skip
        spec = self._schemas[config.function_hash].spec
        return row, Submission(job_id, file_hash, config.function_hash, spec, config.canonical, config.inputs)

    def _submit(self, submissions: list[Submission], results: list[ResultRow]) -> list[ResultRow]:
        """Hand the new jobs to the scheduler; a refused job fails with the reason, never silently. The result
        rows with those of refused jobs replaced (the same list when none was refused)."""
        refusals = {r.job_id: r.reason for r in self.scheduler.submit(submissions)}
        if not refusals:
            return results
        self.store.apply_updates(
            [JobUpdate(jid, st.FAILED, error=f"scheduler refused the job: {why}", finished_at=time.time())
             for jid, why in refusals.items()]
        )  # fmt: skip
        reasons = ((row, refusals.get(row["job_id"] or "")) for row in results)
        return [row if reason is None else _refused(row, reason) for row, reason in reasons]

    def _record_refusals(self, batch_id: str, offset: int, results: Sequence[ResultRow]) -> None:
        """Put the refused rows of one call (``offset`` is where it starts in the batch) into the recorded batch.

        Why afterwards: the batch is recorded in its jobs' transaction, and the scheduler may hear of jobs
        only once that has committed, so its refusals come later. Why this way: only the refused rows are
        replaced, by index, inside one write transaction (the store's methods run in the transaction this
        thread holds), so a chunk another call appends meanwhile is never lost. The store has no per-row
        update, so the rows are read and written whole; only a refusal, a scheduler's fault, pays for that.
        """
        with self.store.write():
            found = self.store.get_batch(batch_id)
            assert found is not None, "batches are never deleted"
            recorded = [cast(ResultRow, result.model_dump()) for result in found[1]]
            for index, row in enumerate(results):
                if row["outcome"] == "refused":
                    recorded[offset + index] = row
            self.store.update_batch(batch_id, _statistics(recorded), recorded)

    def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The current records of these jobs (unknown ids are left out), asking their schedulers once."""
        records = self.store.get_jobs(job_ids)
        polled = False
        for name, scheduler in self.schedulers.items():
            active = [r for r in records if r.scheduler == name and st.is_in_progress(r.status)]
            if active:
                updates = scheduler.poll(active)
                if updates:
                    self.store.apply_updates(updates)
                    polled = True
        return self.store.get_jobs(job_ids) if polled else records

    def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        return self.store.list_jobs(status=status, limit=limit)

    def get_job(self, job_id: str) -> JobRecord:
        records = self.job_statuses([job_id])
        if not records:
            raise NotFoundError(f"Job '{job_id}' not found")
        return records[0]

    def cancel(self, job_ids: Sequence[str]) -> CancelResponse:
        """Cancel jobs: those not started end ``CA`` at once, running ones are stopped by their scheduler.

        Every scheduler hears of all its cancelled jobs, pending ones included: a job that is pending here may
        already sit in a cluster's queue (or be running there unbeknown to the store), and must leave it.
        """
        records = self.store.get_jobs(list(dict.fromkeys(job_ids)))
        known = {r.job_id for r in records}
        active = [r for r in records if st.is_in_progress(r.status)]
        # "pending" as far as the store knew: a cluster may have started it meanwhile, and is told to stop it
        self.store.cancel_pending([r.job_id for r in active], reason="cancelled while pending")
        for name, scheduler in self.schedulers.items():
            mine = [r for r in active if r.scheduler == name]
            if mine:
                scheduler.cancel(mine)
        return CancelResponse(
            cancelled=[r.job_id for r in active],
            already_finished=[r.job_id for r in records if not st.is_in_progress(r.status)],
            not_found=[j for j in dict.fromkeys(job_ids) if j not in known],
        )

    # --- batches ---------------------------------------------------------------------------------------

    def batches(self, limit: int = 100) -> list[BatchSummary]:
        return self.store.list_batches(limit=limit)

    def batch(self, batch_id: str) -> BatchDetail:
        """A recorded batch with the current record of every job in it and live counts."""
        found = self.store.get_batch(batch_id)
        if found is None:
            raise NotFoundError(f"Batch '{batch_id}' not found")
        summary, results = found
        job_ids = list(dict.fromkeys(r.job_id for r in results if r.job_id))
        jobs = {job.job_id: job for job in self.job_statuses(job_ids)}
        counts = dict.fromkeys(get_args(st.LiveCount), 0)
        for result in results:
            job = jobs.get(result.job_id or "")
            counts[st.live_count(job.status if job is not None else None)] += 1
            if job is not None and job.status == st.COMPLETED:
                result.output = job.output
        live = LiveCounts(**counts)
        return BatchDetail(**summary.model_dump(), results=results, jobs=list(jobs.values()), live=live)

    def cancel_batch(self, batch_id: str) -> CancelResponse:
        found = self.store.get_batch(batch_id)
        if found is None:
            raise NotFoundError(f"Batch '{batch_id}' not found")
        return self.cancel(list(dict.fromkeys(r.job_id for r in found[1] if r.job_id)))
