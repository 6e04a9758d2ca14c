"""The routes of large transfers (docs/design.md section 8.3): streamed uploads of raw bytes and downloads with
``Range``, both in constant memory over the ``Backend``'s ``append_staged`` and ``read_range``.

The guard (:mod:`.guard`) does not buffer the streamed upload's body; the route counts it instead and stops at
the server's body limit, so no request makes the server hold more than one piece (``PIECE``) of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from ..backends.base import Backend
from ..domain.errors import InvalidInputError, LimitExceededError
from ..domain.models import FileDetails, StagedUpload
from .wire import respond

#: Bytes gathered from the body before they are appended: the server's memory for one upload.
PIECE = 1 << 20
#: Bytes read per step of a download.
READ_STEP = 1 << 20
STREAM_PREFIX = "/files/stream/"
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte range a ``Range`` header asks of a file of ``size`` bytes: None for the whole file
    (no header, or one this server does not read: several ranges, another unit), InvalidInputError (416)
    when it lies past the end."""
    match = _RANGE.fullmatch(header.strip()) if header else None
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        return (max(0, size - int(last)), size - 1) if int(last) > 0 and size > 0 else _unsatisfiable(size)
    start, end = int(first), min(int(last) if last else size - 1, size - 1)
    if start >= size or start > end:
        _unsatisfiable(size)
    return start, end


class RangeNotSatisfiableError(InvalidInputError):
    """A ``Range`` past the end of the file: HTTP 416."""

    status_code = 416


def _unsatisfiable(size: int) -> tuple[int, int]:
    raise RangeNotSatisfiableError(f"Range header: past the end of the file, which has {size} bytes")


def transfer_routes(backend: Backend, max_body_bytes: int, responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    router = APIRouter(tags=["files"], responses=responses)

    @router.get("/files/{file_hash}/content", responses={206: {}, 416: {}})
    async def file_content(file_hash: str, request: Request) -> Response:
        """The stored bytes, streamed; a single ``Range`` (``bytes=a-b``, ``a-``, ``-n``) gives a 206."""
        info = await backend.get_file(file_hash)
        wanted = parse_range(request.headers.get("range"), info.file_size)
        start, end = wanted if wanted is not None else (0, info.file_size - 1)
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
        if wanted is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{info.file_size}"

        async def body() -> AsyncIterator[bytes]:
            position = start
            while position <= end:
                block = await backend.read_range(info.file_hash, position, min(READ_STEP, end - position + 1))
                if not block:
                    return
                position += len(block)
                yield block

        media = info.content_type or "application/octet-stream"
        return StreamingResponse(body(), status_code=206 if wanted else 200, headers=headers, media_type=media)

    @router.get("/files/stream/{file_hash}", response_model=StagedUpload)
    async def staged(file_hash: str) -> Response:
        """How many bytes of a streamed upload of this hash are staged: where to resume."""
        received = await backend.staged_size(file_hash)
        return await respond(StagedUpload, StagedUpload(file_hash=file_hash.lower(), received=received))

    @router.put("/files/stream/{file_hash}", response_model=StagedUpload, responses={201: {}, 409: {}})
    async def stream_upload(
        file_hash: str,
        request: Request,
        offset: int = Query(ge=0, description="Where these bytes start: what the server holds already."),
        total_size: int = Query(ge=0, description="The whole file's size in bytes."),
        filename: str | None = None,
        content_type: str | None = None,
        metadata: str | None = Query(None, description="A JSON object kept with the file."),
    ) -> Response:
        """Append the raw body to the staged upload of ``file_hash`` at ``offset``; the request that completes
        ``total_size`` verifies the hash: 201 and the file record (422 on a mismatch, the staging removed)."""
        details = FileDetails(filename=filename, content_type=content_type, metadata=_metadata(metadata))
        position, buffer, seen = offset, bytearray(), 0
        result: StagedUpload | None = None
        try:
            async for chunk in request.stream():
                seen += len(chunk)
                if seen > max_body_bytes:
                    raise LimitExceededError(
                        f"request body: over the server's limit of {max_body_bytes} bytes; send smaller segments"
                    )
                buffer += chunk
                if len(buffer) >= PIECE:
                    result = await backend.append_staged(file_hash, position, bytes(buffer), total_size, details)
                    position, buffer = position + len(buffer), bytearray()
        except ClientDisconnect:  # keep what arrived: the client resumes from there
            if buffer:
                await backend.append_staged(file_hash, position, bytes(buffer), total_size, details)
            return Response(status_code=400)
        if buffer or result is None:
            result = await backend.append_staged(file_hash, position, bytes(buffer), total_size, details)
        return await respond(StagedUpload, result, status_code=201 if result.file is not None else 200)

    return router


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidInputError("query parameter 'metadata': must be a JSON object")
    return value
