"""Content addressing: file hashes, method (directory) hashes, canonical JSON and job keys.

Everything that decides whether two things are "the same" for deduplication lives here, so the rules are
written down once (docs/design.md section 1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

CHUNK = 1 << 20

#: Directory entries that never count as part of a method: caches and editor/VCS litter.
IGNORED_NAMES = frozenset({"__pycache__", ".git", ".ipynb_checkpoints", ".DS_Store", ".mypy_cache"})
IGNORED_SUFFIXES = (".pyc", ".pyo")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_stream(stream: BinaryIO) -> str:
    return sha256_copy(stream)[0]


def sha256_copy(stream: BinaryIO, out: BinaryIO | None = None) -> tuple[str, int]:
    """(SHA-256, size) of a stream read to its end, each block also written to ``out`` when given: an upload
    is staged and hashed in one pass over its bytes."""
    digest = hashlib.sha256()
    size = 0
    for block in iter(lambda: stream.read(CHUNK), b""):
        digest.update(block)
        size += len(block)
        if out is not None:
            out.write(block)
    return digest.hexdigest(), size


def sha256_file(path: Path) -> str:
    with path.open("rb") as stream:
        return sha256_stream(stream)


def is_sha256_hex(value: object) -> bool:
    """True for a lowercase hex SHA-256 digest, the only form a ``file_hash`` takes."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def canonical_json(value: Any) -> str:
    """JSON with sorted keys (recursively) and fixed separators: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def method_files(root: Path) -> Iterator[tuple[str, Path]]:
    """The files that make up a method directory, as (sorted relative POSIX path, path) pairs."""
    found: list[tuple[str, Path]] = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if any(part in IGNORED_NAMES for part in rel.parts) or path.name.endswith(IGNORED_SUFFIXES):
            continue
        if path.is_file():
            found.append((rel.as_posix(), path))
    yield from sorted(found)


def function_hash(spec: Mapping[str, Any], root: Path) -> str:
    """SHA-256 over the spec's identity fields and every file under ``root`` (path and content).

    Each file is framed by its path and size so that no two different trees hash alike.
    """
    digest = hashlib.sha256()
    identity = {key: spec.get(key) for key in ("name", "command", "script_path", "version")}
    digest.update(canonical_json(identity).encode())
    for rel, path in method_files(root):
        data = path.read_bytes()
        digest.update(f"\0{rel}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def parameters_key(function_hash_: str, canonical_parameters: str) -> str:
    """Digest of one (method version, parameter set): shared by every file of a sweep."""
    return hashlib.sha256(f"{function_hash_}\n{canonical_parameters}".encode()).hexdigest()


def job_key(file_hash: str, parameters_key_: str) -> str:
    """The identity of a job: SHA-256 of (its inputs, function_hash, canonical parameters).

    Built from :func:`parameters_key` so a sweep hashes its parameters once, not once per file. ``file_hash``
    is what :func:`inputs_key` gives: the seed's single hash as it always was, so stored job keys still match.
    """
    return hashlib.sha256(f"{file_hash}\n{parameters_key_}".encode()).hexdigest()


def inputs_key(file_hash: str, file_inputs: Mapping[str, str | list[str]] | None) -> str:
    """What a job's key covers of its inputs (docs/design.md section 8.1): the seed's single hash unchanged,
    ``inputs:`` and the canonical JSON of named inputs (names sorted, arrays in their order), or ``""`` for a
    parameters-only job. Hashes are taken lower-cased; the forms cannot collide (a hash is 64 hex digits)."""
    if file_inputs is None:
        return file_hash
    return "inputs:" + canonical_json(normalized_inputs(file_inputs))


def normalized_inputs(file_inputs: Mapping[str, str | list[str]]) -> dict[str, str | list[str]]:
    """Named inputs with every hash lower-cased (the store's spelling)."""
    return {k: v.lower() if isinstance(v, str) else [h.lower() for h in v] for k, v in file_inputs.items()}
