"""The one line of a failure's error that says what went wrong, for tables that show one line per job.

A Python traceback names its exception last, after the frames, so its first line ("Traceback (most recent call
last):") says nothing; the runner's own notes (a time limit, a memory limit, a cancel) come first; other
programs tend to end with what killed them, before a few trailer lines some runtimes add.
"""

from __future__ import annotations

from .status import CANCELLED, OUT_OF_MEMORY, TIMEOUT

TRACEBACK = "Traceback (most recent call last):"
#: Lines that end an error without saying anything about it (R's last line, the runner's cut marker).
TRAILERS = ("Execution halted", "[... stderr cut")
#: Statuses whose error starts with the runner's note naming the cause.
NOTED_STATUSES = frozenset({TIMEOUT, OUT_OF_MEMORY, CANCELLED})


def failure_line(error: str | None, status: str | None = None) -> str:
    """The exception line of the last traceback in ``error``; else, for a stop the runner noted (time or memory
    limit, cancel), its note; else the last line that is not a trailer; ``""`` for no error."""
    lines = [line.rstrip() for line in (error or "").splitlines() if line.strip()]
    headers = [i for i, line in enumerate(lines) if line.startswith(TRACEBACK)]
    if headers:
        after = lines[headers[-1] + 1 :]
        exception = next((line for line in after if not line[0].isspace()), None)
        if exception is not None:
            return exception
    meaningful = [line.strip() for line in lines if not line.startswith(TRAILERS)]
    if not meaningful:
        return ""
    return meaningful[0] if status in NOTED_STATUSES else meaningful[-1]
