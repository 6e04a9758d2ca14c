"""Batch names: a label a person gives a batch (``--name``, ``name=``) to find it again by.

A name is not an identity: rerunning a named cell records another batch of the same name, so a name finds a
batch only while it is unambiguous (docs/design.md section 6.1). It must not look like a batch id, so that
``Batch.load(key)`` can tell the two apart.
"""

from __future__ import annotations

import re
from typing import Final

from .errors import InvalidInputError

MAX_NAME_LENGTH: Final = 100
#: What the service's batch ids look like (uuid4().hex), which a name may not.
BATCH_ID_PATTERN: Final = re.compile(r"[0-9a-f]{32}")


def check_batch_name(name: object) -> str | None:
    """``name`` as recorded (surrounding blanks dropped; ``None`` for no name), or InvalidInputError naming the
    field and the problem."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise InvalidInputError(f"name: must be a string, got {type(name).__name__}")
    text = name.strip()
    if not text:
        raise InvalidInputError("name: must not be empty (leave it out for a batch without a name)")
    if len(text) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"name: must be at most {MAX_NAME_LENGTH} characters, got {len(text)}")
    if any(not char.isprintable() for char in text):
        raise InvalidInputError("name: must not hold control characters (a newline, a tab, ...)")
    if BATCH_ID_PATTERN.fullmatch(text):
        raise InvalidInputError(f"name: {text!r} looks like a batch id; choose a name a batch id cannot be")
    return text


__all__ = ["MAX_NAME_LENGTH", "check_batch_name"]
