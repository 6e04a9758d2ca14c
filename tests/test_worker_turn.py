"""A local worker's turn in one store write (``Store.record_turn``, docs/design.md section 7.6): the starts,
the claims given back, the results and the next claims of all slots, on a real SQLite file; what a turn cannot
write it does not half-write, and a job cancelled while being started is said so."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.errors import StoreBusyError
from dshpc_jupyter.domain.models import MethodSpec
from dshpc_jupyter.store.sqlite import BUSY_TIMEOUT_ENV, JobUpdate, NewJob, Store


def new_job(n: int, priority: int = 0) -> NewJob:
    return NewJob(f"job-{n}", f"key-{n}", "f" * 64, "M", "h" * 64, "{}", time.time(), "local", priority=priority)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "store.sqlite")
    store.add_method("h" * 64, MethodSpec(name="M", command="bash", script_path="m.sh"))
    with store.write() as tx:
        tx.insert_jobs([new_job(0), new_job(1), new_job(2), new_job(3, priority=5), new_job(4)])
    yield store
    store.close()


def statuses(store: Store) -> dict[str, str]:
    return {job.job_id: job.status for job in store.list_jobs()}


def stamp(store: Store) -> int:
    return store.job_changes(None, 1)[0]


def test_a_turn_records_starts_results_requeues_and_claims_in_one_write(store: Store) -> None:
    first = store.claim_pending("local", 3)
    assert [job.job_id for job in first] == ["job-3", "job-0", "job-1"], "queue order: priority first"
    store.mark_running("job-3", "9:1", time.time())
    refused, claimed = store.record_turn(
        "local", [("job-0", "9:1", 10.0)], ["job-1"],
        [JobUpdate("job-3", st.COMPLETED, exit_code=0, output="{}", finished_at=11.0)], 2,
    )  # fmt: skip
    assert refused == []
    assert [job.job_id for job in claimed] == ["job-1", "job-2"], "the requeued claim keeps its place in the queue"
    assert statuses(store) == {"job-0": "R", "job-1": "CF", "job-2": "CF", "job-3": "CD", "job-4": "PD"}
    [running] = store.get_jobs(["job-0"])
    assert running.started_at is not None and (running.started_at.timestamp(), running.scheduler_id) == (10.0, "9:1")


def test_a_job_cancelled_while_it_was_started_is_refused_and_the_rest_of_the_turn_is_written(store: Store) -> None:
    store.claim_pending("local", 2)
    assert store.cancel_pending(["job-0"], "cancelled by the user") == ["job-0"]
    refused, claimed = store.record_turn("local", [("job-0", "9:1", 1.0), ("job-1", "9:1", 2.0)], [], [], 0)
    assert (refused, claimed) == (["job-0"], [])
    assert statuses(store)["job-0"] == st.CANCELLED and statuses(store)["job-1"] == st.RUNNING


def test_an_empty_turn_writes_nothing(store: Store) -> None:
    before = stamp(store)
    assert store.record_turn("local", [], [], [], 0) == ([], [])
    assert store.record_turn("local", [], [], [], -1) == ([], [])
    assert stamp(store) == before


def test_a_turn_that_cannot_take_the_write_lock_writes_none_of_it(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.claim_pending("local", 2)
    monkeypatch.setenv(BUSY_TIMEOUT_ENV, "0.2")
    blocked = Store(tmp_path / "store.sqlite")
    holder = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreBusyError):
            blocked.record_turn("local", [("job-0", "9:1", 1.0)], ["job-3"], [], 3)
        holder.execute("ROLLBACK")
        assert statuses(store) == {"job-0": "CF", "job-1": "PD", "job-2": "PD", "job-3": "CF", "job-4": "PD"}
        refused, claimed = blocked.record_turn("local", [("job-0", "9:1", 1.0)], ["job-3"], [], 3)
        assert refused == [] and [job.job_id for job in claimed] == ["job-3", "job-1", "job-2"], "the retry writes it"
        assert statuses(store)["job-0"] == st.RUNNING
    finally:
        holder.close()
        blocked.close()
