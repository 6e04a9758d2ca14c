"""The HTTP backend: the ``Backend`` interface over a dsHPC server (``dshpc-jupyter serve`` or the seed's API).

One ``httpx.AsyncClient`` (one connection pool) per backend, a timeout on every call. Retries, with exponential
backoff and jitter, happen only where sending a request again cannot do anything twice: reads, and calls that
are idempotent in effect (check-hashes, polling, content-addressed uploads, registering a method, cancelling,
dry runs), after a connection error, a timeout or a 502/503/504. Submissions are retried only when the
connection could not be opened, so the server never saw them.

A ``simulate_jobs`` call larger than the server's ``max_configs`` (read from ``GET /services/status`` once, and
again after a 413) is sent in chunks into one batch (:mod:`.http_chunks`).

Errors the server reports come back as the :mod:`.errors` exceptions carrying its ``detail``.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError
from pydantic_core import PydanticSerializationError, to_json

from .. import __version__
from ..domain.archive import pack_directory
from ..domain.errors import (
    BackendError,
    ConflictError,
    DshpcError,
    InvalidInputError,
    NotFoundError,
)
from ..domain.hashing import CHUNK, is_sha256_hex, sha256_bytes, sha256_file
from ..domain.methods import load_method, method_dirs
from ..domain.models import (
    CHANGES_LIMIT,
    CancelResponse,
    FileDetails,
    FileInfo,
    ForgetResponse,
    HashCheckResponse,
    JobChanges,
    JobConfig,
    JobRecord,
    JobSimulationResponse,
    JobsResponse,
    MethodInfo,
    MultiJobSimulationResponse,
    ServiceStatus,
    StagedUpload,
    adapter,
)
from ..domain.retries import SubmitOptions
from ..domain.team import WhoAmI
from .base import API_KEY_ENV, URL_ENV, ConfigLike
from .http_chunks import send_in_chunks
from .http_errors import error_from_response
from .http_files import (
    MAX_SEGMENT,
    STREAM_THRESHOLD,
    content_path,
    download_streamed,
    stream_path,
    upload_query,
    upload_streamed,
)
from .http_logs import HttpLogs
from .http_pages import HttpPages
from .http_pipelines import HttpPipelines
from .progress import ProgressFactory, progress_for

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_RETRIES = 3
BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
RETRY_STATUSES = frozenset({502, 503, 504})
_NO_BODY: Any = object()
MALFORMED_HASH = "file_hash: must be 64 hexadecimal characters (a SHA-256 digest)"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HttpOptions:
    """How the client talks to its server: ``timeout`` (seconds) on every call, ``retries`` of the calls that
    are safe to send again, and ``max_configs``, which overrides the chunk size the server publishes."""

    timeout: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    max_configs: int | None = None

    def __post_init__(self) -> None:
        if self.max_configs is not None and self.max_configs < 1:
            raise InvalidInputError("max_configs: must be at least 1")


class HttpBackend(HttpPages, HttpLogs, HttpPipelines):
    """A dsHPC service at ``url`` (default ``$DSHPC_URL``), with ``api_key`` (default ``$DSHPC_API_KEY``) sent as
    ``X-API-Key``; ``transport`` replaces httpx's (tests wrap it to record or fail requests)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | None = None,
        options: HttpOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        progress: ProgressFactory | None = None,
    ) -> None:
        url = url or os.environ.get(URL_ENV)
        if not url:
            raise InvalidInputError(f"url: no service URL given (pass one or set ${URL_ENV})")
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"url: {url!r} must start with http:// or https://")
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if api_key is not None and not (api_key.isascii() and api_key.isprintable()):
            raise InvalidInputError("api_key: must be printable ASCII text")
        options = options or HttpOptions()
        self.location = url.rstrip("/")
        self.retries = max(0, options.retries)
        self.max_configs = options.max_configs
        self._api_key = api_key
        self._timeout = httpx.Timeout(options.timeout, connect=min(options.timeout, 10.0))
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._limits: ServiceStatus | None = None
        #: Draws a bar for each large transfer (the front end sets it; None draws nothing).
        self.progress = progress

    def __repr__(self) -> str:
        return f"<HttpBackend {self.location}>"

    # --- transport -------------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            headers = {"User-Agent": f"dshpc-jupyter/{__version__}", "Accept": "application/json"}
            if self._api_key is not None:
                headers["X-API-Key"] = self._api_key
            self._client = httpx.AsyncClient(
                base_url=self.location,
                headers=headers,
                timeout=self._timeout,
                # Shorter than uvicorn's keep-alive (5 s), so a submission never goes out on a connection
                # the server is closing.
                limits=httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=2.0),
                transport=self._transport,
            )
        return self._client

    async def _get(self, path: str, params: Mapping[str, Any]) -> httpx.Response:
        return await self._send("GET", path, params=params, idempotent=True)

    def _backoff(self, attempt: int) -> float:
        delay = min(MAX_BACKOFF_S, BACKOFF_S * 2.0**attempt)
        return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 (jitter, not cryptography)

    async def _send(
        self, method: str, path: str, *, body: Any = _NO_BODY, params: Mapping[str, Any] | None = None,
        idempotent: bool, headers: dict[str, str] | None = None, content: bytes | None = None,
    ) -> httpx.Response:  # fmt: skip
        if body is not _NO_BODY:
            try:
                content = to_json(body, inf_nan_mode="constants")
            except PydanticSerializationError as exc:
                raise InvalidInputError(f"request: cannot be sent as JSON ({exc})") from None
            headers = {**(headers or {}), "Content-Type": "application/json"}
        attempt = 0
        while True:
            try:
                response = await self._http().request(method, path, content=content, params=params, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure: Exception = exc
            except httpx.TransportError as exc:
                if not idempotent:
                    raise BackendError(
                        f"{method} {path}: {type(exc).__name__}: {exc} (the service may or may not have applied it)"
                    ) from exc
                failure = exc
            else:
                if not (response.status_code in RETRY_STATUSES and idempotent and attempt < self.retries):
                    if response.is_success:
                        return response
                    raise error_from_response(response)
                failure = error_from_response(response)
            if attempt >= self.retries:
                raise BackendError(
                    f"cannot reach the dsHPC service at {self.location} ({method} {path}, {attempt + 1} attempts): "
                    f"{type(failure).__name__}: {failure}"
                ) from failure
            await asyncio.sleep(self._backoff(attempt))
            attempt += 1

    async def _call(
        self, method: str, path: str, kind: Any, *, body: Any = _NO_BODY, params: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Any:  # fmt: skip
        response = await self._send(method, path, body=body, params=params, idempotent=idempotent)
        try:
            return adapter(kind).validate_json(response.content)
        except ValidationError as exc:
            raise BackendError(
                f"{method} {path}: unexpected answer from {self.location}: {exc.errors()[0]['msg']}", 502
            ) from None

    # --- service ---------------------------------------------------------------------------------------

    async def services_status(self) -> ServiceStatus:
        status: ServiceStatus = await self._call("GET", "/services/status", ServiceStatus)
        return status

    async def whoami(self) -> WhoAmI:
        me: WhoAmI = await self._call("GET", "/whoami", WhoAmI)
        return me

    async def _chunk_size(self) -> int | None:
        """Configs per ``simulate-jobs`` call: ours, else the server's limit (None for a server without one)."""
        if self.max_configs is not None:
            return self.max_configs
        if self._limits is None:
            try:
                response = await self._send("GET", "/services/status", idempotent=True)
                self._limits = ServiceStatus.model_validate_json(response.content)
            except (NotFoundError, ValidationError):  # a server without limits (the seed's has another status)
                return None
        return self._limits.limits.max_configs

    async def _smaller_chunk_size(self, size: int | None) -> int | None:
        """After a 413: the server's limit read again, when it is now below ``size`` (a quota lowered since it
        was read); None when the chunk size is ours, or the limit did not shrink, so the 413 stands."""
        if self.max_configs is not None:
            return None
        self._limits = None
        try:
            fresh = await self._chunk_size()
        except DshpcError:  # the 413 says more than a failed read of the status
            return None
        return fresh if fresh is not None and (size is None or fresh < size) else None

    # --- methods ---------------------------------------------------------------------------------------

    async def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        """Check the method directory here (the same errors as the embedded backend), then send it packed."""
        root = Path(path).expanduser()

        def pack() -> bytes:
            with method_dirs(root) as directories:
                for directory in directories:
                    load_method(directory)
                base = root if directories == [root] else directories[0].parent  # the seed's layout: laid out aside
                return pack_directory(base, directories)

        archive = await asyncio.to_thread(pack)
        body = {"archive": base64.b64encode(archive).decode("ascii")}
        registered: list[MethodInfo] = await self._call("POST", "/methods", list[MethodInfo], body=body)
        return registered

    async def method_versions(self, name: str) -> list[MethodInfo]:
        path = f"/methods/versions/{quote(name, safe='')}"
        versions: list[MethodInfo] = await self._call("GET", path, list[MethodInfo])
        return versions

    # --- files -----------------------------------------------------------------------------------------

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
        """Upload content unless the service has it already (checked first); the stored record either way.
        Without ``exist_ok`` it is sent as is, and the server's 409 for stored content is raised."""
        if isinstance(source, bytes):
            data = source
        else:
            local = Path(source).expanduser()
            if not local.is_file():
                raise InvalidInputError(f"path: {str(local)!r} is not a readable file")
            filename = filename or local.name
            if local.stat().st_size > STREAM_THRESHOLD:
                return await self._upload_streamed(local, file_hash, filename, content_type, metadata, exist_ok)
            data = await asyncio.to_thread(local.read_bytes)
        if len(data) > STREAM_THRESHOLD:
            return await self._upload_streamed(data, file_hash, filename, content_type, metadata, exist_ok)
        digest = await asyncio.to_thread(sha256_bytes, data)
        usable = file_hash is None or (is_sha256_hex(file_hash) and file_hash == digest)
        if exist_ok and usable and digest in (await self.check_hashes([digest])).existing_hashes:
            return await self.get_file(digest)
        # A malformed or mismatching file_hash is sent as given: the server's 422 says what is wrong.
        body = {
            "file_hash": digest if file_hash is None else file_hash,
            "content": base64.b64encode(data).decode("ascii"),
            "filename": filename,
            "content_type": content_type,
            "metadata": metadata,
        }
        try:
            info: FileInfo = await self._call("POST", "/files/upload", FileInfo, body=body)
        except ConflictError:
            if not exist_ok:
                raise
            return await self.get_file(digest)
        return info

    async def _upload_streamed(
        self, source: Path | bytes, file_hash: str | None, filename: str | None, content_type: str | None,
        metadata: dict[str, Any] | None, exist_ok: bool,
    ) -> FileInfo:  # fmt: skip
        """A large file by the streaming routes: hashed here first, so a file the server has is not sent, a
        wrong ``file_hash`` is refused before any byte leaves, and a resumed upload is addressed."""
        if isinstance(source, bytes):
            digest, size = await asyncio.to_thread(sha256_bytes, source), len(source)
        else:
            digest, size = await asyncio.to_thread(sha256_file, source), source.stat().st_size
        if file_hash is not None and file_hash.lower() != digest:
            detail = f"file_hash: does not match the content, whose SHA-256 is {digest}"
            raise InvalidInputError(detail if is_sha256_hex(file_hash.lower()) else MALFORMED_HASH)
        if digest in (await self.check_hashes([digest])).existing_hashes:
            if not exist_ok:
                raise ConflictError(f"File '{digest}' already exists")
            return await self.get_file(digest)
        segment = max(CHUNK, min(MAX_SEGMENT, (await self._body_limit()) // 2))
        details = FileDetails(filename=filename, content_type=content_type, metadata=metadata)
        bar = progress_for(self.progress, f"upload {filename or digest[:12]}", size)
        try:
            return await upload_streamed(
                self._http(), source, digest, size, segment=segment, retries=self.retries,
                query=upload_query(details), error_for=error_from_response, progress=bar,
            )  # fmt: skip
        finally:
            bar.close()

    async def _body_limit(self) -> int:
        """The server's body limit (the seed's default, 64 MiB, for a server that publishes none)."""
        if self._limits is None:
            await self._chunk_size()
        return self._limits.limits.max_body_bytes if self._limits is not None else 64 << 20

    async def get_file(self, file_hash: str) -> FileInfo:
        info: FileInfo = await self._call("GET", f"/files/{quote(file_hash, safe='')}", FileInfo)
        return info

    async def read_range(self, file_hash: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise InvalidInputError("offset: must not be negative" if offset < 0 else "length: must not be negative")
        if length == 0:
            await self.get_file(file_hash)
            return b""
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            response = await self._send("GET", content_path(file_hash), headers=headers, idempotent=True)
        except BackendError as exc:
            if exc.status_code == 416:  # past the end: nothing there, as a read past a file's end gives
                return b""
            raise
        return response.content

    async def read_bytes(self, file_hash: str) -> bytes:
        info = await self.get_file(file_hash)
        response = await self._send("GET", content_path(file_hash), idempotent=True)
        if sha256_bytes(response.content) != info.file_hash:
            raise BackendError(f"GET {content_path(file_hash)}: the bytes received do not match the file's hash")
        return response.content

    async def download(self, file_hash: str, dest: str | os.PathLike[str]) -> Path:
        info = await self.get_file(file_hash)
        bar = progress_for(self.progress, f"download {info.filename or info.file_hash[:12]}", info.file_size)
        try:
            return await download_streamed(self._http(), info, dest, error_for=error_from_response, progress=bar)
        finally:
            bar.close()

    async def staged_size(self, file_hash: str) -> int:
        staged: StagedUpload = await self._call("GET", stream_path(file_hash), StagedUpload)
        return staged.received

    async def append_staged(
        self, file_hash: str, offset: int, data: bytes, total_size: int, details: FileDetails | None = None
    ) -> StagedUpload:
        params = {"offset": offset, "total_size": total_size, **upload_query(details or FileDetails())}
        response = await self._send("PUT", stream_path(file_hash), content=data, params=params, idempotent=False)
        return StagedUpload.model_validate_json(response.content)

    async def check_hashes(self, hashes: Sequence[str]) -> HashCheckResponse:
        body = {"hashes": list(hashes)}
        result: HashCheckResponse = await self._call("POST", "/files/check-hashes", HashCheckResponse, body=body)
        return result

    # --- jobs ------------------------------------------------------------------------------------------

    async def simulate_job(self, config: ConfigLike) -> JobSimulationResponse:
        body = config.model_dump() if isinstance(config, JobConfig) else config
        try:
            result: JobSimulationResponse = await self._call(
                "POST", "/simulate-job", JobSimulationResponse, body=body, idempotent=False
            )
        except NotFoundError as exc:  # the seed's 404 for an unknown method or file: the embedded answer
            return JobSimulationResponse(message=str(exc), outcome="invalid")
        return result

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
        """The seed's multi-job call, split into chunks under the server's limit when needed; ``append_to``
        is sent as ``?batch_id=``, so every chunk goes to that batch; ``name`` goes with the first chunk."""
        items = [c.model_dump() if isinstance(c, JobConfig) else c for c in configs]
        # only what differs from the seed's behaviour is sent, so a seed server gets the seed's body
        extra = ({} if options is None else options.wire()) | ({"priority": priority} if priority else {})
        named = {} if name is None else {"name": name}  # a new batch's name, sent with its first chunk

        async def send(chunk: list[Any], batch_id: str | None, first: dict[str, Any]) -> MultiJobSimulationResponse:
            return await self._simulate(chunk, dry_run, batch_id, extra | first)

        size = await self._chunk_size()
        return await send_in_chunks(
            send, items, size, self._smaller_chunk_size, batch_id=append_to, first=named, dry_run=dry_run
        )

    async def _simulate(
        self, items: list[Any], dry_run: bool, batch_id: str | None, extra: dict[str, Any]
    ) -> MultiJobSimulationResponse:
        params: dict[str, str] = {"dry_run": "true"} if dry_run else {}
        if batch_id is not None:
            params["batch_id"] = batch_id
        result: MultiJobSimulationResponse = await self._call(
            "POST", "/simulate-jobs", MultiJobSimulationResponse, body={"jobs": items, **extra}, params=params,
            idempotent=dry_run,
        )  # fmt: skip
        return result

    async def job_statuses(self, job_ids: Sequence[str]) -> list[JobRecord]:
        """The current records of many jobs in one request (unknown ids are left out)."""
        if not job_ids:
            return []
        result: JobsResponse = await self._call("POST", "/jobs/batch", JobsResponse, body={"job_ids": list(job_ids)})
        return result.jobs

    async def job_changes(self, since: int | None = None, limit: int = CHANGES_LIMIT) -> JobChanges:
        """One ``GET /jobs/changes``: a read, retried like any other."""
        params: dict[str, Any] = {"limit": limit} if since is None else {"limit": limit, "since": since}
        changes: JobChanges = await self._call("GET", "/jobs/changes", JobChanges, params=params)
        return changes

    async def get_job(self, job_id: str) -> JobRecord:
        record: JobRecord = await self._call("GET", f"/job/{quote(job_id, safe='')}", JobRecord)
        return record

    async def cancel(self, job_ids: Sequence[str]) -> CancelResponse:
        body = {"job_ids": list(job_ids)}
        result: CancelResponse = await self._call("POST", "/jobs/cancel", CancelResponse, body=body)
        return result

    async def forget(self, job_ids: Sequence[str]) -> ForgetResponse:
        """Not retried once sent: a second try would answer ``not_found`` for what the first one forgot."""
        body = {"job_ids": list(job_ids)}
        result: ForgetResponse = await self._call("POST", "/jobs/forget", ForgetResponse, body=body, idempotent=False)
        return result

    # --- batches ---------------------------------------------------------------------------------------

    async def cancel_batch(self, batch_id: str) -> CancelResponse:
        path = f"/batches/{quote(batch_id, safe='')}/cancel"
        result: CancelResponse = await self._call("POST", path, CancelResponse)
        return result

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
