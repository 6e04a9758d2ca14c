"""Forgetting jobs: their rows leave the store, with the records of the output files nothing else needs
(docs/design.md section 10.3).

One write transaction decides and deletes, so a job submitted meanwhile that names a file as its input is seen
and keeps that file. The caller removes the workspaces and the stored files the answer names, after the commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain import status as st

_STILL_NEEDED_SQL = (
    "SELECT 1 FROM jobs WHERE file_hash = ?1 OR instr(coalesce(output_files, ''), ?1)"
    " OR instr(coalesce(file_inputs, ''), ?1) LIMIT 1"
)


@dataclass
class Forgotten:
    """What a forget removed from the store (and what it refused)."""

    forgotten: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    #: Hashes of the stored files whose records went with the jobs: the caller removes their content.
    removed_files: list[str] = field(default_factory=list)


def forget_jobs(conn: sqlite3.Connection, job_ids: Sequence[str]) -> Forgotten:
    """Delete the ended jobs among ``job_ids`` (in the caller's write transaction) and the records of their
    output files that no remaining job names (as an input or an output) and that no upload owns: a file's
    record belongs to whoever stored it first, so an upload of the same bytes made earlier keeps it (one made
    later finds the job's record and leaves it as it is, so it does not)."""
    asked = list(dict.fromkeys(job_ids))
    rows = conn.execute(
        "SELECT job_id, status, output_files FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))",
        (json.dumps(asked),),
    ).fetchall()
    found = {job_id: (status, outputs) for job_id, status, outputs in rows}
    answer = Forgotten(not_found=[j for j in asked if j not in found])
    for job_id in asked:
        if job_id in found:
            (answer.in_progress if st.is_in_progress(found[job_id][0]) else answer.forgotten).append(job_id)
    if not answer.forgotten:
        return answer
    conn.execute("DELETE FROM jobs WHERE job_id IN (SELECT value FROM json_each(?))", (json.dumps(answer.forgotten),))
    candidates = dict.fromkeys(h for j in answer.forgotten for h in json.loads(found[j][1] or "{}").values())
    for file_hash in candidates:
        record = conn.execute("SELECT metadata FROM files WHERE file_hash = ?", (file_hash,)).fetchone()
        metadata = json.loads(record[0] or "null") if record is not None else None
        owner = metadata.get("job_id") if isinstance(metadata, dict) else None
        if owner is None or conn.execute(_STILL_NEEDED_SQL, (file_hash,)).fetchone() is not None:
            continue
        conn.execute("DELETE FROM files WHERE file_hash = ?", (file_hash,))
        answer.removed_files.append(file_hash)
    return answer
