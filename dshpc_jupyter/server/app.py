"""The dsHPC HTTP API (docs/design.md section 4) over any ``Backend``, served by uvicorn: ``dshpc-jupyter serve``.

Wire-compatible with the seed: same paths, JSON fields and status codes (201 on upload, 409 on a stored hash),
plus the additions of docs/design.md section 4 and ``POST /methods`` (a method directory sent as an archive).
The routes use only the :class:`~..backends.base.Backend` operations (``serve()`` gives them the embedded
engine, whose work runs in worker threads); how bodies, answers and errors are encoded is :mod:`.wire`; the
API key and the body limit are checked first, in :mod:`.guard`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from .. import __version__
from ..backends.base import Backend
from ..backends.team import TeamBackend
from ..domain.archive import extract_archive
from ..domain.errors import (
    DshpcError,
    InvalidInputError,
    LimitExceededError,
    MethodSpecError,
    NotFoundError,
    StoreBusyError,
    disk_full,
)
from ..domain.models import (
    CancelResponse,
    FileInfo,
    FileUploadRequest,
    HashCheckRequest,
    HashCheckResponse,
    HealthResponse,
    JobIdsRequest,
    JobRecord,
    JobSimulationRequest,
    JobSimulationResponse,
    JobsResponse,
    MethodArchiveRequest,
    MethodInfo,
    MultiJobSimulationRequest,
    MultiJobSimulationResponse,
    ServiceLimits,
    ServiceStatus,
)
from ..domain.retries import SubmitOptions
from ..store.maintenance import store_error
from .auth import authenticator
from .change_routes import change_routes
from .chunked import CHUNKED_REQUEST_MODELS, DEFAULT_SESSION_TTL_S, chunked_routes
from .dshpc_routes import dshpc_routes
from .forget_routes import forget_routes
from .guard import DEFAULT_BODY_TIMEOUT, Guard
from .log_routes import log_routes
from .page_routes import page_routes
from .pipeline_routes import PIPELINE_REQUEST_MODELS, pipeline_routes
from .policy import enforcer
from .team_routes import team_routes
from .transfer_routes import STREAM_PREFIX, transfer_routes
from .wire import (
    OFFLOAD_BYTES,
    OFFLOAD_ITEMS,
    BodyError,
    DocumentedApp,
    body_doc,
    decode_base64,
    describe,
    error_response,
    errors_doc,
    parse_body,
    respond,
)

DEFAULT_MAX_CONFIGS = 10_000
DEFAULT_MAX_BODY_BYTES = 64 << 20
#: Bodies and responses bigger than this are parsed and serialized in a worker thread, not on the loop.

log = logging.getLogger(__name__)


def create_app(
    backend: Backend,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_configs: int = DEFAULT_MAX_CONFIGS,
    sessions_dir: Path | None = None,
    session_ttl: float = DEFAULT_SESSION_TTL_S,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
) -> FastAPI:
    """The API over ``backend``. The caller owns the backend (and closes it after the server stops).
    ``sessions_dir`` holds the later dsHPC's chunked-upload sessions (a new temporary folder by default),
    removed after ``session_ttl`` seconds idle.

    With a key, or users (a :class:`~..backends.team.TeamBackend` whose store has users), only ``/health`` is
    open: the interactive docs and the schema describe the API to whoever holds a token, and to no one else;
    what each caller may do is :mod:`.policy`'s table."""
    if max_body_bytes < 1 or max_configs < 1:
        raise ValueError("max_body_bytes and max_configs must be positive")
    if api_key is not None and not (api_key and api_key.isascii() and api_key.isprintable()):
        raise InvalidInputError("api_key: must be non-empty printable ASCII text (it travels in an HTTP header)")
    team = backend if isinstance(backend, TeamBackend) else None
    authenticate = authenticator(api_key, team.team if team is not None else None)
    auth = authenticate is not None
    app = DocumentedApp(
        title="dsHPC API",
        version=__version__,
        description="Deduplicated jobs on files with registered methods; the multi-job API POST /simulate-jobs.",
        dependencies=[Depends(enforcer(auth))],
    )
    app.api_key_required = auth
    documented = errors_doc(*((401, 403) if auth else ()), 404, 409, 413, 416, 422)
    app.include_router(transfer_routes(backend, max_body_bytes, documented))
    app.include_router(change_routes(backend, documented))
    app.include_router(chunked_routes(backend, sessions_dir, session_ttl, documented))
    app.include_router(pipeline_routes(backend, documented))
    app.include_router(dshpc_routes(backend, documented))
    app.include_router(log_routes(backend, documented))
    app.include_router(page_routes(backend, documented))
    app.extra_request_models = (*CHUNKED_REQUEST_MODELS, *PIPELINE_REQUEST_MODELS)
    app.include_router(_routes(backend, auth, max_body_bytes, max_configs))
    app.include_router(team_routes(team, auth, documented))
    app.include_router(forget_routes(backend, documented))

    @app.exception_handler(DshpcError)
    async def _dshpcerror_response(request: Request, exc: DshpcError) -> Response:
        response = error_response(exc.status_code, str(exc))
        if isinstance(exc, StoreBusyError):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.exception_handler(sqlite3.Error)
    async def _store_response(request: Request, exc: sqlite3.Error) -> Response:
        named = store_error(exc, Path(getattr(backend, "location", "the store")))
        if named is None:
            return await _bug(request, exc)
        return await _dshpcerror_response(request, named)

    @app.exception_handler(BodyError)
    async def _bodyerror_response(request: Request, exc: BodyError) -> Response:
        return error_response(422, exc.detail, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _parametererror_response(request: Request, exc: RequestValidationError) -> Response:
        detail, errors = describe(list(exc.errors()))
        return error_response(422, detail, errors)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        full = disk_full(exc, getattr(backend, "location", "the store"))
        if full is not None:
            return error_response(full.status_code, str(full))
        log.exception("internal error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal server error ({type(exc).__name__}); the server log has the details")

    app.add_middleware(
        Guard,
        authenticate=authenticate,
        max_body_bytes=max_body_bytes,
        open_paths={"/health"},
        body_timeout=body_timeout,
        streamed=(STREAM_PREFIX,),
    )
    return app


def _routes(backend: Backend, auth: bool, max_body_bytes: int, max_configs: int) -> APIRouter:
    router = APIRouter(responses=errors_doc(*((401,) if auth else ()), 413, 422))
    limits = ServiceLimits(max_configs=max_configs, max_body_bytes=max_body_bytes)

    @router.get("/health", response_model=HealthResponse, tags=["service"])
    async def health() -> Response:
        """Liveness: no API key needed."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    @router.get("/services/status", response_model=ServiceStatus, tags=["service"])
    async def services_status() -> Response:
        """What this service is and whether its store answers; ``limits`` tells clients how to split requests.
        The backend says what it is and what it limits (a team's: the caller's quota); the key and the limits
        are this server's, so the server states them, the tighter of its own and the backend's."""
        status = await backend.services_status()
        own = status.limits
        tighter = ServiceLimits(
            max_configs=min(limits.max_configs, own.max_configs),
            max_body_bytes=min(limits.max_body_bytes, own.max_body_bytes),
        )
        return await respond(ServiceStatus, status.model_copy(update={"auth_required": auth, "limits": tighter}))

    @router.post(
        "/simulate-job",
        response_model=JobSimulationResponse,
        tags=["jobs"],
        openapi_extra=body_doc(JobSimulationRequest),
    )
    async def simulate_job(request: Request) -> Response:
        """One config, by the same rules as one config of ``/simulate-jobs`` (no batch is recorded)."""
        config: Any = await parse_body(request, Any)
        result = await backend.simulate_job(config)
        if result.job_id is None and result.outcome == "invalid" and result.message.endswith("not found"):
            raise NotFoundError(result.message)  # the seed's answer: no job for an unknown method or file
        return await respond(JobSimulationResponse, result)

    @router.post(
        "/simulate-jobs",
        response_model=MultiJobSimulationResponse,
        tags=["jobs"],
        openapi_extra=body_doc(MultiJobSimulationRequest),
    )
    async def simulate_jobs(
        request: Request,
        dry_run: bool = Query(False, description="Say what would happen to each config; submit and record nothing."),
        batch_id: str | None = Query(
            None, description="Add these configs to this batch (recorded by an earlier call) instead of a new one."
        ),
    ) -> Response:
        """The seed's multi-job call: each config is served from cache, joins its running job, or is submitted.
        A malformed config gets its own error result; it never rejects the others."""
        payload = await parse_body(request, MultiJobSimulationRequest)
        if len(payload.jobs) > max_configs:
            raise LimitExceededError(
                f"jobs: {len(payload.jobs)} configs is over the server's limit of {max_configs} per call "
                "(max_configs in GET /services/status); split them into several calls"
            )
        options = SubmitOptions(retry=payload.retry, resubmit=payload.resubmit, force=payload.force)
        result = await backend.simulate_jobs(
            payload.jobs, dry_run=dry_run, append_to=batch_id, options=options, priority=payload.priority,
            name=payload.name,
        )  # fmt: skip
        return await respond(MultiJobSimulationResponse, result, large=len(payload.jobs) > OFFLOAD_ITEMS)

    @router.post(
        "/files/upload",
        status_code=201,
        response_model=FileInfo,
        tags=["files"],
        openapi_extra=body_doc(FileUploadRequest),
        responses=errors_doc(409),
    )
    async def upload_file(request: Request) -> Response:
        """Store base64 content under its SHA-256 ``file_hash`` (checked): 201, or 409 when already stored."""
        payload = await parse_body(request, FileUploadRequest)
        if len(payload.content) > OFFLOAD_BYTES:
            data = await anyio.to_thread.run_sync(decode_base64, payload.content, "content")
        else:
            data = decode_base64(payload.content, "content")
        info = await backend.upload_file(
            data, file_hash=payload.file_hash, filename=payload.filename, content_type=payload.content_type,
            metadata=payload.metadata, exist_ok=False,
        )  # fmt: skip
        return await respond(FileInfo, info, status_code=201)

    @router.post(
        "/files/check-hashes",
        response_model=HashCheckResponse,
        tags=["files"],
        openapi_extra=body_doc(HashCheckRequest),
    )
    async def check_hashes(request: Request) -> Response:
        payload = await parse_body(request, HashCheckRequest)
        result = await backend.check_hashes(payload.hashes)
        return await respond(HashCheckResponse, result, large=len(payload.hashes) > OFFLOAD_ITEMS)

    @router.get("/files/{file_hash}", response_model=FileInfo, tags=["files"], responses=errors_doc(404))
    async def get_file(file_hash: str) -> Response:
        return await respond(FileInfo, await backend.get_file(file_hash))

    @router.post(
        "/methods", response_model=list[MethodInfo], tags=["methods"], openapi_extra=body_doc(MethodArchiveRequest)
    )
    async def register_methods(request: Request) -> Response:
        """Register a method directory (or a directory of them) sent as a base64 .tar.gz; each becomes the latest
        version of its name. The archive is unpacked with every member checked (no links, no paths outside)."""
        payload = await parse_body(request, MethodArchiveRequest)
        data = await anyio.to_thread.run_sync(decode_base64, payload.archive, "archive")
        staging = await anyio.to_thread.run_sync(_unpack, data)
        try:
            registered = await backend.register_method(staging)
        except MethodSpecError as exc:  # name files as they are in the archive, not by the server's staging path
            raise MethodSpecError(str(exc).replace(f"{staging}{os.sep}", "").replace(str(staging), "archive")) from None
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, staging, True)
        return await respond(list[MethodInfo], registered)

    @router.get("/methods/by-name/{name:path}", response_model=MethodInfo, tags=["methods"], responses=errors_doc(404))
    async def method_by_name(
        name: str, latest: bool = Query(True, description="The latest version (else the first registered).")
    ) -> Response:
        versions = await backend.method_versions(name)
        chosen = next((v for v in versions if v.latest), versions[0]) if latest else versions[-1]
        return await respond(MethodInfo, chosen)

    @router.get(
        "/methods/versions/{name:path}", response_model=list[MethodInfo], tags=["methods"], responses=errors_doc(404)
    )
    async def method_versions(name: str) -> Response:
        return await respond(list[MethodInfo], await backend.method_versions(name))

    @router.get("/job/{job_id}", response_model=JobRecord, tags=["jobs"], responses=errors_doc(404))
    async def get_job(job_id: str) -> Response:
        return await respond(JobRecord, await backend.get_job(job_id))

    @router.post("/jobs/batch", response_model=JobsResponse, tags=["jobs"], openapi_extra=body_doc(JobIdsRequest))
    async def job_statuses(request: Request) -> Response:
        """The current records of many jobs in one request (what a poller calls); unknown ids in ``not_found``."""
        payload = await parse_body(request, JobIdsRequest)
        jobs = await backend.job_statuses(payload.job_ids)
        found = {job.job_id for job in jobs}
        missing = [job_id for job_id in dict.fromkeys(payload.job_ids) if job_id not in found]
        result = JobsResponse.model_construct(jobs=jobs, not_found=missing)
        return await respond(JobsResponse, result, large=len(jobs) > OFFLOAD_ITEMS)

    @router.post("/jobs/cancel", response_model=CancelResponse, tags=["jobs"], openapi_extra=body_doc(JobIdsRequest))
    async def cancel_jobs(request: Request) -> Response:
        payload = await parse_body(request, JobIdsRequest)
        return await respond(CancelResponse, await backend.cancel(payload.job_ids))

    @router.post(
        "/batches/{batch_id}/cancel", response_model=CancelResponse, tags=["batches"], responses=errors_doc(404)
    )
    async def cancel_batch(batch_id: str) -> Response:
        return await respond(CancelResponse, await backend.cancel_batch(batch_id))

    return router


def _unpack(data: bytes) -> Path:
    """Unpack a method archive into a fresh staging directory (removed again if the archive is refused): a
    private temporary one, since a backend need not have a directory of its own here."""
    staging = Path(tempfile.mkdtemp(prefix="dshpc-method-upload-"))
    try:
        extract_archive(data, staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging
