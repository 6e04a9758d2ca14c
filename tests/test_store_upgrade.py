"""A store written at schema version 1 (before named inputs and output files) is upgraded in place to version
2 with its jobs intact, and its completed jobs are still found by the same configs: the seed's ``file_hash``
keeps its job keys exactly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_versions import (
    added_columns,
    downgrade,
    downgrade_to_1,
    downgrade_to_2,
    schema_at,
    seeded_store,
    shape,
    user_version,
)

from dshpc_jupyter.domain.hashing import job_key, parameters_key
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.schema import MIGRATIONS, SCHEMA_VERSION

WORDS = "Word Count (bash)"


def test_a_version_1_store_is_upgraded_and_its_cached_jobs_are_found(home: Path) -> None:
    seeded = seeded_store(home)
    config, done, file_hash = seeded.config, seeded.job, seeded.config["file_hash"]
    with sqlite3.connect(home / "store.sqlite") as conn:  # back to version 1, as an older package left it
        downgrade_to_1(conn)
        (key, canonical, function_hash) = conn.execute("SELECT job_key, parameters, function_hash FROM jobs").fetchone()
    assert key == job_key(file_hash, parameters_key(function_hash, canonical)), "the seed's key formula"
    assert [step for step, _ in MIGRATIONS][:2] == [1, 2] and MIGRATIONS[-1][0] == SCHEMA_VERSION

    engine = open_engine(home)
    try:
        assert user_version(home) == SCHEMA_VERSION
        (kept,) = engine.store.get_jobs([done.job_id])
        assert (kept.status, kept.output, kept.file_hash) == (done.status, done.output, file_hash)
        assert (kept.file_inputs, kept.output_files) == (None, {})
        again = engine.simulate_jobs([config]).results[0]
        assert (again.outcome, again.job_id) == ("cached", done.job_id)
    finally:
        engine.close()


def test_a_version_2_store_gets_the_pipeline_tables_and_keeps_its_jobs(home: Path) -> None:
    seeded = seeded_store(home)
    config, done = seeded.config, seeded.job
    with sqlite3.connect(home / "store.sqlite") as conn:  # as a package of schema version 2 left it
        downgrade_to_2(conn)
    assert 8 in [step for step, _ in MIGRATIONS]

    engine = open_engine(home)
    try:
        with sqlite3.connect(home / "store.sqlite") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert conn.execute("SELECT count(*) FROM pipeline_steps").fetchone() == (0,)
        assert engine.simulate_jobs([config]).results[0].job_id == done.job_id
        steps = {"a": config, "b": {"method_name": WORDS, "file_hash": {"$ref": "a"}}}
        submitted = engine.pipelines.submit(steps)
        assert submitted.steps["a"].outcome == "cached" and submitted.statistics.total_steps == 2
    finally:
        engine.close()


def test_a_store_is_taken_back_to_every_older_version_exactly(home: Path) -> None:
    """The upgrade tests start from true older stores: a current store with rows in it, taken back to each
    older version, has that version's tables, columns, indexes and triggers, and upgrades again."""
    seeded = seeded_store(home)
    config, done = seeded.config, seeded.job
    engine = open_engine(home)
    engine.simulate_jobs([config])  # a second batch of the same results: one payload shared
    engine.close()
    for version in [step for step, _ in MIGRATIONS][:-1]:
        with sqlite3.connect(home / "store.sqlite") as conn:
            downgrade(conn, version)  # itself fails naming what still differs
            assert shape(conn) == shape(schema_at(version))
            assert conn.execute("SELECT job_id FROM jobs").fetchall() == [(done.job_id,)]
            if version < 7:  # batch results inline again, as packages before step 7 read them
                assert conn.execute("SELECT count(*) FROM batches WHERE length(results) = 0").fetchone() == (0,)
        engine = open_engine(home)  # and up again, for the next older version
        try:
            assert engine.simulate_jobs([config]).results[0].job_id == done.job_id
        finally:
            engine.close()


def test_what_a_step_added_is_read_from_the_schema() -> None:
    assert added_columns(3, "jobs") == ["attempt", "attempts", "retry", "resources", "not_before", "replaced_by"]
    assert added_columns(10, "pipelines") == ["owner"]
