"""Cursors for paged lists (docs/design.md section 13.3): an opaque token holding where the last page ended.

A cursor names the last row's position in the list's order (a sequence number, a time and a key), never an
offset, so rows inserted while a client walks the list neither repeat nor push others past it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import InvalidInputError

#: The most rows one page may hold, and each list's page when none is asked: every response stays bounded.
MAX_PAGE = 100_000
DEFAULT_JOBS_PAGE = 100
DEFAULT_FILES_PAGE = 1000
DEFAULT_METHODS_PAGE = 1000
DEFAULT_BATCHES_PAGE = 100
DEFAULT_RESULTS_PAGE = 10_000


def encode_cursor(*position: str | int | float) -> str:
    """The token for a page ending at ``position`` (URL-safe, no padding)."""
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The position in a token this list gave (each value of the type in ``kinds``); InvalidInputError naming
    ``cursor`` for anything else, so a cursor of another list or a damaged one is a 422, not a wrong page."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        values = None
    valid = (
        isinstance(values, list)
        and len(values) == len(kinds)
        and all(isinstance(v, k) and not isinstance(v, bool) for v, k in zip(values, kinds, strict=True))
    )
    if not valid:
        raise InvalidInputError("cursor: not a cursor of this list (pass the next_cursor or Link a page gave)")
    return tuple(values)
