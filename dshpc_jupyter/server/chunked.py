"""The later dsHPC's chunked-upload routes (``/files/upload-chunked/...``) with its request and response shapes,
so its clients can upload here (docs/design.md section 8.3).

A session is a folder under ``sessions_dir`` holding ``session.json`` and one file per chunk received; finalize
streams the chunks in order into the ``Backend``'s staged upload (``append_staged``), which verifies the hash.
Sessions idle longer than ``ttl`` seconds are removed whenever a session is opened or looked at.
"""

from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field

from ..backends.base import Backend
from ..domain.errors import InvalidInputError, LimitExceededError, NotFoundError
from ..domain.hashing import CHUNK
from ..domain.models import FileDetails, FileInfo, Model
from ..service.transfers import checked_hash
from .wire import body_doc, decode_base64, parse_body, respond

DEFAULT_SESSION_TTL_S = 24 * 3600.0
SESSION_FILE = "session.json"
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class ChunkedUploadInitRequest(Model):
    file_hash: str
    filename: str | None = None
    content_type: str = "application/octet-stream"
    total_size: int = Field(ge=0)
    chunk_size: int = Field(gt=0)
    metadata: dict[str, Any] | None = None


class ChunkedUploadInitResponse(Model):
    session_id: str
    file_hash: str
    message: str


class ChunkUploadRequest(Model):
    chunk_number: int
    chunk_data: str


class ChunkUploadResponse(Model):
    session_id: str
    chunk_number: int
    chunks_received: int
    total_chunks: int
    message: str


class ChunkedUploadFinalizeRequest(Model):
    total_chunks: int


class ChunkedUploadSession(Model):
    """A session as ``GET .../status`` shows it (the later dsHPC's session record)."""

    session_id: str
    file_hash: str
    filename: str | None = None
    content_type: str
    total_size: int
    chunk_size: int
    total_chunks: int
    chunks_received: list[int] = Field(default_factory=list)
    created_at: datetime
    last_updated: datetime
    status: str = "active"
    metadata: dict[str, Any] | None = None


class ChunkedUploadCancelResponse(Model):
    session_id: str
    message: str


CHUNKED_REQUEST_MODELS = (ChunkedUploadInitRequest, ChunkUploadRequest, ChunkedUploadFinalizeRequest)


class Sessions:
    """The sessions' folders, and the sweep of abandoned ones. Without a ``root``, a temporary folder is made
    when the first session opens (so a server that never sees one leaves nothing behind)."""

    def __init__(self, root: Path | None, ttl: float) -> None:
        self._root = root
        self.ttl = ttl

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="dshpc-chunked-"))
        return self._root

    def folder(self, session_id: str) -> Path:
        folder = self.root / session_id
        if _SESSION_ID.fullmatch(session_id) is None or not (folder / SESSION_FILE).is_file():
            raise NotFoundError(f"Session '{session_id}' not found")
        return folder

    def open(self, request: ChunkedUploadInitRequest) -> ChunkedUploadSession:
        self.sweep()
        now = datetime.now(UTC)
        session = ChunkedUploadSession(
            session_id=str(uuid.uuid4()), file_hash=checked_hash(request.file_hash), filename=request.filename,
            content_type=request.content_type, total_size=request.total_size, chunk_size=request.chunk_size,
            total_chunks=math.ceil(request.total_size / request.chunk_size), chunks_received=[], created_at=now,
            last_updated=now, metadata=request.metadata,
        )  # fmt: skip
        folder = self.root / session.session_id
        folder.mkdir(parents=True)
        self._save(folder, session)
        return session

    def read(self, session_id: str) -> ChunkedUploadSession:
        folder = self.folder(session_id)
        session = ChunkedUploadSession.model_validate_json((folder / SESSION_FILE).read_bytes())
        received = sorted(int(p.name.removeprefix("chunk_")) for p in folder.glob("chunk_*") if p.name[6:].isdigit())
        return session.model_copy(update={"chunks_received": received})

    def store_chunk(self, session_id: str, number: int, data: bytes) -> ChunkedUploadSession:
        session = self.read(session_id)
        if not 0 <= number < session.total_chunks:
            raise InvalidInputError(
                f"chunk_number: {number} is out of range: this session has chunks 0 to {session.total_chunks - 1}"
            )
        if len(data) > session.chunk_size:
            raise LimitExceededError(
                f"chunk_data: {len(data)} bytes is over the session's chunk_size {session.chunk_size}"
            )
        folder = self.folder(session_id)
        partial = folder / f".chunk_{number:06d}.{uuid.uuid4().hex[:8]}"
        partial.write_bytes(data)
        partial.replace(folder / f"chunk_{number:06d}")
        self._save(folder, session.model_copy(update={"last_updated": datetime.now(UTC)}))
        return self.read(session_id)

    def ready(self, session_id: str, total_chunks: int) -> tuple[ChunkedUploadSession, list[Path]]:
        """The session and its chunk files in order, when every chunk is there and they add up."""
        session = self.read(session_id)
        if total_chunks != session.total_chunks:
            raise InvalidInputError(
                f"total_chunks: {total_chunks} does not match the session's {session.total_chunks} "
                f"(total_size {session.total_size} in chunks of {session.chunk_size})"
            )
        missing = sorted(set(range(session.total_chunks)) - set(session.chunks_received))
        if missing:
            shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
            raise InvalidInputError(f"total_chunks: chunks missing: {shown}")
        folder = self.folder(session_id)
        paths = [folder / f"chunk_{n:06d}" for n in range(session.total_chunks)]
        size = sum(p.stat().st_size for p in paths)
        if size != session.total_size:
            raise InvalidInputError(f"total_chunks: the chunks hold {size} bytes, total_size is {session.total_size}")
        return session, paths

    def remove(self, session_id: str) -> None:
        shutil.rmtree(self.folder(session_id), ignore_errors=True)

    def sweep(self) -> None:
        """Remove the sessions idle for longer than ``ttl`` (their ``session.json`` untouched that long)."""
        if self._root is None:
            return
        deadline = time.time() - self.ttl
        for folder in self.root.iterdir() if self.root.is_dir() else []:
            marker = folder / SESSION_FILE
            if not marker.exists() or marker.stat().st_mtime < deadline:
                shutil.rmtree(folder, ignore_errors=True)

    def _save(self, folder: Path, session: ChunkedUploadSession) -> None:
        partial = folder / f".{SESSION_FILE}.{uuid.uuid4().hex[:8]}"
        partial.write_text(session.model_dump_json(exclude={"chunks_received"}), encoding="utf-8")
        partial.replace(folder / SESSION_FILE)


def chunked_routes(
    backend: Backend, sessions_dir: Path | None, ttl: float, responses: dict[int | str, dict[str, Any]]
) -> APIRouter:
    router = APIRouter(
        prefix="/files/upload-chunked", tags=["files (later dsHPC chunked uploads)"], responses=responses
    )
    sessions = Sessions(sessions_dir, ttl)

    @router.post("/init", response_model=ChunkedUploadInitResponse, openapi_extra=body_doc(ChunkedUploadInitRequest))
    async def init(request: Request) -> Response:
        """Open a session for a file of ``total_size`` bytes sent in chunks of ``chunk_size``."""
        payload = await parse_body(request, ChunkedUploadInitRequest)
        session = await anyio.to_thread.run_sync(sessions.open, payload)
        message = f"Session {session.session_id} initialized"
        answer = ChunkedUploadInitResponse(session_id=session.session_id, file_hash=session.file_hash, message=message)
        return await respond(ChunkedUploadInitResponse, answer)

    @router.post("/{session_id}/chunk", response_model=ChunkUploadResponse, openapi_extra=body_doc(ChunkUploadRequest))
    async def chunk(session_id: str, request: Request) -> Response:
        """One chunk, ``chunk_number`` from 0, its bytes as base64 in ``chunk_data``."""
        payload = await parse_body(request, ChunkUploadRequest)
        data = await anyio.to_thread.run_sync(decode_base64, payload.chunk_data, "chunk_data")
        session = await anyio.to_thread.run_sync(sessions.store_chunk, session_id, payload.chunk_number, data)
        answer = ChunkUploadResponse(
            session_id=session_id, chunk_number=payload.chunk_number, chunks_received=len(session.chunks_received),
            total_chunks=session.total_chunks, message=f"Chunk {payload.chunk_number} stored successfully",
        )  # fmt: skip
        return await respond(ChunkUploadResponse, answer)

    @router.post(
        "/{session_id}/finalize", response_model=FileInfo, openapi_extra=body_doc(ChunkedUploadFinalizeRequest)
    )
    async def finalize(session_id: str, request: Request) -> Response:
        """Join the chunks, verify the hash and store the file: its record (a wrong hash ends the session)."""
        payload = await parse_body(request, ChunkedUploadFinalizeRequest)
        session, paths = await anyio.to_thread.run_sync(sessions.ready, session_id, payload.total_chunks)
        try:
            info = await _join(backend, session, paths)
        except InvalidInputError:
            await anyio.to_thread.run_sync(sessions.remove, session_id)
            raise
        await anyio.to_thread.run_sync(sessions.remove, session_id)
        return await respond(FileInfo, info)

    @router.get("/{session_id}/status", response_model=ChunkedUploadSession)
    async def status(session_id: str) -> Response:
        await anyio.to_thread.run_sync(sessions.sweep)
        return await respond(ChunkedUploadSession, await anyio.to_thread.run_sync(sessions.read, session_id))

    @router.delete("/{session_id}", response_model=ChunkedUploadCancelResponse)
    async def cancel(session_id: str) -> Response:
        await anyio.to_thread.run_sync(sessions.remove, session_id)
        answer = ChunkedUploadCancelResponse(
            session_id=session_id, message=f"Session {session_id} cancelled successfully"
        )
        return await respond(ChunkedUploadCancelResponse, answer)

    return router


async def _join(backend: Backend, session: ChunkedUploadSession, paths: list[Path]) -> FileInfo:
    """Stream the chunks into the backend's staged upload a block at a time, after what is staged already of
    this hash (an earlier finalize cut short: the same hash, so the same bytes); the stored record."""
    details = FileDetails(filename=session.filename, content_type=session.content_type, metadata=session.metadata)
    staged = await backend.staged_size(session.file_hash)
    position, result = 0, None
    for path in paths:
        for start in range(0, path.stat().st_size, CHUNK):
            if position + CHUNK <= staged:
                position += min(CHUNK, path.stat().st_size - start)
                continue
            block = await anyio.to_thread.run_sync(_read_block, path, start)
            skip = max(0, staged - position)
            result = await backend.append_staged(
                session.file_hash, position + skip, block[skip:], session.total_size, details
            )
            position += len(block)
    if result is None:
        result = await backend.append_staged(session.file_hash, staged, b"", session.total_size, details)
    if result.file is None:
        raise InvalidInputError("total_chunks: the chunks did not complete the file")
    return result.file


def _read_block(path: Path, start: int) -> bytes:
    with path.open("rb") as stream:
        stream.seek(start)
        return stream.read(CHUNK)
