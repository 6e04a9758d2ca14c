"""The HTTP client's logs of a job (docs/design.md section 13.1): ``GET /job/{id}/logs`` a piece at a time, and
the follow loop every backend shares (:func:`.logs.follow_log`) over it."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from urllib.parse import quote

from ..domain.models import LogChunk
from .http_call import HttpCaller
from .logs import FOLLOW_POLL_S, follow_log


class HttpLogs(HttpCaller):
    """The log operations of :class:`.http.HttpBackend`."""

    async def read_log(self, job_id: str, stream: str = "stdout", offset: int = 0) -> LogChunk:
        params = {"stream": stream, "offset": offset}
        chunk: LogChunk = await self._call("GET", f"/job/{quote(job_id, safe='')}/logs", LogChunk, params=params)
        return chunk

    def logs(
        self, job_id: str, *, stream: str = "stdout", follow: bool = True, poll: float = FOLLOW_POLL_S
    ) -> AsyncGenerator[str, None]:
        return follow_log(self.read_log, job_id, stream, follow, poll)
