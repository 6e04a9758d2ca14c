"""Files in and out of a home (docs/design.md section 8.3): keeping staged content under its hash, streamed
uploads appended piece by piece and verified at the end, and reads of stored bytes by range.

A streamed upload lives in ``tmp/stream-<hash>`` until its last byte arrives; its SHA-256 is carried along in
memory while the pieces come in order, and recomputed from the staged bytes only after a restart or a resume
from another process, so memory stays constant whatever the size.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..domain.errors import ConflictError, InvalidInputError, NotFoundError
from ..domain.hashing import CHUNK, is_sha256_hex
from ..domain.home import Home
from ..domain.models import FileDetails, FileInfo, StagedUpload
from ..store.sqlite import Store


def checked_hash(file_hash: object) -> str:
    """A ``file_hash`` in its stored (lower-case) spelling, or InvalidInputError naming the field."""
    if not isinstance(file_hash, str) or not is_sha256_hex(file_hash.lower()):
        raise InvalidInputError("file_hash: must be 64 hexadecimal characters (a SHA-256 digest)")
    return file_hash.lower()


def keep_staged(
    home: Home,
    store: Store,
    staged: Path,
    digest: str,
    size: int,
    *,
    filename: str | None,
    content_type: str | None,
    metadata: dict[str, Any] | None,
    exist_ok: bool = True,
) -> FileInfo:
    """Move a staged file into ``files/`` under its hash and record it; content already stored keeps its
    record (ConflictError without ``exist_ok``). The staging file is gone afterwards, whatever happens."""
    try:
        existing = store.get_file(digest)
        if existing is not None:
            if not exist_ok:
                raise ConflictError(f"File '{digest}' already exists")
            return existing
        target = home.file_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.chmod(0o444)  # stored bytes never change; a job run as another user may read them
        staged.replace(target)
    finally:
        staged.unlink(missing_ok=True)
    info = FileInfo(
        file_hash=digest,
        filename=filename,
        content_type=content_type or (mimetypes.guess_type(filename)[0] if filename else None),
        file_size=size,
        metadata=metadata,
        upload_date=datetime.now(UTC),
    )
    if not store.add_file(info) and not exist_ok:  # another upload recorded it after our check
        raise ConflictError(f"File '{digest}' already exists")
    return store.get_file(digest) or info


class StreamedUploads:
    """Streamed uploads into one home: one staging file per hash, appended at the offset it has reached."""

    def __init__(self, home: Home, store: Store) -> None:
        self.home = home
        self.store = store
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._digests: dict[str, tuple[int, Any]] = {}  # hash -> (bytes hashed, running SHA-256)

    def _staging(self, file_hash: str) -> Path:
        return self.home.tmp_dir / f"stream-{file_hash}"

    def _hash_lock(self, file_hash: str) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(file_hash, threading.Lock())

    def staged_size(self, file_hash: str) -> int:
        """How many bytes of this hash's upload are staged (0 for none)."""
        path = self._staging(checked_hash(file_hash))
        return path.stat().st_size if path.exists() else 0

    def append(
        self, file_hash: str, offset: int, data: bytes, total_size: int, details: FileDetails | None = None
    ) -> StagedUpload:
        """Append ``data`` at ``offset`` (what is staged already: ConflictError naming it otherwise); the piece
        that completes ``total_size`` verifies the SHA-256 and stores the file (a mismatch removes the staging
        file and is InvalidInputError). Content already stored answers at once, complete."""
        digest = checked_hash(file_hash)
        details = details or FileDetails()
        if total_size < 0 or offset < 0:
            raise InvalidInputError(
                "total_size: must not be negative" if total_size < 0 else "offset: must not be negative"
            )
        if offset + len(data) > total_size:
            raise InvalidInputError(f"offset: {offset} plus {len(data)} bytes passes total_size {total_size}")
        staging = self._staging(digest)
        with self._hash_lock(digest):
            stored = self.store.get_file(digest)
            if stored is not None:
                staging.unlink(missing_ok=True)
                self._digests.pop(digest, None)
                return StagedUpload(
                    file_hash=digest, received=stored.file_size, total_size=stored.file_size, file=stored
                )
            have = staging.stat().st_size if staging.exists() else 0
            if offset != have:
                raise ConflictError(f"offset: the server holds {have} bytes of this upload; send from there")
            with staging.open("ab") as out:
                out.write(data)
            running = self._running(digest, staging, have, data)
            received = offset + len(data)
            if received < total_size:
                return StagedUpload(file_hash=digest, received=received, total_size=total_size)
            self._digests.pop(digest, None)
            actual = running.hexdigest()
            if actual != digest:
                staging.unlink(missing_ok=True)
                raise InvalidInputError(f"file_hash: does not match the content, whose SHA-256 is {actual}")
            info = keep_staged(
                self.home, self.store, staging, digest, received,
                filename=details.filename, content_type=details.content_type, metadata=details.metadata,
            )  # fmt: skip
            return StagedUpload(file_hash=digest, received=received, total_size=total_size, file=info)

    def _running(self, digest: str, staging: Path, had: int, data: bytes) -> Any:
        """The SHA-256 of the staged bytes so far: carried on when the last piece ended where this began,
        recomputed from the staged file otherwise."""
        known = self._digests.get(digest)
        if known is not None and known[0] == had:
            running = known[1]
            running.update(data)
        else:
            running = hashlib.sha256()
            with staging.open("rb") as stream:
                for block in iter(lambda: stream.read(CHUNK), b""):
                    running.update(block)
        self._digests[digest] = (had + len(data), running)
        return running

    def discard(self, file_hash: str) -> None:
        """Drop what is staged of an upload."""
        digest = checked_hash(file_hash)
        with self._hash_lock(digest):
            self._staging(digest).unlink(missing_ok=True)
            self._digests.pop(digest, None)


def read_range(home: Home, store: Store, file_hash: str, offset: int, length: int) -> bytes:
    """Up to ``length`` stored bytes of a file from ``offset`` (fewer at its end)."""
    digest = checked_hash(file_hash)
    if store.get_file(digest) is None:
        raise NotFoundError(f"File '{file_hash}' not found")
    if offset < 0 or length < 0:
        raise InvalidInputError("offset: must not be negative" if offset < 0 else "length: must not be negative")
    fd = os.open(home.file_path(digest), os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)


def download_target(dest: str | os.PathLike[str], info: FileInfo) -> Path:
    """Where a download of ``info`` to ``dest`` goes: into ``dest`` under the file's name (else its hash) when
    it is a directory, else ``dest`` itself (its folder must exist)."""
    target = Path(dest).expanduser()
    if target.is_dir():
        target = target / Path(info.filename or info.file_hash).name
    if not target.parent.is_dir():
        raise InvalidInputError(f"dest: folder {str(target.parent)!r} does not exist")
    return target


class HashingWriter:
    """Writes a download beside its target, hashing it on the way; ``commit`` checks the hash and renames the
    file into place, ``abort`` (or a failed check) removes it: a reader never sees half a file."""

    def __init__(self, target: Path, file_hash: str) -> None:
        self.target = target
        self.file_hash = file_hash
        self.partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        self._out = self.partial.open("wb")
        self._digest = hashlib.sha256()

    def write(self, block: bytes) -> None:
        self._digest.update(block)
        self._out.write(block)

    def commit(self) -> Path:
        self._out.close()
        actual = self._digest.hexdigest()
        if actual != self.file_hash:
            self.partial.unlink(missing_ok=True)
            raise InvalidInputError(f"file_hash: the bytes received hash to {actual}, not {self.file_hash}")
        self.partial.replace(self.target)
        return self.target

    def abort(self) -> None:
        self._out.close()
        self.partial.unlink(missing_ok=True)


def copy_out(home: Home, store: Store, file_hash: str, dest: str | os.PathLike[str]) -> Path:
    """A stored file copied to ``dest`` (see :func:`download_target`), checked against its hash."""
    digest = checked_hash(file_hash)
    info = store.get_file(digest)
    if info is None:
        raise NotFoundError(f"File '{file_hash}' not found")
    writer = HashingWriter(download_target(dest, info), digest)
    try:
        with home.file_path(digest).open("rb") as stream:
            for block in iter(lambda: stream.read(CHUNK), b""):
                writer.write(block)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()
