"""Method directories as archives: packed by the HTTP client, unpacked by the server for ``POST /methods``.

The server unpacks archives from the network, so extraction trusts nothing: the gzip stream is inflated with
a hard cap as it is read (no decompression bombs), members are counted as they are written (no sparse
files standing for huge ones), only regular files and directories are accepted (no links, devices or
FIFOs), every name must stay inside the target (no absolute paths, no ``..``), and nothing is overwritten.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import InvalidInputError, LimitExceededError
from .hashing import method_files

MAX_UNPACKED_BYTES = 256 << 20
MAX_MEMBERS = 10_000
_INFLATE_BLOCK = 1 << 20
#: Inflated bytes allowed per member beyond its data: its header blocks and padding (pax names included).
_HEADER_ALLOWANCE = 4096


def pack_directory(root: Path, method_dirs: Iterable[Path]) -> bytes:
    """A .tar.gz of the method directories under ``root`` (or ``root`` itself), each with just the files its
    function_hash covers, named relative to ``root``.

    Links are followed and stored as plain files, and owners, times and modes are normalised, so the archive
    depends only on the paths and contents, exactly like the hash.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for directory in method_dirs:
            for _, path in method_files(directory):
                data = path.read_bytes()
                info = tarfile.TarInfo(path.relative_to(root).as_posix())
                info.size = len(data)
                info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _CappedInflater(io.RawIOBase):
    """The gzip stream inflated as it is read, refusing to produce more than ``limit`` bytes in all: headers
    (a huge pax header included) and member data are read through it, so nothing unpacks past the cap."""

    def __init__(self, data: bytes, limit: int) -> None:
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = data
        self._limit = limit
        self._produced = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while not self._inflater.eof:
            try:
                chunk = self._inflater.decompress(self._pending, min(len(view), _INFLATE_BLOCK))
            except zlib.error as exc:
                raise InvalidInputError(f"archive: not a gzip-compressed tar ({exc})") from None
            self._pending = self._inflater.unconsumed_tail
            if chunk:
                self._produced += len(chunk)
                if self._produced > self._limit:
                    raise LimitExceededError(f"archive: unpacks to more than {self._limit} bytes, the server's limit")
                view[: len(chunk)] = chunk
                return len(chunk)
            if not self._pending:
                raise InvalidInputError("archive: the gzip data is truncated")
        return 0


def _check_name(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or "\0" in name or "\\" in name:
        raise InvalidInputError(f"archive: member name {name!r} is not a plain relative path")
    if path.is_absolute():
        raise InvalidInputError(f"archive: member {name!r} has an absolute path")
    if ".." in path.parts:
        raise InvalidInputError(f"archive: member {name!r} points outside the archive ('..')")
    return path


def extract_archive(
    data: bytes, target: Path, *, max_bytes: int = MAX_UNPACKED_BYTES, max_members: int = MAX_MEMBERS
) -> None:
    """Unpack a .tar.gz of a method directory into the empty directory ``target``, checking every member.

    The archive is read as a stream, one member at a time: what is extracted is counted as it is written
    (a member's declared size is checked before any of it is), and sparse members are refused, since their
    few stored bytes stand for an arbitrarily large file.
    """
    budget = _Budget(max_bytes)
    stream = io.BufferedReader(_CappedInflater(data, max_bytes + max_members * _HEADER_ALLOWANCE))
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for count, member in enumerate(tar, start=1):
                if count > max_members:
                    raise LimitExceededError(f"archive: more than {max_members} members, the server's limit")
                _extract_member(tar, member, target, budget)
    except tarfile.TarError as exc:
        raise InvalidInputError(f"archive: not a valid tar archive ({exc})") from None


class _Budget:
    """The bytes an archive may still unpack to."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def take(self, size: int) -> None:
        if size > self.left:
            raise LimitExceededError(f"archive: unpacks to more than {self.limit} bytes, the server's limit")
        self.left -= size


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, budget: _Budget) -> None:
    rel = _check_name(member.name)
    if rel == PurePosixPath("."):
        return
    destination = target.joinpath(*rel.parts)
    try:
        if member.isdir():
            destination.mkdir(parents=True, exist_ok=True)
            return
        if not member.isreg():
            kind = "a link" if member.issym() or member.islnk() else "a device, FIFO or other special file"
            raise InvalidInputError(
                f"archive: member {member.name!r} is {kind}; only files and directories are allowed"
            )
        if member.issparse():
            raise InvalidInputError(f"archive: member {member.name!r} is a sparse file; only plain files are allowed")
        budget.take(member.size)
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        mode = 0o755 if member.mode & stat.S_IXUSR else 0o644
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, _INFLATE_BLOCK)
    except FileExistsError:
        raise InvalidInputError(f"archive: member {member.name!r} appears twice") from None
    except OSError as exc:
        raise InvalidInputError(f"archive: cannot unpack member {member.name!r}: {exc.strerror}") from None
