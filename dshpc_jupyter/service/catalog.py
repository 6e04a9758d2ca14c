"""The catalogue of a home: its registered methods and stored files, the part of the engine that runs no job.

The engine extends it with jobs and batches; the checks of a config read the parameter schemas it caches.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..domain.errors import InvalidInputError, NotFoundError
from ..domain.hashing import is_sha256_hex
from ..domain.home import Home
from ..domain.methods import ParameterSchema, install_method, load_method, method_dirs
from ..domain.models import FileInfo, HashCheckResponse, MethodInfo, MethodSpec
from ..store.sqlite import Store
from .staging import stage_upload
from .transfers import StreamedUploads, keep_staged


class Catalog:
    """Methods and files of one home directory over its store."""

    def __init__(self, home: Home, store: Store) -> None:
        self.home = home
        self.store = store
        self._schemas: dict[str, ParameterSchema] = {}
        self.streams = StreamedUploads(home, store)

    # --- methods ---------------------------------------------------------------------------------------

    def register_method(self, path: str | os.PathLike[str]) -> list[MethodInfo]:
        """Register a method directory (or a directory of them); each becomes the latest of its name."""
        with method_dirs(path) as directories:
            loaded = [load_method(directory) for directory in directories]
            for method in loaded:
                install_method(self.home, method)
                self.store.add_method(method.function_hash, method.spec)
        hashes = {m.function_hash for m in loaded}
        return [m for m in self.store.list_methods(latest_only=False) if m.function_hash in hashes]

    def list_methods(self, latest_only: bool = True) -> list[MethodInfo]:
        return self.store.list_methods(latest_only=latest_only)

    def method_versions(self, name: str) -> list[MethodInfo]:
        versions = self.store.list_methods(name=name, latest_only=False)
        if not versions:
            raise NotFoundError(f"Method '{name}' not found")
        return versions

    def _schema(self, function_hash: str, spec: MethodSpec) -> ParameterSchema:
        schema = self._schemas.get(function_hash)
        if schema is None:
            schema = self._schemas[function_hash] = ParameterSchema(spec, function_hash)
        return schema

    # --- files -----------------------------------------------------------------------------------------

    def upload_file(
        self,
        source: bytes | str | os.PathLike[str],
        *,
        file_hash: str | None = None,
        filename: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, Any] | None = None,
        exist_ok: bool = True,
    ) -> FileInfo:
        """Store content (bytes, or a file's path) under its SHA-256, verified against ``file_hash`` if given.

        An upload of content already stored returns the stored record (or ConflictError, without
        ``exist_ok``); the bytes are kept once whatever the number of uploads.
        """
        file_hash = file_hash.lower() if isinstance(file_hash, str) else file_hash
        if file_hash is not None and not is_sha256_hex(file_hash):
            raise InvalidInputError("file_hash: must be 64 hexadecimal characters (a SHA-256 digest)")
        if isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            if not path.is_file():
                raise InvalidInputError(f"path: {str(path)!r} is not a readable file")
            filename = filename or path.name
        staged, digest, size = stage_upload(self.home, source)
        if file_hash is not None and digest != file_hash:
            staged.unlink(missing_ok=True)
            raise InvalidInputError(f"file_hash: does not match the content, whose SHA-256 is {digest}")
        return keep_staged(
            self.home, self.store, staged, digest, size,
            filename=filename, content_type=content_type, metadata=metadata, exist_ok=exist_ok,
        )  # fmt: skip

    def check_hashes(self, hashes: Sequence[str]) -> HashCheckResponse:
        """Which hashes the store holds, answered in the spelling asked (hashes compare case-insensitively)."""
        existing = self.store.existing_files([h.lower() for h in hashes if isinstance(h, str)])
        return HashCheckResponse(
            existing_hashes=[h for h in hashes if h.lower() in existing],
            missing_hashes=[h for h in hashes if h.lower() not in existing],
        )

    def list_files(self) -> list[FileInfo]:
        return self.store.list_files()

    def get_file(self, file_hash: str) -> FileInfo:
        info = self.store.get_file(file_hash.lower())
        if info is None:
            raise NotFoundError(f"File '{file_hash}' not found")
        return info
