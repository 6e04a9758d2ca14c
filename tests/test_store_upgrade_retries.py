"""A store written at schema version 2 (before retries and forced reruns) is upgraded in place to step 3: its
jobs read as first attempts with no history, its cached job is still found, and a forced rerun of it can take
its place in the rebuilt one-live-job-per-key index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from store_versions import added_columns, downgrade_to_2, seeded_store
from support import wait_for_jobs

from dshpc_jupyter.domain.retries import SubmitOptions
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.schema import MIGRATIONS

WORDS = "Word Count (bash)"
#: The columns step 3 (retries, forced reruns) added to ``jobs``, read from the schema rather than copied.
STEP_3_COLUMNS = added_columns(3, "jobs")


def test_a_version_2_store_is_upgraded_to_step_3(home: Path) -> None:
    seeded = seeded_store(home)
    config, done = seeded.config, seeded.job
    assert 3 in [step for step, _ in MIGRATIONS]
    with sqlite3.connect(home / "store.sqlite") as conn:
        downgrade_to_2(conn)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    assert not columns & set(STEP_3_COLUMNS)

    engine = open_engine(home)
    try:
        with sqlite3.connect(home / "store.sqlite") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] >= 3
            columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
            assert set(STEP_3_COLUMNS) <= columns
            with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):  # the index still holds one live job a key
                conn.execute("UPDATE jobs SET status = 'PD' WHERE job_id != ?", (done.job_id,))
                conn.execute(
                    "INSERT INTO jobs (job_id, job_key, file_hash, method_name, function_hash, parameters, status,"
                    " created_at, scheduler) SELECT 'x', job_key, file_hash, method_name, function_hash, parameters,"
                    " 'PD', created_at, scheduler FROM jobs WHERE job_id = ?",
                    (done.job_id,),
                )
        [kept] = engine.store.get_jobs([done.job_id])
        assert (kept.status, kept.output, kept.attempt, kept.attempts, kept.resources) == (
            done.status, done.output, 1, [], {}
        )  # fmt: skip
        assert engine.simulate_jobs([config]).results[0].job_id == done.job_id, "still the cached job"
        rerun = engine.simulate_jobs([config], options=SubmitOptions.of(force=True)).results[0]
        assert rerun.outcome == "rerun"
        (new,) = wait_for_jobs(engine, [rerun.job_id or ""])
        assert engine.simulate_jobs([config]).results[0].job_id == new.job_id, "the rerun is the cached job now"
    finally:
        engine.close()
