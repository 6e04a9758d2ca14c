"""Finding a recorded batch by what a person remembers of it: its id, or its name while only one batch has it.

A name is a label, not an identity (a rerun of a named cell records another batch of that name), so a name
that several batches share is refused with their ids, newest first, rather than one of them guessed.
"""

from __future__ import annotations

from typing import Final

from ..domain.batch_names import BATCH_ID_PATTERN
from ..domain.errors import InvalidInputError, NotFoundError
from ..domain.models import BatchDetail
from .connection import Connection

#: How many batches of one name an ambiguity error lists.
LISTED: Final = 5


def load_detail(connection: Connection, key: str) -> BatchDetail:
    """The batch whose id is ``key``, else the one batch named ``key``."""
    try:
        return connection.batch(key)
    except NotFoundError:
        if BATCH_ID_PATTERN.fullmatch(key):
            raise
    named = connection.batches(LISTED + 1, name=key)
    if not named:
        raise NotFoundError(f"batch: no batch has the id or the name {key!r}")
    if len(named) > 1:
        count = str(len(named)) if len(named) <= LISTED else f"more than {LISTED}"
        shown = ", ".join(f"{b.batch_id} ({b.created_at:%Y-%m-%d %H:%M:%S} UTC)" for b in named[:LISTED])
        raise InvalidInputError(f"batch: {count} batches are named {key!r} (newest first: {shown}); load one by its id")
    return connection.batch(named[0].batch_id)


__all__ = ["load_detail"]
