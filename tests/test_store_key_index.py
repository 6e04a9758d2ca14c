"""One index per job over its key (schema step 11): the live index holds the job the cache serves or joins, the
key index every other job, and the lookup of a batch's keys reads both through their indexes with the same
answer as the one query over every job it replaced; a version-10 store (both indexes over every job) upgrades."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from store_versions import downgrade

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.store.schema import SCHEMA_VERSION
from dshpc_jupyter.store.sqlite import LATEST_JOBS_SQL, Store

#: The lookup before step 11: every job of the key not replaced, later rows winning, read without any index.
REFERENCE_SQL = (
    "SELECT job_key, job_id, status, output FROM jobs NOT INDEXED WHERE job_key IN (SELECT value FROM json_each(?))"
    " AND replaced_by IS NULL ORDER BY seq"
)

#: (job_key, job_id, status, replaced_by), in insertion order: the histories a key can have.
HISTORIES = [
    ("done", "d1", st.COMPLETED, None),
    ("retried", "r1", st.FAILED, None),
    ("retried", "r2", st.TIMEOUT, None),
    ("retried", "r3", st.COMPLETED, None),
    ("rerun-failed", "f1", st.COMPLETED, "f2"),
    ("rerun-failed", "f2", st.OUT_OF_MEMORY, None),
    ("rerun-running", "g1", st.COMPLETED, "g2"),
    ("rerun-running", "g2", st.RUNNING, None),
    ("all-failed", "a1", st.FAILED, None),
    ("all-failed", "a2", st.CANCELLED, None),
    ("pending", "p1", st.PENDING, None),
    ("live-then-ended", "l1", st.COMPLETED, None),
    ("live-then-ended", "l2", st.NODE_FAIL, None),
]
KEYS = sorted({key for key, *_ in HISTORIES} | {"never-seen"})


def fill(path: Path) -> Store:
    """A store holding the histories above (written directly: what they are matters here, not how they came)."""
    store = Store(path)
    with store.write() as tx:
        tx.connection.executemany(
            "INSERT INTO jobs (job_id, job_key, file_hash, method_name, function_hash, parameters, status, output,"
            " created_at, scheduler, replaced_by) VALUES (?, ?, 'f', 'm', 'h', '{}', ?, ?, 0, 'local', ?)",
            [(job_id, key, status, f"out {job_id}", replaced) for key, job_id, status, replaced in HISTORIES],
        )
    return store


def latest(store: Store) -> dict[str, tuple[str, str, str | None]]:
    with store.read() as tx:
        return {key: (job.job_id, job.status, job.output) for key, job in tx.latest_jobs(KEYS).items()}


def reference(store: Store) -> dict[str, tuple[str, str, str | None]]:
    with store.read() as tx:
        rows = tx.connection.execute(REFERENCE_SQL, (json.dumps(KEYS),)).fetchall()
    return {key: (job_id, status, output) for key, job_id, status, output in rows}


def index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_the_lookup_gives_the_newest_job_not_replaced_of_every_history(tmp_path: Path) -> None:
    store = fill(tmp_path / "store.sqlite")
    try:
        found = latest(store)
        assert found == reference(store)
        assert {key: job_id for key, (job_id, *_) in found.items()} == {
            "done": "d1", "retried": "r3", "rerun-failed": "f2", "rerun-running": "g2", "all-failed": "a2",
            "pending": "p1", "live-then-ended": "l2",
        }  # fmt: skip
    finally:
        store.close()


def test_each_part_of_the_lookup_searches_its_index(tmp_path: Path) -> None:
    store = fill(tmp_path / "store.sqlite")
    try:
        with store.read() as tx:
            plan = [row[3] for row in tx.connection.execute("EXPLAIN QUERY PLAN " + LATEST_JOBS_SQL, ("[]",))]
    finally:
        store.close()
    reads = [step for step in plan if step.startswith(("SEARCH j ", "SCAN j "))]
    assert reads == [
        "SEARCH j USING INDEX jobs_one_live_per_key (job_key=?)",
        "SEARCH j USING INDEX jobs_not_live_by_key (job_key=?)",
    ], plan
    assert not [step for step in plan if "AUTOMATIC" in step or step.startswith("SCAN jobs")], plan


def test_a_store_of_completed_jobs_keeps_each_key_in_one_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    try:
        with store.write() as tx:
            tx.connection.executemany(
                "INSERT INTO jobs (job_id, job_key, file_hash, method_name, function_hash, parameters, status,"
                " created_at, scheduler) VALUES (?, ?, 'f', 'm', 'h', '{}', 'CD', 0, 'local')",
                [(f"job{i}", f"{i:064x}") for i in range(5000)],
            )
            sizes = dict(tx.connection.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
            page = tx.connection.execute("PRAGMA page_size").fetchone()[0]
    finally:
        store.close()
    assert sizes["jobs_one_live_per_key"] > 50 * page, sizes
    assert sizes["jobs_not_live_by_key"] == page, "the key index holds none of them"
    assert "jobs_by_key" not in sizes


def test_a_version_10_store_is_upgraded_to_one_index_per_job(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    fill(path).close()
    with sqlite3.connect(path) as conn:  # as a package of schema version 10 left it
        downgrade(conn, 10)
        before = {key: row for key, *row in conn.execute(REFERENCE_SQL, (json.dumps(KEYS),))}
    assert {"jobs_by_key", "jobs_one_live_per_key"} <= index_names(path)
    assert "jobs_not_live_by_key" not in index_names(path)

    store = Store(path)
    try:
        with store.read() as tx:
            assert tx.connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert tx.connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert {key: list(job) for key, job in latest(store).items()} == before
    finally:
        store.close()
    assert "jobs_by_key" not in index_names(path)
    assert {"jobs_not_live_by_key", "jobs_one_live_per_key"} <= index_names(path)
