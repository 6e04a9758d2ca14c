"""Batch records (docs/design.md section 14.3): results stored once per content, so a call made again adds a small
row, not a copy; appends add blocks; a batch written inline before payloads is still read. The retention rule:
``dshpc-jupyter store prune`` deletes the batches created before a cutoff but for the most recent ones, never a
job, so the pruned configs are still answered from the cache; ``--vacuum`` gives the space back; bad options are
refused, naming the option."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from dshpc_jupyter import cli
from dshpc_jupyter.domain.errors import InvalidInputError, NotFoundError
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.retention import disk_size, prune_batches

DAY = 86400.0


def recorded_batches(engine: Engine, ages_in_days: list[float], configs: int = 200) -> list[str]:
    """One all-invalid batch (no job to run) per age, its creation time set that many days back."""
    hello = next(f.file_hash for f in engine.list_files() if f.filename == "hello.txt")
    ids = []
    for n, age in enumerate(ages_in_days):
        items = [{"file_hash": hello, "method_name": f"Unknown {n}", "parameters": {"i": i}} for i in range(configs)]
        batch_id = engine.simulate_jobs(items).batch_id
        assert batch_id is not None
        with sqlite3.connect(engine.store.path) as conn:
            conn.execute("UPDATE batches SET created_at = ? WHERE batch_id = ?", (time.time() - age * DAY, batch_id))
        ids.append(batch_id)
    return ids


def payload_count(engine: Engine) -> int:
    with sqlite3.connect(engine.store.path) as conn:
        return int(conn.execute("SELECT count(*) FROM batch_payloads").fetchone()[0])


def test_the_same_call_again_shares_its_results_and_appends_add_blocks_rewriting_none(engine: Engine) -> None:
    hello = next(f.file_hash for f in engine.list_files() if f.filename == "hello.txt")
    configs = [{"file_hash": hello, "method_name": "Unknown", "parameters": {"i": i}} for i in range(500)]
    first, second = engine.simulate_jobs(configs), engine.simulate_jobs(configs)
    assert first.batch_id != second.batch_id and payload_count(engine) == 1, "one copy of identical results"
    assert engine.batch(first.batch_id or "").results == engine.batch(second.batch_id or "").results
    engine.simulate_jobs(configs[:10], append_to=second.batch_id)
    assert payload_count(engine) == 2, "the first batch's block, shared, and the appended one"
    grown = engine.batch(second.batch_id or "")
    assert grown.total_jobs == 510 and [r.parameters for r in grown.results[-10:]] == [{"i": i} for i in range(10)]
    engine.simulate_jobs(configs[:1], append_to=second.batch_id)
    assert payload_count(engine) == 3, "an append adds its block and rewrites none"
    assert engine.batch(first.batch_id or "").total_jobs == 500
    assert [r.parameters for r in engine.batch(second.batch_id or "").results[-2:]] == [{"i": 9}, {"i": 0}]
    assert prune_batches(engine.store, older_than=time.time() + DAY).removed == 2 and payload_count(engine) == 0


def test_a_batch_recorded_inline_is_still_read(engine: Engine) -> None:
    hello = next(f.file_hash for f in engine.list_files() if f.filename == "hello.txt")
    response = engine.simulate_jobs([{"file_hash": hello, "method_name": "Unknown"}])
    with sqlite3.connect(engine.store.path) as conn:  # as a package before payloads wrote it
        conn.execute("UPDATE batches SET results = (SELECT results FROM batch_payloads), payload = NULL")
        conn.execute("DELETE FROM batch_payloads")
        conn.execute("DELETE FROM batch_lists")
        conn.execute("DELETE FROM block_refs")
    (result,) = engine.batch(response.batch_id or "").results
    assert (result.message, result.outcome) == ("Method 'Unknown' not found", "invalid")
    engine.simulate_jobs([{"file_hash": hello, "method_name": "Unknown"}], append_to=response.batch_id)
    assert engine.batch(response.batch_id or "").total_jobs == 2 and payload_count(engine) == 1, (
        "one block, named twice"
    )


def test_prune_deletes_old_batches_but_the_most_recent_and_never_a_job(engine: Engine) -> None:
    hello = next(f.file_hash for f in engine.list_files() if f.filename == "hello.txt")
    job = engine.simulate_jobs([{"file_hash": hello, "method_name": "Word Count (bash)"}])
    old = recorded_batches(engine, [40, 35, 31])
    recent = recorded_batches(engine, [2])
    report = prune_batches(engine.store, older_than=time.time() - 30 * DAY, keep=1)
    assert (report.removed, report.kept) == (3, 2)
    assert {b.batch_id for b in engine.batches()} == {job.batch_id, *recent}
    with pytest.raises(NotFoundError):
        engine.batch(old[0])
    again = engine.simulate_jobs([{"file_hash": hello, "method_name": "Word Count (bash)"}])
    assert again.results[0].job_id == job.results[0].job_id, "the job outlives the batch records"
    kept = prune_batches(engine.store, older_than=time.time() + DAY, keep=1)
    assert (kept.removed, kept.kept) == (2, 1), "keep: the most recent ones stay whatever their age"
    assert [b.batch_id for b in engine.batches()] == [again.batch_id]
    with pytest.raises(InvalidInputError, match="keep: must be 0 or more"):
        prune_batches(engine.store, older_than=time.time(), keep=-1)


def test_the_prune_command_and_vacuum(
    engine: Engine, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli.console, "width", 200)
    recorded_batches(engine, [100] * 10, configs=2000)
    engine.close()
    before = disk_size(home / "store.sqlite")
    code = cli.main(["--home", str(home), "store", "prune", "--older-than", "90", "--keep", "0", "--vacuum"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "pruned 10 batch record(s) older than 90 day(s), kept 0 (jobs are kept)" in out
    after = disk_size(home / "store.sqlite")
    assert after < before / 2, (before, after)
    for bad, message in ((["--older-than", "-1"], "--older-than: must be a number of days"),
                         (["--older-than", "nan"], "--older-than: must be a number of days"),
                         (["--older-than", "1", "--keep", "-3"], "--keep: must be 0 or more")):  # fmt: skip
        assert cli.main(["--home", str(home), "store", "prune", *bad]) == 2
        assert message in capsys.readouterr().out
