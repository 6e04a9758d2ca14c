"""Forgetting jobs (docs/design.md section 12.3): the store decides what goes, then the files go from disk.

A job in progress is refused rather than cancelled on the way: forgetting is about the cache, stopping work is
``cancel``'s decision, and a caller who wants both cancels, waits for the job to end, then forgets. The disk is
cleaned only after the store has committed, so a crash in between leaves unreferenced files, never a record
without its file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from ..domain.home import Home
from ..domain.models import ForgetResponse
from ..store.sqlite import Store


def forget(home: Home, store: Store, job_ids: Sequence[str]) -> ForgetResponse:
    """Remove ended jobs from the cache, their workspaces, and the output files nothing else needs."""
    done = store.forget(job_ids)
    for job_id in done.forgotten:
        remove_tree(home.workspace(job_id))
    for file_hash in done.removed_files:
        with contextlib.suppress(FileNotFoundError):
            home.file_path(file_hash).unlink()
    return ForgetResponse(
        forgotten=done.forgotten, in_progress=done.in_progress, not_found=done.not_found,
        removed_files=done.removed_files,
    )  # fmt: skip


def remove_tree(path: Path) -> None:
    """Remove a workspace, read-only parts included (staged inputs and a method's outputs may be 0444/0555)."""
    if not path.exists():
        return
    for root, dirs, _ in os.walk(path):
        for name in dirs:
            with contextlib.suppress(OSError):
                (Path(root) / name).chmod(0o700)
    shutil.rmtree(path, ignore_errors=True)
