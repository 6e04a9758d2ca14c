"""Following a job's log over any backend: ``Backend.logs`` is this loop around ``Backend.read_log``, so the
embedded engine and the HTTP client follow the same way (the server is asked for bytes, never kept waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable

from ..domain.errors import InvalidInputError
from ..domain.models import LogChunk

#: Seconds between two reads while a followed job writes nothing.
FOLLOW_POLL_S = 0.5

ReadLog = Callable[[str, str, int], Awaitable[LogChunk]]


async def follow_log(read: ReadLog, job_id: str, stream: str, follow: bool, poll: float) -> AsyncGenerator[str, None]:
    """Text of the log as it comes: everything there now, then (with ``follow``) what is written next, until the
    job has ended and the log is read to its end."""
    if poll <= 0:
        raise InvalidInputError(f"poll: must be positive (got {poll})")
    offset = 0
    while True:
        chunk = await read(job_id, stream, offset)
        offset = chunk.next_offset
        if chunk.data:
            yield chunk.data
        if chunk.complete or (not follow and not chunk.data):
            return
        if not chunk.data:
            await asyncio.sleep(poll)
