"""A store written at schema version 1 (before named inputs and output files) is upgraded in place to version
2 with its jobs intact, and its completed jobs are still found by the same configs: the seed's ``file_hash``
keeps its job keys exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support import wait_for_jobs

from dshpc_jupyter.domain.hashing import job_key, parameters_key
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.schema import MIGRATIONS, SCHEMA_VERSION

WORDS = "Word Count (bash)"


def test_a_version_1_store_is_upgraded_and_its_cached_jobs_are_found(home: Path) -> None:
    engine = open_engine(home)
    engine.register_method(methods_dir())
    poem = next(engine.upload_file(p) for p in data_files() if p.name == "poem.txt")
    config = {"file_hash": poem.file_hash, "method_name": WORDS}
    first = engine.simulate_jobs([config]).results[0]
    assert first.job_id is not None
    (done,) = wait_for_jobs(engine, [first.job_id])
    engine.close()
    with sqlite3.connect(home / "store.sqlite") as conn:  # back to version 1, as an older package left it
        # what the later steps add goes too
        for index in ("jobs_queue", "jobs_queue_group", "jobs_queue_age", "files_by_upload"):
            conn.execute(f"DROP INDEX {index}")
        for column in ("priority", "queue_group", "queue_rank"):
            conn.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        conn.execute("ALTER TABLE jobs DROP COLUMN file_inputs")
        conn.execute("ALTER TABLE jobs DROP COLUMN output_files")
        conn.execute("PRAGMA user_version = 1")
        (key, canonical, function_hash) = conn.execute("SELECT job_key, parameters, function_hash FROM jobs").fetchone()
    assert key == job_key(poem.file_hash, parameters_key(function_hash, canonical)), "the seed's key formula"
    assert [step for step, _ in MIGRATIONS][:2] == [1, 2]

    engine = open_engine(home)
    try:
        with sqlite3.connect(home / "store.sqlite") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        (kept,) = engine.store.get_jobs([done.job_id])
        assert (kept.status, kept.output, kept.file_hash) == (done.status, done.output, poem.file_hash)
        assert (kept.file_inputs, kept.output_files) == (None, {})
        again = engine.simulate_jobs([config]).results[0]
        assert (again.outcome, again.job_id) == ("cached", done.job_id)
    finally:
        engine.close()
