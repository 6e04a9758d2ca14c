"""The layout of a dsHPC home directory: the store, content-addressed files, method copies, job workspaces.

One place names every path, so the engine, the local worker and the schedulers agree on where things are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

HOME_ENV = "DSHPC_HOME"


def default_home() -> Path:
    """``$DSHPC_HOME`` if set, else the per-user data directory (e.g. ``~/.local/share/dshpc-jupyter``)."""
    configured = os.environ.get(HOME_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path(platformdirs.user_data_dir("dshpc-jupyter", appauthor=False))


@dataclass(frozen=True)
class Home:
    """Paths under one home directory. Creating it makes the directories, nothing else."""

    root: Path

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Home:
        home = cls(Path(root).expanduser().resolve() if root is not None else default_home().resolve())
        for directory in (home.files_dir, home.methods_dir, home.jobs_dir, home.tmp_dir, home.run_dir):
            directory.mkdir(parents=True, exist_ok=True)
        return home

    @property
    def db_path(self) -> Path:
        return self.root / "store.sqlite"

    @property
    def files_dir(self) -> Path:
        return self.root / "files"

    @property
    def methods_dir(self) -> Path:
        return self.root / "methods"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def tmp_dir(self) -> Path:
        """Staging area on the same filesystem, so finished files move into place atomically."""
        return self.root / "tmp"

    @property
    def run_dir(self) -> Path:
        """Lock, wake-up pipe and log of the local worker."""
        return self.root / "run"

    def file_path(self, file_hash: str) -> Path:
        return self.files_dir / file_hash[:2] / file_hash

    def method_dir(self, function_hash: str) -> Path:
        return self.methods_dir / function_hash

    def workspace(self, job_id: str) -> Path:
        return self.jobs_dir / job_id[:2] / job_id
