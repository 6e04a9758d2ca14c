"""Uploaded content staged in the home before it is stored: hashed on the way, never left behind."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

from ..domain.errors import disk_full
from ..domain.hashing import sha256_copy
from ..domain.home import Home


def stage_upload(home: Home, source: bytes | str | os.PathLike[str]) -> tuple[Path, str, int]:
    """Copy the content into the home's staging area, hashing it on the way: (staged file, SHA-256, size).

    A failed copy removes its partial file; a full disk is a DiskFullError naming the home's disk."""
    fd, name = tempfile.mkstemp(dir=home.tmp_dir, prefix="upload-")
    try:
        with (
            os.fdopen(fd, "wb") as out,
            io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb") as stream,
        ):
            digest, size = sha256_copy(stream, out)
    except BaseException as exc:
        Path(name).unlink(missing_ok=True)
        raise disk_full(exc, home.root) or exc from None
    return Path(name), digest, size
