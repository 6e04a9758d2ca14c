"""Forgetting jobs: their rows leave the store, with the records of the output files nothing else needs
(docs/design.md section 12.3).

One write transaction decides and deletes, so a job submitted meanwhile that names a file as its input is seen
and keeps that file. The caller removes the workspaces and the stored files the answer names, after the commit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..domain import status as st

#: Which of the candidate hashes (``?1``, a JSON array) a remaining job still names, as its input or an output:
#: one pass over the jobs for the whole set, not one per file.
_STILL_NEEDED_SQL = (
    "SELECT file_hash FROM jobs WHERE file_hash IN (SELECT value FROM json_each(?1))"
    " UNION SELECT o.value FROM jobs, json_each(jobs.output_files) AS o"
    " WHERE jobs.output_files IS NOT NULL AND o.value IN (SELECT value FROM json_each(?1))"
    " UNION SELECT i.atom FROM jobs, json_tree(jobs.file_inputs) AS i"
    " WHERE jobs.file_inputs IS NOT NULL AND i.atom IN (SELECT value FROM json_each(?1))"
)
#: The files among the candidates whose record names a job as the one that stored them (not an upload).
_JOB_OWNED_SQL = (
    "SELECT file_hash FROM files WHERE file_hash IN (SELECT value FROM json_each(?))"
    " AND json_valid(metadata) AND json_type(metadata, '$.job_id') = 'text'"
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
    outputs = dict.fromkeys(h for j in answer.forgotten for h in json.loads(found[j][1] or "{}").values())
    candidates = json.dumps(list(outputs))
    removable = {row[0] for row in conn.execute(_JOB_OWNED_SQL, (candidates,))}
    removable -= {row[0] for row in conn.execute(_STILL_NEEDED_SQL, (candidates,))}
    answer.removed_files = [h for h in outputs if h in removable]
    gone = json.dumps(answer.removed_files)
    conn.execute("DELETE FROM files WHERE file_hash IN (SELECT value FROM json_each(?))", (gone,))
    return answer
