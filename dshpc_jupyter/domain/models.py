"""Wire models: the one source of truth for field names, shared by the engine, the server and the client.

Names follow the dsHPC seed documents exactly (``JobConfig``, ``MultiJobSimulationRequest``, ...). Fields the
seed does not have are additions that seed clients ignore (``batch_id``, ``outcome``, ``dry_run``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, TypeAdapter

from .configs import Config, ConfigError, parse_config
from .retries import Attempt, Resubmit, RetryField
from .status import Outcome

T = TypeVar("T")
ParameterType = Literal["string", "integer", "number", "boolean", "array", "object"]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --- jobs: the seed's request and response models -----------------------------------------------------


class JobConfig(Model):
    """One job configuration of a ``simulate-jobs`` request (seed: ``JobConfig``)."""

    file_hash: str | None = None
    method_name: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    #: Named inputs instead of ``file_hash``; neither makes a parameters-only job (docs/design.md section 8.1).
    file_inputs: dict[str, str | list[str]] | None = None


def read_config(item: object) -> Config | ConfigError:
    """A config in any form a caller gives it, typed (a ``JobConfig`` has been checked already). It lives here,
    not in :mod:`.configs`, because it knows ``JobConfig`` and the models import :mod:`.configs`."""
    if isinstance(item, JobConfig):
        return parse_config(item.model_dump(exclude_none=True))
    return parse_config(item)


#: One config as a caller may hand it over: a model, a mapping, or one read already (by the request model).
ConfigLike = JobConfig | Config | ConfigError | Mapping[str, Any]


class MultiJobSimulationRequest(Model):
    """``POST /simulate-jobs`` body. Items are read one by one, so one bad config never stops the others: each
    is a :class:`.configs.Config` or the :class:`.configs.ConfigError` its result row will report."""

    jobs: list[Annotated[Config | ConfigError, PlainValidator(read_config)]] = Field(
        json_schema_extra={"items": {"$ref": "#/components/schemas/JobConfig"}},
        description="Job configurations: objects with file_hash, method_name and optional parameters.",
    )
    #: The call's options (docs/design.md section 12); absent, the seed's behaviour.
    retry: RetryField = Field(None, description="Retry policy of the jobs this call creates: retries, or a policy.")
    resubmit: Resubmit = Field("failed", description="Which failed jobs run again: failed, retriable or never.")
    force: bool = Field(False, description="Run configs again even when a completed job is cached.")
    priority: int = Field(0, description="Higher starts first; equal priorities take turns batch by batch.")
    name: str | None = Field(None, description="A name for the batch, to find it again by (an addition to the seed).")


class MultiJobResult(Model):
    """The answer for one config, in request order (seed: ``MultiJobResult``)."""

    job_id: str | None = None
    new_status: str | None = None
    old_status: str | None = None
    output: str | None = None
    message: str
    file_hash: str | None = None
    method_name: str | None = None
    function_hash: str | None = None
    parameters: Any = None
    outcome: Outcome
    file_inputs: Any = None


class ResultRow(TypedDict):
    """A :class:`MultiJobResult` as the engine builds it: typed, but a plain dict, so a whole response is
    validated once (``strict``) rather than a model built per result, several times slower for big batches."""

    job_id: str | None
    new_status: str | None
    old_status: str | None
    output: str | None
    message: str
    file_hash: str | None
    method_name: str | None
    function_hash: str | None
    parameters: Any
    outcome: Outcome
    file_inputs: Any


class BatchStatistics(Model):
    """The seed's six statistics. ``completed_jobs + in_progress_jobs + failed_submissions == total_jobs``."""

    total_jobs: int = 0
    successful_submissions: int = 0
    failed_submissions: int = 0
    completed_jobs: int = 0
    in_progress_jobs: int = 0
    resubmitted_jobs: int = 0


class MultiJobSimulationResponse(BatchStatistics):
    """``POST /simulate-jobs`` response (seed: ``MultiJobSimulationResponse``), plus ``batch_id``."""

    results: list[MultiJobResult]
    batch_id: str | None = None
    dry_run: bool = False
    #: New jobs of this call waiting for the caller's quota of jobs in progress (a server's users, section 11).
    quota_waiting: int = 0


class JobSimulationRequest(JobConfig):
    """``POST /simulate-job`` body: one config."""


class JobSimulationResponse(Model):
    """``POST /simulate-job`` response."""

    job_id: str | None = None
    new_status: str | None = None
    old_status: str | None = None
    output: str | None = None
    message: str
    function_hash: str | None = None
    outcome: Outcome


class JobRecord(Model):
    """A job as stored: what ``GET /job/{job_id}`` and ``POST /jobs/batch`` return."""

    job_id: str
    file_hash: str | None
    method_name: str
    function_hash: str
    parameters: dict[str, Any]
    status: str
    output: str | None = None
    error: str | None = None
    exit_code: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    scheduler: str
    scheduler_id: str | None = None
    file_inputs: dict[str, str | list[str]] | None = None
    #: Files the job wrote under ``outputs/``, stored content-addressed: relative path to file hash.
    output_files: dict[str, str] = Field(default_factory=dict)
    #: Which attempt this is (1 until a retry), the attempts that ended before it, the resources this attempt
    #: was given when a retry raised them (``time``, ``mem``), and when a retried job may start again.
    attempt: int = 1
    attempts: list[Attempt] = Field(default_factory=list)
    resources: dict[str, str] = Field(default_factory=dict)
    retry_at: datetime | None = None
    #: A pending job's place in its scheduler's queue (1 = next to start); None once it has started.
    queue_position: int | None = None
    #: Who submitted it on a server for a team (docs/design.md section 11.3); None on the embedded engine.
    owner: str | None = None
    #: Higher starts first (docs/design.md section 13.2); kept by a retry and a resubmission to the scheduler.
    priority: int = 0


LogStream = Literal["stdout", "stderr"]


class LogChunk(Model):
    """A piece of a job's stdout or stderr (``GET /job/{job_id}/logs``): ``data`` from the asked byte offset,
    where to ask next, and ``complete`` once the job has ended and nothing is left after ``next_offset``."""

    data: str
    next_offset: int
    complete: bool


class JobIdsRequest(Model):
    """``POST /jobs/batch`` and ``POST /jobs/cancel`` body."""

    job_ids: list[str]


class JobsResponse(Model):
    jobs: list[JobRecord]
    not_found: list[str] = Field(default_factory=list)


#: Records one poll by change returns by default, and at most (more wait for the next call, ``more`` says so).
CHANGES_LIMIT = 10_000
MAX_CHANGES_LIMIT = 100_000
#: The largest change cursor: SQLite's integers are 64-bit, so a larger one is refused, not overflowed.
MAX_CURSOR = 2**63 - 1


class JobChanges(Model):
    """``GET /jobs/changes``: the jobs changed after a cursor, oldest change first (docs/design.md section 14)."""

    #: Where the next poll asks from: the change of the last record here (the store's latest with no cursor).
    cursor: int
    jobs: list[JobRecord] = Field(default_factory=list)
    #: More changes wait past ``cursor`` (the answer stopped at its limit): ask again at once.
    more: bool = False


class CancelResponse(Model):
    cancelled: list[str] = Field(default_factory=list)
    already_finished: list[str] = Field(default_factory=list)
    not_found: list[str] = Field(default_factory=list)


class ForgetResponse(Model):
    """``POST /jobs/forget``: the jobs removed from the cache, those refused because they are still in progress
    (cancel them first), the unknown ids, and the stored files removed with them (none another job or an
    upload still needs)."""

    forgotten: list[str] = Field(default_factory=list)
    in_progress: list[str] = Field(default_factory=list)
    not_found: list[str] = Field(default_factory=list)
    removed_files: list[str] = Field(default_factory=list)


# --- files ---------------------------------------------------------------------------------------------


class FileUploadRequest(Model):
    """``POST /files/upload`` body: the content as base64, verified against ``file_hash``."""

    file_hash: str
    content: str
    filename: str | None = None
    content_type: str | None = None
    metadata: dict[str, Any] | None = None


class FileInfo(Model):
    file_hash: str
    filename: str | None = None
    content_type: str | None = None
    file_size: int
    metadata: dict[str, Any] | None = None
    upload_date: datetime


class FileDetails(Model):
    """What a streamed upload may say of its file beside the bytes (kept on the file's record)."""

    filename: str | None = None
    content_type: str | None = None
    metadata: dict[str, Any] | None = None


class StagedUpload(Model):
    """Where a streamed upload stands (docs/design.md section 8.3): bytes received of ``total_size``, and the
    stored file once the last byte has arrived and the hash was verified."""

    file_hash: str
    received: int
    total_size: int | None = None
    file: FileInfo | None = None


class HashCheckRequest(Model):
    hashes: list[str]


class HashCheckResponse(Model):
    existing_hashes: list[str]
    missing_hashes: list[str]


# --- methods -------------------------------------------------------------------------------------------


class MethodParameter(Model):
    name: str
    type: ParameterType
    required: bool = False
    default: Any = None
    description: str = ""
    choices: list[Any] | None = None


class MethodResources(Model):
    """Requests a scheduler honours: the local one enforces ``time`` and ``mem``; Slurm gets all as options."""

    time: str | None = None
    mem: str | None = None
    cpus: int | None = None
    gpus: int | None = None
    partition: str | None = None


class MethodInput(Model):
    """An input a method declares in ``method.json`` (docs/design.md section 8.1)."""

    name: str
    description: str = ""
    required: bool = True
    multiple: bool = False


class MethodSpec(Model):
    """The content of ``method.json``."""

    name: str
    description: str = ""
    command: str
    script_path: str
    parameters: list[MethodParameter] = Field(default_factory=list)
    version: str = "1"
    resources: MethodResources = Field(default_factory=MethodResources)
    #: The retry policy of this method's jobs when a call sets none (docs/design.md section 12).
    retry: RetryField = None
    #: The inputs it takes by name; None when it declares none (then any of the three forms is accepted).
    inputs: list[MethodInput] | None = None


class MethodInfo(MethodSpec):
    """A registered method version."""

    function_hash: str
    registered_at: datetime
    latest: bool


# --- batches -------------------------------------------------------------------------------------------


class LiveCounts(Model):
    """Where the jobs of a batch are now (configs without a job count as ``errors``)."""

    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    errors: int = 0


class BatchSummary(Model):
    batch_id: str
    #: The name it was given (``None``: none), docs/design.md section 6.1.
    name: str | None = None
    created_at: datetime
    total_jobs: int
    statistics: BatchStatistics
    #: Who submitted it on a server for a team (docs/design.md section 11.3); None on the embedded engine.
    owner: str | None = None


class BatchDetail(BatchSummary):
    """A batch reopened: its results as submitted, the current record of each job, and live counts."""

    results: list[MultiJobResult]
    jobs: list[JobRecord]
    live: LiveCounts
    #: Where the next page of ``results`` starts (``GET /batches/{id}?cursor=``); None on the last page.
    next_cursor: str | None = None


class Page(Model, Generic[T]):
    """One page of a list and the cursor of the next (None on the last); JSON-array routes send the items
    as the body and the cursor in a ``Link: <...>; rel="next"`` header."""

    items: list[T]
    next_cursor: str | None = None


class HealthResponse(Model):
    status: Literal["ok"] = "ok"


# --- the HTTP service ----------------------------------------------------------------------------------


class MethodArchiveRequest(Model):
    """``POST /methods`` body: a method directory (or a directory of them) as a gzip-compressed tar, base64."""

    archive: str = Field(description="Base64 of a .tar.gz whose members are the method directory's files.")


class ComponentStatus(Model):
    status: Literal["up", "down"]
    error: str | None = None


class ServiceLimits(Model):
    """What the server refuses (413), published so that clients split their requests under it."""

    max_configs: int
    max_body_bytes: int


class ServiceStatus(Model):
    """``GET /services/status``: the seed's component checks (``jobs_db``, ``files_db``) and the facts a client
    needs: version, scheduler, limits and where the store lives."""

    status: Literal["ok", "degraded"]
    version: str
    scheduler: str
    schedulers: list[str]
    store: str
    auth_required: bool
    limits: ServiceLimits
    jobs_db: ComponentStatus
    files_db: ComponentStatus


class ErrorResponse(Model):
    """Every error answer: ``detail`` says what is wrong and names the field; ``errors`` lists every problem
    found in a malformed body."""

    detail: str
    errors: list[dict[str, Any]] | None = None


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def adapter(kind: Any) -> TypeAdapter[Any]:
    """A TypeAdapter for a wire type (``list[JobRecord]``, a model, ...), built once: the server and the client
    encode and decode with these."""
    found = _ADAPTERS.get(kind)
    if found is None:
        found = _ADAPTERS[kind] = TypeAdapter(kind)
    return found
