"""The HTTP client's side of large transfers (docs/design.md section 8.3): streamed uploads in segments under
the server's body limit, resumed from what the server holds after a broken connection, and downloads streamed
to disk in constant memory. Used by :class:`.http.HttpBackend`; raw bytes on the wire, never base64."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from ..domain.errors import BackendError, DshpcError
from ..domain.hashing import CHUNK
from ..domain.models import FileDetails, FileInfo, StagedUpload
from ..service.transfers import HashingWriter, download_target
from .progress import Progress

#: Files larger than this are uploaded by the streaming path, not as base64 in one JSON body.
STREAM_THRESHOLD = 8 << 20
#: The largest segment one ``PUT /files/stream`` request carries (smaller when the server's limit is).
MAX_SEGMENT = 64 << 20

ErrorFor = Callable[[httpx.Response], DshpcError]


def stream_path(file_hash: str) -> str:
    return f"/files/stream/{quote(file_hash, safe='')}"


def content_path(file_hash: str) -> str:
    return f"/files/{quote(file_hash, safe='')}/content"


async def _blocks(source: Path | bytes, start: int, end: int, progress: Progress) -> AsyncIterator[bytes]:
    """The bytes ``[start, end)`` of a file or a buffer, a block at a time (each read off the event loop)."""
    if isinstance(source, bytes):
        for offset in range(start, end, CHUNK):
            block = source[offset : min(end, offset + CHUNK)]
            progress.update(len(block))
            yield block
        return
    fd = await asyncio.to_thread(os.open, source, os.O_RDONLY)
    try:
        for offset in range(start, end, CHUNK):
            block = await asyncio.to_thread(os.pread, fd, min(CHUNK, end - offset), offset)
            progress.update(len(block))
            yield block
    finally:
        os.close(fd)


async def upload_streamed(
    client: httpx.AsyncClient,
    source: Path | bytes,
    digest: str,
    size: int,
    *,
    segment: int,
    retries: int,
    query: dict[str, str],
    error_for: ErrorFor,
    progress: Progress,
) -> FileInfo:
    """Send ``source`` in segments from what the server already holds; after a broken connection ask again
    and send only the rest (at most ``retries`` failures in a row). The stored record at the end."""
    path = stream_path(digest)
    offset = await staged_size(client, digest, error_for)
    progress.update(offset)
    failures = 0
    while True:
        end = min(size, offset + segment)
        params = {"offset": str(offset), "total_size": str(size), **query}
        try:
            response = await client.put(path, params=params, content=_blocks(source, offset, end, progress))
        except httpx.TransportError as exc:
            failures += 1
            if failures > retries:
                raise BackendError(f"PUT {path}: {type(exc).__name__}: {exc} ({failures} failures in a row)") from exc
            await asyncio.sleep(min(2.0, 0.1 * 2**failures))
            offset = await staged_size(client, digest, error_for)
            continue
        if response.status_code == 409 and failures < retries:  # it holds another offset: resume from there
            failures += 1
            offset = await staged_size(client, digest, error_for)
            continue
        if not response.is_success:
            raise error_for(response)
        staged = StagedUpload.model_validate_json(response.content)
        if staged.file is not None:
            return staged.file
        failures, offset = 0, staged.received


async def staged_size(client: httpx.AsyncClient, file_hash: str, error_for: ErrorFor) -> int:
    response = await client.get(stream_path(file_hash))
    if not response.is_success:
        raise error_for(response)
    return StagedUpload.model_validate_json(response.content).received


def upload_query(details: FileDetails) -> dict[str, str]:
    """The optional fields of a streamed upload, as query parameters (the body is the bytes)."""
    fields = {"filename": details.filename, "content_type": details.content_type}
    query = {k: v for k, v in fields.items() if v is not None}
    if details.metadata is not None:
        query["metadata"] = json.dumps(details.metadata)
    return query


async def download_streamed(
    client: httpx.AsyncClient,
    info: FileInfo,
    dest: str | os.PathLike[str],
    *,
    error_for: ErrorFor,
    progress: Progress,
) -> Path:
    """Stream a stored file to ``dest`` (see :func:`..service.transfers.download_target`), checked against its
    hash before it is renamed into place."""
    writer = HashingWriter(download_target(dest, info), info.file_hash)
    try:
        async with client.stream("GET", content_path(info.file_hash)) as response:
            if not response.is_success:
                await response.aread()
                raise error_for(response)
            async for block in response.aiter_bytes(CHUNK):
                await asyncio.to_thread(writer.write, block)
                progress.update(len(block))
    except BaseException:
        writer.abort()
        raise
    return writer.commit()
