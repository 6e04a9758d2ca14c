"""The embedded backend of a server for a team: the engine's answers, kept to what the caller may see and do
(docs/design.md section 11).

The cache stays shared: a config is answered with whatever job has its key, whoever ran it. What is scoped is
the record of who asked for what: batches (their configs and parameters) are their owner's and the admins';
lists show the caller's own unless an admin asks for ``scope=all``; a cancel touches the caller's jobs only.
The caller comes from :mod:`..service.identity` (set by the server per request), so the ``Backend`` operations
keep their signatures; the team's own operations (``whoami``, ``users``, ``usage``, ``audit``) are added here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import anyio

from ..domain.errors import ConflictError, ForbiddenError, LimitExceededError, NotFoundError
from ..domain.models import (
    CHANGES_LIMIT,
    BatchDetail,
    BatchSummary,
    CancelResponse,
    FileDetails,
    FileInfo,
    ForgetResponse,
    JobChanges,
    JobRecord,
    LogChunk,
    MethodInfo,
    MultiJobSimulationResponse,
    Page,
    ServiceStatus,
    StagedUpload,
)
from ..domain.pages import DEFAULT_BATCHES_PAGE, DEFAULT_JOBS_PAGE, DEFAULT_RESULTS_PAGE
from ..domain.pipeline_models import PipelineDetail
from ..domain.retries import SubmitOptions
from ..domain.team import AuditEntry, Usage, UserRecord
from ..service.engine import Engine
from ..service.identity import current_caller
from ..service.quotas import release
from ..service.users import Team
from .base import ConfigLike
from .embedded import EmbeddedBackend

#: Seconds between two releases of jobs waiting for a quota (a job ended frees room for the next).
RELEASE_EVERY_S = 0.5


class TeamBackend(EmbeddedBackend):
    """An :class:`.embedded.EmbeddedBackend` that knows its callers (``team``) and keeps them to their own."""

    def __init__(self, engine: Engine, team: Team) -> None:
        super().__init__(engine)
        self.team = team
        self._released_at = -RELEASE_EVERY_S
        engine.pipelines.running_quota = self._max_running

    def _max_running(self, owner: str) -> int | None:
        return self.team.quotas(owner).max_running

    # --- jobs waiting for their owner's quota ----------------------------------------------------------

    async def release_waiting(self, *, force: bool = False) -> None:
        """Hand the jobs that waited for their owner's quota and now fit to the scheduler. Every call that
        looks at jobs does it (at most every ``RELEASE_EVERY_S``), and the server's loop does it on its own."""
        now = time.monotonic()
        if not force and now - self._released_at < RELEASE_EVERY_S:
            return
        self._released_at = now
        await self._write(self._release_now)

    def _release_now(self) -> None:
        self.engine.submit_released(release(self.team.table, self._max_running, self.engine.scheduler.name))

    async def keep_releasing(self, every: float = RELEASE_EVERY_S) -> None:
        """Release waiting jobs every ``every`` seconds until cancelled (the server runs it beside itself)."""
        while True:
            await anyio.sleep(every)
            await self.release_waiting(force=True)

    async def services_status(self) -> ServiceStatus:
        """The engine's status with the caller's ``max_configs`` as its limit, so their client splits a call
        over the quota into calls under it rather than being refused (413)."""
        status = await super().services_status()
        limit = (await self._run(self.team.quotas, current_caller().name)).max_configs
        if limit is None:
            return status
        return status.model_copy(update={"limits": status.limits.model_copy(update={"max_configs": limit})})

    # --- records the caller submits --------------------------------------------------------------------

    async def simulate_jobs(
        self,
        configs: Sequence[ConfigLike],
        *,
        dry_run: bool = False,
        append_to: str | None = None,
        options: SubmitOptions | None = None,
        priority: int = 0,
        name: str | None = None,
    ) -> MultiJobSimulationResponse:
        caller = current_caller()
        limit = (await self._run(self.team.quotas, caller.name)).max_configs
        if limit is not None and len(configs) > limit:
            raise LimitExceededError(
                f"jobs: {len(configs)} configs is over your quota of {limit} per call (max_configs of user "
                f"{caller.name!r}); split them into several calls"
            )
        if append_to is not None:
            await self._own_batch(append_to)
        await self.release_waiting()  # the jobs that waited go first
        return await super().simulate_jobs(
            configs, dry_run=dry_run, append_to=append_to, options=options, priority=priority, name=name
        )

    async def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]:
        await self.release_waiting()
        return await super().job_statuses(job_ids)

    async def get_job(self, job_id: str) -> JobRecord:
        await self.release_waiting()
        return await super().get_job(job_id)

    async def upload_file(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_hash: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        exist_ok: bool = True,
    ) -> FileInfo:
        try:
            info = await super().upload_file(
                source, file_hash=file_hash, filename=filename, content_type=content_type, metadata=metadata,
                exist_ok=exist_ok,
            )  # fmt: skip
        except ConflictError:  # the content was there already: this caller uploaded it too
            if file_hash is not None:
                await self._uploaded(file_hash.lower())
            raise
        await self._uploaded(info.file_hash)
        return info

    async def append_staged(
        self, file_hash: str, offset: int, data: bytes, total_size: int, details: FileDetails | None = None
    ) -> StagedUpload:
        staged = await super().append_staged(file_hash, offset, data, total_size, details)
        if staged.file is not None:
            await self._uploaded(staged.file.file_hash)
        return staged

    async def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        registered = await super().register_method(path)
        await self._write(self.team.registered, registered)
        return registered

    # --- what the caller may see -----------------------------------------------------------------------

    async def list_jobs(self, status: str | None = None, limit: int = 100) -> list[JobRecord]:
        caller = current_caller()
        if caller.sees_all:
            return await super().list_jobs(status, limit)
        return await self._run(self.team.table.owned_jobs, caller.name, status, limit)

    async def jobs_page(
        self, status: str | None = None, limit: int = DEFAULT_JOBS_PAGE, cursor: str | None = None
    ) -> Page[JobRecord]:
        """Every job, page after page, for those who see all; a user's own newest jobs, one page (no cursor)."""
        if current_caller().sees_all:
            return await super().jobs_page(status, limit, cursor)
        return Page(items=await self.list_jobs(status, limit))

    async def batches_page(self, limit: int = DEFAULT_BATCHES_PAGE, cursor: str | None = None) -> Page[BatchSummary]:
        """As :meth:`jobs_page`, for batches."""
        if current_caller().sees_all:
            return await super().batches_page(limit, cursor)
        return Page(items=await self.batches(limit))

    async def batch_page(
        self, batch_id: str, limit: int = DEFAULT_RESULTS_PAGE, cursor: str | None = None
    ) -> BatchDetail:
        await self._own_batch(batch_id)
        await self.release_waiting()
        return await super().batch_page(batch_id, limit, cursor)

    async def job_changes(self, since: int | None = None, limit: int = CHANGES_LIMIT) -> JobChanges:
        """Every job's changes, for those who see every job; a user is answered as by a server without the
        route (404), so their client polls the jobs it follows by id (what it may see of others' jobs)."""
        if not current_caller().sees_all:
            raise NotFoundError("jobs/changes: answered to admins only on a server for a team; poll jobs by id")
        return await super().job_changes(since, limit)

    async def read_log(self, job_id: str, stream: str = "stdout", offset: int = 0) -> LogChunk:
        owner = (await self._run(self.team.table.job_owners, [job_id])).get(job_id)
        if not current_caller().may_touch(owner):
            raise NotFoundError(f"Job '{job_id}' not found")
        return await super().read_log(job_id, stream, offset)

    async def batches(self, limit: int = 100, *, name: str | None = None) -> list[BatchSummary]:
        caller = current_caller()
        if caller.sees_all:
            return await super().batches(limit, name=name)
        return await self._run(self.team.table.owned_batches, caller.name, limit, name)

    async def batch(self, batch_id: str) -> BatchDetail:
        await self._own_batch(batch_id)
        await self.release_waiting()
        return await super().batch(batch_id)

    async def pipeline(self, pipeline_id: str) -> PipelineDetail:
        await self._own_pipeline(pipeline_id)
        return await super().pipeline(pipeline_id)

    # --- what the caller may change --------------------------------------------------------------------

    async def cancel(self, job_ids: Sequence[str]) -> CancelResponse:
        await self._own_jobs(job_ids, "cancels")
        answer = await super().cancel(job_ids)
        await self._write(self.team.audit, "jobs.cancel", None, {"cancelled": answer.cancelled})
        return answer

    async def forget(self, job_ids: Sequence[str]) -> ForgetResponse:
        await self._own_jobs(job_ids, "forgets")
        answer = await super().forget(job_ids)
        await self._write(self.team.audit, "jobs.forget", None, {"forgotten": answer.forgotten})
        return answer

    async def cancel_batch(self, batch_id: str) -> CancelResponse:
        """The caller's own jobs of the batch: a job it joined or was served from another user's run is theirs,
        and keeps running (an admin's cancel stops every job of the batch)."""
        await self._own_batch(batch_id)
        found = await self._run(self.engine.store.get_batch, batch_id)
        assert found is not None, "batches are never deleted"
        job_ids = list(dict.fromkeys(r.job_id for r in found[1] if r.job_id))
        caller = current_caller()
        owners = await self._run(self.team.table.job_owners, job_ids)
        answer = await super().cancel([job_id for job_id in job_ids if caller.may_touch(owners.get(job_id))])
        await self._write(self.team.audit, "batch.cancel", batch_id, {"cancelled": answer.cancelled})
        return answer

    async def cancel_pipeline(self, pipeline_id: str) -> PipelineDetail:
        await self._own_pipeline(pipeline_id)
        answer = await super().cancel_pipeline(pipeline_id)
        await self._write(self.team.audit, "pipeline.cancel", pipeline_id, None)
        return answer

    # --- the team's own operations ---------------------------------------------------------------------

    async def users(self) -> list[UserRecord]:
        return [
            UserRecord(name=u.name, role="admin" if u.admin else "user", active=u.active, max_running=u.max_running,
                       max_configs=u.max_configs, created_at=u.created_at)
            for u in await self._run(self.team.members)
        ]  # fmt: skip

    async def usage(self) -> dict[str, Usage]:
        """Jobs running, pending and in total per user: everyone's for admins, the caller's own otherwise."""
        caller = current_caller()
        usage = {name: Usage(**counts) for name, counts in (await self._run(self.team.table.usage)).items()}
        if caller.admin:
            return usage
        name = caller.name or ""
        return {name: usage.get(name, Usage())}

    async def audit(self, limit: int, action: str | None) -> list[AuditEntry]:
        entries = await self._run(self.team.table.audit_entries, limit, action)
        return [
            AuditEntry(at=at, actor=actor, action=act, target=target, detail=detail)
            for at, actor, act, target, detail in entries
        ]

    async def _own_jobs(self, job_ids: Sequence[str], verb: str) -> None:
        """ForbiddenError naming the jobs of another user among these (admins touch anyone's)."""
        caller = current_caller()
        owners = await self._run(self.team.table.job_owners, job_ids)
        others = [job_id for job_id, owner in owners.items() if not caller.may_touch(owner)]
        if others:
            raise ForbiddenError(
                f"job_ids: {len(others)} of these jobs are not yours ({', '.join(others[:3])}"
                f"{', ...' if len(others) > 3 else ''}); only an admin {verb} another user's jobs"
            )

    async def _own_batch(self, batch_id: str) -> None:
        """NotFoundError for a batch the caller may not see, the same answer as for none: ids are not probed."""
        found, owner = await self._run(self.team.table.batch_owner, batch_id)
        if not found or not current_caller().may_touch(owner):
            raise NotFoundError(f"Batch '{batch_id}' not found")

    async def _own_pipeline(self, pipeline_id: str) -> None:
        """As :meth:`_own_batch`: another user's pipeline is not found, like none."""
        found, owner = await self._run(self.team.table.pipeline_owner, pipeline_id)
        if not found or not current_caller().may_touch(owner):
            raise NotFoundError(f"Pipeline '{pipeline_id}' not found")

    async def _uploaded(self, file_hash: str) -> None:
        name = current_caller().name
        if name is not None:
            await self._write(self.team.table.record_upload, file_hash, name)
