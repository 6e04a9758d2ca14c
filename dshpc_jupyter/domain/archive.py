"""Method directories as archives: packed by the HTTP client, unpacked by the server for ``POST /methods``.

The server unpacks archives from the network, so extraction trusts nothing: the gzip stream is inflated with
a hard cap (no decompression bombs), only regular files and directories are accepted (no links, devices or
FIFOs), every name must stay inside the target (no absolute paths, no ``..``), and nothing is overwritten.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from .errors import InvalidInputError, LimitExceededError
from .hashing import method_files

MAX_UNPACKED_BYTES = 256 << 20
MAX_MEMBERS = 10_000
_INFLATE_BLOCK = 1 << 20


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


def _inflate(data: bytes, limit: int) -> bytes:
    """Decompress gzip data, refusing to produce more than ``limit`` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    pending = data
    try:
        while not inflater.eof:
            chunk = inflater.decompress(pending, _INFLATE_BLOCK)
            out += chunk
            if len(out) > limit:
                raise LimitExceededError(f"archive: unpacks to more than {limit} bytes, the server's limit")
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break
    except zlib.error as exc:
        raise InvalidInputError(f"archive: not a gzip-compressed tar ({exc})") from None
    if not inflater.eof:
        raise InvalidInputError("archive: the gzip data is truncated")
    return bytes(out)


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
    """Unpack a .tar.gz of a method directory into the empty directory ``target``, checking every member."""
    raw = _inflate(data, max_bytes)
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            members = tar.getmembers()
            if len(members) > max_members:
                raise LimitExceededError(f"archive: more than {max_members} members, the server's limit")
            for member in members:
                _extract_member(tar, member, target)
    except tarfile.TarError as exc:
        raise InvalidInputError(f"archive: not a valid tar archive ({exc})") from None


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
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
        destination.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        assert source is not None
        mode = 0o755 if member.mode & stat.S_IXUSR else 0o644
        fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(source.read())
    except FileExistsError:
        raise InvalidInputError(f"archive: member {member.name!r} appears twice") from None
    except OSError as exc:
        raise InvalidInputError(f"archive: cannot unpack member {member.name!r}: {exc.strerror}") from None
