"""A job's priority is part of its record (``JobRecord.priority``, on both backends) and survives what hands the
job to a scheduler again: a retry on the local worker, a quota release (docs/design.md section 13.2). The
Slurm retry is tests/test_slurm_changes.py's."""

from __future__ import annotations

from pathlib import Path

from support import wait_for_jobs
from test_backends_shared import EXAMPLE, conn, hashes
from test_slurm_changes import submit_flaky

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.quotas import release
from dshpc_jupyter.store.team import HELD, TeamStore

__all__ = ["conn", "hashes"]  # the fixtures, used by name


def test_a_jobs_priority_is_in_its_record_on_both_backends(conn: Connection, hashes: dict[str, str]) -> None:
    configs = [{"file_hash": hashes["hello.txt"], "method_name": EXAMPLE, "parameters": {"prefix": p}} for p in "ab"]
    first = conn.simulate_jobs(configs[:1], priority=-4).results[0].job_id
    second = conn.simulate_jobs(configs[1:]).results[0].job_id
    assert first and second
    assert [r.priority for r in conn.job_statuses([first, second])] == [-4, 0]
    assert conn.get_job(first).priority == -4


def test_a_locally_retried_job_keeps_its_priority(engine: Engine, tmp_path: Path) -> None:
    job_id = submit_flaky(engine, tmp_path, seconds=0, priority=6)
    (record,) = wait_for_jobs(engine, [job_id])
    assert (record.status, record.attempt, record.priority) == (st.COMPLETED, 2, 6), record.error
    assert [a.status for a in record.attempts] == [st.FAILED]
    with engine.store.read() as tx:
        (column,) = tx.connection.execute("SELECT priority FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    assert column == 6, "the queue orders the retry by the priority it was submitted with"


def test_a_job_released_from_its_quota_keeps_its_priority(queued_engine: Engine) -> None:
    engine = queued_engine
    hello = {f.filename: f.file_hash for f in engine.list_files()}["hello.txt"]
    configs = [{"file_hash": hello, "method_name": EXAMPLE, "parameters": {"prefix": p}} for p in ("x", "y")]
    ids = [r.job_id for r in engine.simulate_jobs(configs, priority=9).results]
    assert all(ids)
    with engine.store.write() as tx:  # held, as a user over max_running would have had them
        tx.connection.execute("UPDATE jobs SET scheduler = ?, owner = 'alice' WHERE job_id IN (?, ?)", (HELD, *ids))
    submissions = release(TeamStore(engine.store), lambda owner: None, "local")
    assert sorted(s.job_id for s in submissions) == sorted(i for i in ids if i)
    assert {s.priority for s in submissions} == {9}
