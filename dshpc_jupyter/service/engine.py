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

import time
import uuid
from collections.abc import Sequence
from typing import cast, get_args

from ..domain import status as st
from ..domain.batch_names import check_batch_name
from ..domain.bulk import no_gc_pauses
from ..domain.errors import DiskFullError, InvalidInputError, LimitExceededError, NotFoundError
from ..domain.hashing import canonical_json
from ..domain.home import Home
from ..domain.models import (
    CHANGES_LIMIT,
    MAX_CHANGES_LIMIT,
    MAX_CURSOR,
    BatchDetail,
    BatchSummary,
    CancelResponse,
    ConfigLike,
    ForgetResponse,
    JobChanges,
    JobRecord,
    JobSimulationResponse,
    LiveCounts,
    MultiJobSimulationResponse,
    ResultRow,
)
from ..domain.retries import DEFAULT_POLICY, RetryPolicy, SubmitOptions
from ..domain.status import Outcome
from ..schedulers.base import JobUpdate, PollsActive, Scheduler, Submission
from ..store.sqlite import LatestJob, NewJob, Store
from ..store.team import record_owner
from .catalog import Catalog
from .checks import Checked, prepare
from .forget import forget
from .identity import current_caller
from .outcomes import DRY_MESSAGES, LIVE_MESSAGES, refused, statistics
from .pipelines import Inside, Pipelines
from .queueing import Queueing, check_priority, with_queue_positions
from .quotas import hold
from .resubmission import check_options, decide

_SEED_OPTIONS = SubmitOptions()

#: Configs one batch may hold, appends included: beyond it a batch's detail is too big to answer in one piece.
MAX_BATCH_CONFIGS = 50_000


class Engine(Catalog):
    """The embedded dsHPC service: files, methods, jobs and batches in one home directory."""

    max_batch_configs = MAX_BATCH_CONFIGS

    def __init__(self, home: Home, store: Store, scheduler: Scheduler, *others: Scheduler) -> None:
        super().__init__(home, store)
        self.scheduler = scheduler
        self.schedulers: dict[str, Scheduler] = {s.name: s for s in (*others, scheduler)}
        self.pipelines = Pipelines(self)
        self.pipelines.resume()

    def close(self) -> None:
        self.pipelines.close()
        for scheduler in self.schedulers.values():
            scheduler.close()
        self.store.close()

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
        options: SubmitOptions | None = None,
        priority: int = 0,
        name: str | None = None,
    ) -> MultiJobSimulationResponse:
        """Serve each config from cache, join its running job, or submit it; record the batch.

        With ``dry_run`` nothing is submitted or recorded: each result says what would happen. ``append_to``
        adds the configs to a batch recorded earlier instead of a new one, so a client that sends a large batch
        in chunks still gets one batch holding every config in order (the response covers this call's configs).
        ``options`` set the new jobs' retry policy and whether failed or completed jobs run again (section 12).
        ``name`` is recorded with a new batch (docs/design.md section 6.1).
        """
        if dry_run and append_to is not None:
            raise InvalidInputError("batch_id: a dry run records nothing, so it cannot add to a batch")
        name = check_batch_name(name)
        if name is not None and append_to is not None:
            raise InvalidInputError(f"name: names a new batch; configs added to batch {append_to} keep its name")
        options = options or SubmitOptions()
        check_options(options)
        check_priority(priority)
        try:
            with no_gc_pauses():  # per-config cost stays flat up to 100,000 configs (docs/design.md section 14.2)
                return self._simulate(
                    configs, dry_run=dry_run, record=not dry_run, append_to=append_to, options=options,
                    priority=priority, name=name,
                )  # fmt: skip
        except DiskFullError:  # no space to record the batch: an answer that submits nothing is still served
            answer = self._simulate(configs, dry_run=True, record=False, options=options)
            if dry_run or append_to is not None or answer.successful_submissions:
                raise
            return answer.model_copy(update={"dry_run": False})

    def submit_inside(self, configs: Sequence[ConfigLike], inside: Inside) -> MultiJobSimulationResponse:
        """The configs decided and submitted without a batch, ``inside`` run in the write transaction that
        records their new jobs: how a pipeline's steps get their jobs exactly once (docs/design.md section 10)."""
        return self._simulate(configs, dry_run=False, record=False, inside=inside)

    def _simulate(
        self,
        items: Sequence[object],
        *,
        dry_run: bool,
        record: bool,
        append_to: str | None = None,
        options: SubmitOptions = _SEED_OPTIONS,
        priority: int = 0,
        name: str | None = None,
        inside: Inside | None = None,
    ) -> MultiJobSimulationResponse:
        """Decide every config, record the new jobs with the batch, then hand the jobs to the scheduler.

        The lookup of every job key, the insert of the new jobs and the batch share one write transaction: that
        makes submissions exactly-once between processes, and a crash leaves all of a batch or none of it. The
        scheduler hears of the jobs only once they are committed, never of a job the store does not know.
        """
        configs = prepare(self.store, self._schema, items)
        # The first config of each key leads it: walked from the end, the first index is the one written last.
        leaders = {configs[i].key: i for i in range(len(configs) - 1, -1, -1) if configs[i].error is None}
        batch_id = (append_to or uuid.uuid4().hex) if record else None
        offset = 0
        now = time.time()
        with self.store.read() if dry_run else self.store.write() as tx:
            latest = tx.latest_jobs(sorted(leaders))
            queueing = Queueing(priority, batch_id or uuid.uuid4().hex)
            results, new_jobs = self._decide(configs, leaders, latest, dry_run, now, options, queueing)
            stats = statistics(results)
            if append_to is not None:
                offset = tx.extend_batch(append_to, stats, results)
                if offset < 0:
                    raise NotFoundError(f"Batch '{append_to}' not found")
                if offset + len(results) > self.max_batch_configs:
                    raise LimitExceededError(f"batch_id: {offset} + {len(results)} configs is over the limit of "
                                             f"{self.max_batch_configs} per batch: start a new batch")  # fmt: skip
            elif batch_id is not None:
                tx.insert_batch(batch_id, now, stats, results, name)
            caller, held = current_caller(), list[NewJob]()
            if new_jobs:  # over the caller's quota, some wait (docs/design.md section 11.4)
                new_jobs, held = hold(tx.connection, caller, new_jobs)
                tx.replace_jobs((latest[configs[i].key].job_id, row["job_id"]) for i, row in enumerate(results)
                                if row["outcome"] == st.RERUN and row["job_id"])  # fmt: skip
                tx.insert_jobs([*(job for job, _ in new_jobs), *held])
            if caller.name is not None and not dry_run:  # a server's user (docs/design.md section 11): theirs
                record_owner(tx.connection, caller.name, batch_id if append_to is None else None,
                             [job.job_id for job, _ in new_jobs] + [job.job_id for job in held])  # fmt: skip
            if inside is not None:
                inside(tx, results)
        if new_jobs:
            submitted = self._submit([submission for _, submission in new_jobs], results)
            if submitted is not results:
                results, stats = submitted, statistics(submitted)
                if batch_id is not None:
                    self._record_refusals(batch_id, offset, results)
        # Built by the code above, so exactly typed: strict validation is both a check and the fast path.
        return MultiJobSimulationResponse.model_validate(
            {"results": results, "batch_id": batch_id, "dry_run": dry_run, "quota_waiting": len(held),
             **stats.model_dump()}, strict=True,
        )  # fmt: skip

    def _decide(
        self,
        configs: Sequence[Checked],
        leaders: dict[str, int],
        latest: dict[str, LatestJob],
        dry_run: bool,
        now: float,
        options: SubmitOptions,
        queueing: Queueing,
    ) -> tuple[list[ResultRow], list[tuple[NewJob, Submission]]]:
        """The seed's rule for each config, given the most recent job of each key (as ``options`` bend it:
        section 12): its result row, and the new jobs to record and submit."""
        results: list[ResultRow] = []
        new_jobs: list[tuple[NewJob, Submission]] = []
        # Per call, not per config: the messages in this call's words, the retry policy of each method version.
        messages = {k: v.format(mode=options.resubmit) for k, v in (DRY_MESSAGES if dry_run else LIVE_MESSAGES).items()}
        policies: dict[str | None, RetryPolicy] = {}
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
                policy = policies.get(config.function_hash)
                if policy is None:
                    policy = policies[config.function_hash] = self._policy(config, options)
                outcome = decide(previous.status if previous else None, options, policy)
                if outcome == "cached" and previous is not None:
                    job_id, new_status, output = previous.job_id, previous.status, previous.output
                elif outcome in ("in_progress", "failed") and previous is not None:
                    job_id, new_status = previous.job_id, previous.status
                elif not dry_run:
                    job_id, new_status = uuid.uuid4().hex, st.PENDING
                    new_jobs.append(self._new_job(job_id, config, now, policy, queueing))
                if outcome in ("resubmitted", "rerun", "failed") and previous is not None:
                    old_status = previous.status
                message = messages[outcome]
            results.append(
                {"job_id": job_id, "new_status": new_status, "old_status": old_status, "output": output,
                 "message": message, "file_hash": config.file_hash, "method_name": config.method_name,
                 "function_hash": config.function_hash, "parameters": config.parameters, "outcome": outcome,
                 "file_inputs": config.file_inputs}
            )  # fmt: skip
        return results, new_jobs

    def _policy(self, config: Checked, options: SubmitOptions) -> RetryPolicy:
        """The retry policy of a config's job: the call's, else its method's, else the default."""
        if options.retry is not None:
            return options.retry
        schema = self._schemas.get(config.function_hash or "")
        spec_policy = None if schema is None else schema.spec.retry
        return DEFAULT_POLICY if spec_policy is None else spec_policy

    def _new_job(
        self, job_id: str, config: Checked, now: float, policy: RetryPolicy, queueing: Queueing
    ) -> tuple[NewJob, Submission]:
        """The row to insert for a new job, and what its scheduler will need to run it."""
        assert config.method_name and config.function_hash and config.canonical is not None
        file_hash = (config.file_hash or "").lower()
        inputs = None if config.inputs is None else canonical_json(config.inputs)
        retry = None if policy == DEFAULT_POLICY else policy.model_dump_json()
        row = NewJob(
            job_id, config.key, file_hash, config.method_name, config.function_hash,
            canonical_json(config.canonical), now, self.scheduler.name, inputs, retry, *queueing,
        )  # fmt: skip
        spec = self._schemas[config.function_hash].spec
        submission = Submission(
            job_id, file_hash, config.function_hash, spec, config.canonical, config.inputs, priority=queueing.priority
        )
        return row, submission

    def _submit(self, submissions: list[Submission], results: list[ResultRow]) -> list[ResultRow]:
        """Hand the new jobs to the scheduler; a refused job fails with the reason, never silently. The result
        rows with those of refused jobs replaced (the same list when none was refused)."""
        refusals = {r.job_id: r.reason for r in self.scheduler.submit(submissions)}
        if not refusals:
            return results
        self.store.apply_updates(
            [JobUpdate(jid, st.FAILED, error=f"scheduler refused the job: {why}", finished_at=time.time(),
                       retriable=False) for jid, why in refusals.items()]
        )  # fmt: skip
        reasons = ((row, refusals.get(row["job_id"] or "")) for row in results)
        return [row if reason is None else refused(row, reason) for row, reason in reasons]

    def submit_released(self, submissions: list[Submission]) -> None:
        """Hand jobs that waited for their owner's quota to the scheduler (:mod:`.quotas`)."""
        if submissions:
            self._submit(submissions, [])

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
            self.store.update_batch(batch_id, statistics(recorded), recorded)

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
        return with_queue_positions(self.store, self.store.get_jobs(job_ids) if polled else records)

    def job_changes(self, since: int | None = None, limit: int = CHANGES_LIMIT) -> JobChanges:
        """The jobs changed after cursor ``since``, oldest change first (docs/design.md section 14); without
        it, only the current cursor. The schedulers are asked first, as for ``job_statuses``."""
        if since is not None and not 0 <= since <= MAX_CURSOR:
            raise InvalidInputError(f"since: must be a cursor (0 to {MAX_CURSOR}), got {since}")
        if not 1 <= limit <= MAX_CHANGES_LIMIT:
            raise InvalidInputError(f"limit: must be between 1 and {MAX_CHANGES_LIMIT}, got {limit}")
        if since is not None:
            self.poll_in_progress(hint_only=True)
        cursor, jobs, more = self.store.job_changes(since, limit)
        return JobChanges.model_construct(cursor=cursor, jobs=jobs, more=more)

    def poll_in_progress(self, *, hint_only: bool = False) -> None:
        """Ask every scheduler about all its jobs in progress and record what changed. One that follows them
        itself (``PollsActive``: Slurm, by change) is just asked; with ``hint_only``, one job tells a scheduler
        that records its own results (the local one) that work is waiting, instead of every record."""
        for name, scheduler in self.schedulers.items():
            if isinstance(scheduler, PollsActive):
                updates = scheduler.poll_active()
            else:
                hint = hint_only and getattr(scheduler, "records_results", False)
                active = self.store.active_jobs(name, 1 if hint else -1)
                updates = scheduler.poll(active) if active else []
            if updates:
                self.store.apply_updates(updates)

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

    def forget(self, job_ids: Sequence[str]) -> ForgetResponse:
        """Remove ended jobs from the cache (jobs in progress are refused: cancel them first)."""
        return forget(self.home, self.store, job_ids)

    # --- batches ---------------------------------------------------------------------------------------

    def batches(self, limit: int = 100, *, name: str | None = None) -> list[BatchSummary]:
        """The newest batches first; ``name``: only those of that name."""
        return self.store.list_batches(limit=limit, name=name)

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
