"""A job's stdout and stderr read by byte offset while it runs and after it ends (docs/design.md section 13.1).

The runner writes both streams straight into the job's workspace (``stdout.txt``, ``stderr.txt``), on Slurm on
the shared filesystem, so reading them needs no help from the runner: a reader asks for the bytes after the
offset it reached and is told where to ask next. The job's status is read *before* the file, so ``complete``
is only said once the runner had closed the file. A finished job whose workspace is gone (removed by hand, or a
job recorded by another machine) is answered from its record, which keeps stdout's head and stderr's tail.
"""

from __future__ import annotations

from pathlib import Path

from ..domain import status as st
from ..domain.errors import InvalidInputError
from ..domain.home import Home
from ..domain.models import JobRecord, LogChunk
from ..schedulers.runner import STDERR_FILE, STDOUT_FILE
from .engine import Engine

LOG_FILES = {"stdout": STDOUT_FILE, "stderr": STDERR_FILE}
#: Bytes one read answers at most: a follower asks again from ``next_offset``.
MAX_LOG_CHUNK = 1 << 20


def job_workspace(engine: Engine, job: JobRecord) -> Path:
    """Where the job's scheduler has its runner write: a Slurm scheduler may use a ``workdir`` of its own."""
    scheduler = engine.schedulers.get(job.scheduler)
    root = getattr(scheduler, "workdir", None)
    return (root if isinstance(root, Home) else engine.home).workspace(job.job_id)


def read_log(engine: Engine, job_id: str, stream: str = "stdout", offset: int = 0) -> LogChunk:
    """Up to ``MAX_LOG_CHUNK`` bytes of a job's ``stream`` from byte ``offset``, as text."""
    if stream not in LOG_FILES:
        raise InvalidInputError(f"stream: must be 'stdout' or 'stderr', not {stream!r}")
    if offset < 0:
        raise InvalidInputError(f"offset: must not be negative (got {offset})")
    job = engine.get_job(job_id)
    ended = st.is_final(job.status)
    path = job_workspace(engine, job) / LOG_FILES[stream]
    try:
        with path.open("rb") as log:
            size = log.seek(0, 2)
            _check_offset(offset, size, stream)
            log.seek(offset)
            data = log.read(MAX_LOG_CHUNK)
    except FileNotFoundError:
        if not ended:  # not started yet: nothing written so far
            _check_offset(offset, 0, stream)
            return LogChunk(data="", next_offset=offset, complete=False)
        recorded = ((job.output if stream == "stdout" else job.error) or "").encode()
        size = len(recorded)
        _check_offset(offset, size, stream)
        data = recorded[offset : offset + MAX_LOG_CHUNK]
    at_end = offset + len(data) >= size
    if not (ended and at_end):
        data = whole_characters(data)
    return LogChunk(
        data=data.decode("utf-8", errors="replace"), next_offset=offset + len(data), complete=ended and at_end
    )


def _check_offset(offset: int, size: int, stream: str) -> None:
    if offset > size:
        raise InvalidInputError(f"offset: {offset} is past the end of the job's {stream} ({size} bytes so far)")


def whole_characters(data: bytes) -> bytes:
    """``data`` without a UTF-8 character cut at its end (the writer is still writing it: read it next time)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: look further back for its lead
            continue
        length = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
        return data if length <= back else data[:-back]
    return data
