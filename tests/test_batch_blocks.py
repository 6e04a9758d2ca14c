"""Batch results in shared blocks (docs/design.md section 14.3, schema step 13): a sweep run again with one
config more stores the block around the change, not a copy; every read is exactly what was recorded (integers
past 64 bits, unicode, missing fields, results without a job id); refusals rewrite only their blocks and
release the ones no batch names; a batch stays readable after its jobs are forgotten; a batch recorded as
one whole payload (steps 7 to 12) is still read and appended to; a missing block is reported, not guessed."""

from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import ExitStack, closing
from pathlib import Path
from typing import Any

import pytest
from http_support import BACKENDS, connection_of
from store_versions import downgrade, seeded_store, user_version
from support import run_cli, wait_for_jobs

from dshpc_jupyter.domain.errors import StoreDamagedError
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.domain.models import BatchStatistics
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store import maintenance, payloads
from dshpc_jupyter.store.schema import SCHEMA_VERSION
from dshpc_jupyter.store.sqlite import Store

STATS = BatchStatistics()


def result(n: int, **fields: Any) -> dict[str, Any]:
    """One recorded result, as the engine packs it, for config ``n`` (a fresh random job id)."""
    row = {"job_id": uuid.uuid4().hex, "outcome": "cached", "old_status": "CD", "new_status": "CD",
           "message": "Job already completed", "file_hash": "f" * 64, "method_name": "M", "function_hash": "h" * 64,
           "parameters": {"n": n}, "file_inputs": None}  # fmt: skip
    return row | fields


def record(store: Store, batch_id: str, results: list[dict[str, Any]]) -> None:
    with store.write() as tx:
        tx.insert_batch(batch_id, 1.0, STATS, results)


def read(store: Store, batch_id: str) -> list[dict[str, Any]]:
    found = store.get_batch(batch_id)
    assert found is not None
    return [r.model_dump(exclude={"output"}) for r in found[1]]


def count(store: Store, table: str) -> int:
    with sqlite3.connect(store.path) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store.sqlite")


def test_blocks_are_cut_by_content_so_an_insertion_shifts_no_later_block() -> None:
    rows = [result(n) for n in range(5000)]
    blocks = payloads.cut(rows)
    assert [r for block in blocks for r in block] == rows and all(blocks)
    assert all((b[-1]["job_id"][-2:] in {"00", "80"}) or len(b) == payloads.MAX_BLOCK for b in blocks[:-1])
    inserted = payloads.cut([*rows[:2500], result(-1), *rows[2500:]])
    assert len([b for b in inserted if b not in blocks]) == 1, "only the block around the insertion differs"
    no_ids = payloads.cut([result(n, job_id=None) for n in range(2 * payloads.MAX_BLOCK + 1)])
    assert [len(b) for b in no_ids] == [payloads.MAX_BLOCK, payloads.MAX_BLOCK, 1]
    assert payloads.cut([]) == []


def test_a_sweep_with_one_config_more_stores_one_block_and_the_same_call_nothing_more(store: Store) -> None:
    rows = [result(n) for n in range(3000)]
    record(store, "a", rows)
    blocks = count(store, "batch_payloads")
    swept = [*rows, result(3000)]
    record(store, "b", swept)
    assert count(store, "batch_payloads") == blocks + 1, "the last block, with the added config in it"
    lists = count(store, "batch_lists")
    record(store, "c", swept)
    assert (count(store, "batch_payloads"), count(store, "batch_lists")) == (blocks + 1, lists), "a batch row only"
    assert read(store, "a") == rows and read(store, "b") == swept == read(store, "c")


@pytest.mark.parametrize("kind", BACKENDS)
def test_a_swept_batch_of_several_blocks_pages_as_recorded_on_both_backends(kind: str, home: Path) -> None:
    configs = [{"method_name": f"missing {i % 7}", "parameters": {"i": i, "big": 2**65 + i}} for i in range(2200)]
    with ExitStack() as stack:
        conn = connection_of(kind, home, stack)
        conn.simulate_jobs(configs[:-1])
        swept = conn.simulate_jobs(configs)  # three blocks (results without job ids cut at MAX_BLOCK)
        assert swept.batch_id is not None and swept.failed_submissions == 2200
        pages, cursor = [], None
        for _ in range(10):
            page = conn.batch_page(swept.batch_id, limit=1000, cursor=cursor)
            pages.extend(page.results)
            cursor = page.next_cursor
            if cursor is None:
                break
        assert pages == swept.results == conn.batch(swept.batch_id).results
        assert pages[-1].parameters == {"i": 2199, "big": 2**65 + 2199}


def test_what_a_result_holds_is_read_back_unchanged(store: Store) -> None:
    odd = [
        result(0, parameters={"big": 2**70, "neg": -(2**80), "nested": [1.5, None, {"é": "☃"}]}),
        result(
            1,
            job_id=None,
            outcome="invalid",
            old_status=None,
            new_status=None,
            message="Method 'Ünknown' 🙃",
            file_hash=None,
            function_hash=None,
            parameters=None,
        ),
        result(2, job_id=None, outcome="refused", message="no slot", file_inputs={"data": "a" * 64}),
        result(3, parameters={}, message=""),
    ]
    record(store, "odd", odd)
    record(store, "empty", [])
    assert read(store, "odd") == odd and read(store, "empty") == []
    with store.write() as tx:
        assert tx.extend_batch("empty", STATS, odd[:1]) == 0 and tx.extend_batch("odd", STATS, []) == 4
        assert tx.extend_batch("missing", STATS, odd) == -1
    assert read(store, "empty") == odd[:1] and read(store, "odd") == odd
    assert store.get_batch("missing") is None


def test_a_refusal_rewrites_its_blocks_only_and_releases_those_no_batch_names(store: Store) -> None:
    rows = [result(n) for n in range(3000)]
    record(store, "a", rows)
    record(store, "b", rows)
    before = count(store, "batch_payloads")
    refused = [*rows[:10], result(10, job_id=rows[10]["job_id"], outcome="refused", message="refused"), *rows[11:]]
    with store.write():
        store.update_batch("b", STATS, refused)
    assert read(store, "b") == refused and read(store, "a") == rows
    assert count(store, "batch_payloads") == before + 1, "a still names the block b no longer does"
    with store.write():
        store.update_batch("a", STATS, refused)
    assert count(store, "batch_payloads") == before, "the block no batch names is gone"


def test_a_block_named_twice_is_counted_twice_and_freed_with_its_last_list(store: Store) -> None:
    same = [result(0, job_id=None, outcome="invalid") for _ in range(2 * payloads.MAX_BLOCK)]  # one block, twice
    record(store, "a", same)
    record(store, "b", same)
    assert (count(store, "batch_payloads"), count(store, "batch_lists")) == (1, 1)
    other = [result(1, job_id=None, outcome="invalid")]
    with store.write():
        store.update_batch("a", STATS, other)
    assert read(store, "b") == same and count(store, "batch_payloads") == 2, "b's list still names the block"
    with store.write():
        store.update_batch("b", STATS, other)
    assert read(store, "a") == read(store, "b") == other
    assert (count(store, "batch_payloads"), count(store, "batch_lists"), count(store, "block_refs")) == (1, 1, 1)
    with store.write() as tx:
        tx.connection.execute("DELETE FROM batches")
        payloads.release_unnamed(tx.connection)
    assert (count(store, "batch_payloads"), count(store, "batch_lists"), count(store, "block_refs")) == (0, 0, 0)


def test_a_batch_whose_jobs_were_forgotten_reads_as_before(engine: Engine, example_hashes: dict[str, str]) -> None:
    configs = [{"file_hash": example_hashes["poem.txt"], "method_name": "Word Count (bash)", "parameters": {}}]
    answer = engine.simulate_jobs(configs)
    wait_for_jobs(engine, [answer.results[0].job_id or ""])
    recorded = engine.batch(answer.batch_id or "").results
    assert engine.forget([answer.results[0].job_id or ""]).forgotten
    after = engine.batch(answer.batch_id or "").results
    assert [r.model_dump(exclude={"output"}) for r in after] == [r.model_dump(exclude={"output"}) for r in recorded]
    assert after[0].parameters == configs[0]["parameters"] and after[0].output is None, "no job, so no output"


def test_a_batch_in_one_whole_payload_is_read_and_converted_when_appended_to(store: Store) -> None:
    rows = [result(n) for n in range(300)]
    record(store, "old", rows)
    with sqlite3.connect(store.path) as conn:  # as schema steps 7 to 12 wrote it: one payload, no blocks
        packed = payloads.assemble(conn.execute(payloads.READ_SQL, ("old", payloads.BLOCKS)).fetchall())
        conn.execute("DELETE FROM batch_lists")
        conn.execute("DELETE FROM block_refs")
        conn.execute("DELETE FROM batch_payloads")
        conn.execute("INSERT INTO batch_payloads VALUES ('whole', ?)", (packed,))
        conn.execute("UPDATE batches SET results = x'', payload = 'whole'")
    assert read(store, "old") == rows
    with store.write() as tx:
        assert tx.extend_batch("old", STATS, rows[:5]) == 300
    assert read(store, "old") == [*rows, *rows[:5]]
    with store.write():
        store.update_batch("old", STATS, rows)
    assert read(store, "old") == rows
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM batch_payloads WHERE digest = 'whole'").fetchone() == (0,)


def test_a_row_packed_before_file_inputs_is_read_and_appended_to(store: Store) -> None:
    record(store, "old", [])
    short = '[["j1","cached","CD","CD","Completed job found","f","M","h",{"n":1}]]'  # nine fields, no file_inputs
    with sqlite3.connect(store.path) as conn:  # inline, as before schema step 7
        conn.execute("UPDATE batches SET results = ?, payload = NULL, total_jobs = 1", (short,))
    with store.write() as tx:
        assert tx.extend_batch("old", STATS, [result(2)]) == 1
    (first, second) = read(store, "old")
    assert (first["job_id"], first["parameters"], first["file_inputs"]) == ("j1", {"n": 1}, None)
    assert second["parameters"] == {"n": 2}


def test_a_missing_block_or_list_is_reported_as_damage(store: Store) -> None:
    record(store, "a", [result(n) for n in range(500)])
    with sqlite3.connect(store.path) as conn:
        conn.execute("DELETE FROM batch_payloads WHERE rowid = (SELECT min(rowid) FROM batch_payloads)")
    with pytest.raises(StoreDamagedError, match="missing from the store"):
        store.get_batch("a")
    record(store, "b", [])
    with sqlite3.connect(store.path) as conn:  # a list gone, even an empty one, is damage, not "no results"
        conn.execute("DELETE FROM batch_lists")
    for batch_id in ("a", "b"):
        with pytest.raises(StoreDamagedError, match="missing from the store"):
            store.get_batch(batch_id)
    with store.write() as tx, pytest.raises(StoreDamagedError, match="missing from the store"):
        tx.extend_batch("b", STATS, [result(0)])


def test_a_store_before_blocks_is_upgraded_and_its_batches_read_the_same(home: Path) -> None:
    seeded = seeded_store(home)
    engine = open_engine(home)
    try:
        recorded = engine.batch(seeded.batch_id).results
    finally:
        engine.close()
    with sqlite3.connect(home / "store.sqlite") as conn:
        downgrade(conn, 10)  # results inline again, as steps 7 to 12 read them
        (inline,) = conn.execute("SELECT results FROM batches").fetchone()
    assert inline.startswith("[[") and seeded.job.job_id in inline
    engine = open_engine(home)
    try:
        assert user_version(home) == SCHEMA_VERSION
        assert engine.batch(seeded.batch_id).results == recorded
        engine.simulate_jobs([seeded.config], append_to=seeded.batch_id)
        first, again = engine.batch(seeded.batch_id).results
        assert first == recorded[0] and (again.outcome, again.job_id) == ("cached", seeded.job.job_id)
    finally:
        engine.close()


def sound_store(home: Path) -> Store:
    """A closed store under ``home`` whose batches take every shape ``store check`` must count right: blocks
    shared by two lists, one block named twice by a list, an append, a refusal, an older row's whole payload
    (named by a batch, not a list), and a prune that deleted a batch and its list."""
    store = Store(Home.open(home).db_path)
    rows = [result(n) for n in range(3000)]
    record(store, "a", rows)
    record(store, "b", [*rows, result(3000)])
    record(store, "twice", [result(0, job_id=None, outcome="invalid") for _ in range(2 * payloads.MAX_BLOCK)])
    record(store, "pruned", [result(n) for n in range(300)])
    record(store, "old", rows[:200])
    with store.write() as tx:
        tx.extend_batch("a", STATS, [result(-1)])
        store.update_batch("b", STATS, [*rows[:10], result(10, outcome="refused"), *rows[11:]])
        conn = tx.connection
        packed = payloads.assemble(conn.execute(payloads.READ_SQL, ("old", payloads.BLOCKS)).fetchall())
        conn.execute("INSERT INTO batch_payloads VALUES ('whole', ?)", (packed,))
        conn.execute("UPDATE batches SET results = x'', payload = 'whole' WHERE batch_id = 'old'")
        conn.execute("DELETE FROM batches WHERE batch_id = 'pruned'")
        payloads.release_unnamed(conn)  # also old's list, which no batch names now
    assert read(store, "old") == rows[:200] and read(store, "a")[-1]["parameters"] == {"n": -1}
    store.close()
    return store


def last_block(store: Store, batch_id: str) -> str:
    with closing(sqlite3.connect(store.path)) as conn:
        (blocks,) = conn.execute(
            "SELECT l.blocks FROM batches AS b JOIN batch_lists AS l ON l.digest = b.payload WHERE b.batch_id = ?",
            (batch_id,),
        ).fetchone()
    block: str = json.loads(blocks)[-1]
    return block


def damage(store: Store, sql: str, *params: object) -> bytes:
    """Run ``sql`` on the closed store, as a fault or a bug would leave it; the store file's bytes after."""
    with closing(sqlite3.connect(store.path)) as conn, conn:
        conn.execute(sql, params)
    return store.path.read_bytes()


def test_store_check_passes_a_sound_store_and_counts_its_blocks(home: Path) -> None:
    store = sound_store(home)
    report = maintenance.check(store.path)
    assert report.problems == []
    assert report.counts["batch_payloads"] == count(store, "batch_payloads") > 10 and report.counts["batches"] == 4
    checked = run_cli(home, "store", "check")
    assert checked.returncode == 0 and f"{count(store, 'batch_payloads')} batch_payloads" in checked.stdout


def test_store_check_reports_a_deleted_block_and_changes_nothing(home: Path) -> None:
    store = sound_store(home)
    block = last_block(store, "a")  # what was appended to a: a block of a's list only
    damage(store, "DELETE FROM batch_payloads WHERE digest = ?", block)
    (problem,) = maintenance.check(store.path).problems
    assert problem.startswith("batch_lists row ") and problem.endswith(
        f": its block {block} is missing from batch_payloads (batch a reads as damaged)"
    )
    damaged = damage(store, "DELETE FROM batch_payloads WHERE digest = 'whole'")
    lost = "batches row old: its payload whole is missing from batch_payloads"
    assert maintenance.check(store.path).problems == [lost, problem]
    checked = run_cli(home, "store", "check")
    assert checked.returncode == 1 and f"damaged: {store.path}: {lost}" in checked.stdout
    assert store.path.read_bytes() == damaged, "check reports, never repairs"


@pytest.mark.parametrize(("change", "counted"), [(1, "counts 3 while batch_lists hold 2"),
                                                 (-1, "counts 1 while batch_lists hold 2"),
                                                 (None, "is missing while batch_lists hold 2")])  # fmt: skip
def test_store_check_reports_a_wrong_reference_count(home: Path, change: int | None, counted: str) -> None:
    store = sound_store(home)
    block = last_block(store, "twice")  # its list names it twice
    if change is None:
        damage(store, "DELETE FROM block_refs WHERE digest = ?", block)
    else:
        damage(store, "UPDATE block_refs SET refs = refs + ? WHERE digest = ?", change, block)
    assert maintenance.check(store.path).problems == [f"block_refs row {block} {counted} reference(s) to the block"]
    checked = run_cli(home, "store", "check")
    assert checked.returncode == 1 and f"block_refs row {block} {counted}" in checked.stdout


def payload_of(store: Store, batch_id: str) -> str:
    with closing(sqlite3.connect(store.path)) as conn:
        (payload,) = conn.execute("SELECT payload FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
    return str(payload)


def test_store_check_reports_a_list_that_is_not_an_array_and_checks_the_others(home: Path) -> None:
    store = sound_store(home)
    block = last_block(store, "twice")
    damage(store, "UPDATE batch_lists SET blocks = '{\"not\": 1' WHERE blocks LIKE ?", f'["{block}"%')
    assert maintenance.check(store.path).problems == [
        f"batch_lists row {payload_of(store, 'twice')}: its blocks are not a JSON array of digests",
        f"block_refs row {block} counts 2 while batch_lists hold 0 reference(s) to the block",
    ]
