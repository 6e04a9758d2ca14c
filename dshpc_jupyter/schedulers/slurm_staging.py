"""What a Slurm submission puts on the shared filesystem and reads back: input files and method copies staged
once under ``workdir``, and the job ids each array task of a manifest runs (to adopt an array after a crash).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .base import Submission


def manifest_groups(path: Path) -> list[list[str]]:
    """The job ids of each array task of a manifest (none when it is unreadable: nothing to adopt)."""
    try:
        groups = json.loads(path.read_text(encoding="utf-8"))["groups"]
    except (OSError, ValueError, KeyError):
        return []
    return [[task["job_id"] for task in group] for group in groups]


def input_hashes(submission: Submission) -> list[str]:
    """Every stored file a job reads: its single file or each of its named inputs."""
    named = (submission.file_inputs or {}).values()
    return [h for h in [submission.file_hash] if h] + [h for v in named for h in ([v] if isinstance(v, str) else v)]


def copy_once(source: Path, target: Path, staging_dir: Path) -> None:
    """Copy a content-addressed file unless it is there already (written aside, then renamed into place)."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, staging = tempfile.mkstemp(dir=staging_dir, prefix="stage-")
    os.close(fd)
    shutil.copyfile(source, staging)
    Path(staging).replace(target)
