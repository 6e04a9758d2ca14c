"""While tiny jobs end, the local worker keeps one job claimed ahead per slot, its task ready, and hands it to the
first slot runner that frees before it writes the store (docs/design.md section 7.6, ``local_worker.READY_S``).
What that must not change: a job queued since with a higher priority starts before the jobs kept ready, and a
claimed job not started yet still counts as where the queue is, so a new batch's head start is what it was."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for_jobs, write_method

from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.models import MethodSpec
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store import queue
from dshpc_jupyter.store.sqlite import NewJob, Store


@pytest.fixture
def one_slot(home: Path, tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(home, slots=1)
    spec = [{"name": "i", "type": "integer"}]
    engine.register_method(
        write_method(tmp_path / "m", "Tiny", "true\n", parameters=spec, command="bash", script_path="m.sh")
    )
    yield engine
    engine.close()


def sweep(engine: Engine, count: int, priority: int = 0, offset: int = 0) -> list[str]:
    configs = [{"method_name": "Tiny", "parameters": {"i": offset + i}} for i in range(count)]
    return [r.job_id or "" for r in engine.simulate_jobs(configs, priority=priority).results]


def test_a_tiny_sweep_keeps_a_job_ready_and_a_later_urgent_job_starts_before_it(one_slot: Engine) -> None:
    jobs = sweep(one_slot, 1500)
    db = sqlite3.connect(f"file:{one_slot.home.db_path}?mode=ro", uri=True, isolation_level=None)
    seen_ready, deadline = False, time.monotonic() + 60
    while not seen_ready and time.monotonic() < deadline:  # one slot: a job claimed while another runs is ready
        counts = dict(db.execute("SELECT status, count(*) FROM jobs WHERE status IN ('R', 'CF') GROUP BY status"))
        seen_ready = counts.get(st.RUNNING, 0) == 1 and counts.get(st.STARTING, 0) == 1
        time.sleep(0.001)
    db.close()
    assert seen_ready, "no job was kept ready while the slot ran one"
    overtaken = 0
    for n in range(5):  # each urgent job queued while the sweep runs, a job of it kept ready
        [urgent] = sweep(one_slot, 1, priority=5, offset=10_000 + n)
        [record] = wait_for_jobs(one_slot, [urgent], timeout=60)
        assert record.started_at is not None
        starts = [r.started_at for r in one_slot.job_statuses(jobs) if r.started_at is not None]
        overtaken += any(record.created_at < s < record.started_at for s in starts)
    assert any(r.status == st.PENDING for r in one_slot.job_statuses(jobs)), "the sweep ended too soon to tell"
    # The job kept ready goes back to the queue when the urgent one is queued; it still starts first when the
    # slot frees at the very moment of the wake-up (then it was handed already), so once or twice in five.
    assert overtaken <= 2, f"{overtaken} of 5 urgent jobs started after a job of the sweep kept ready"
    one_slot.cancel(jobs)
    wait_for_jobs(one_slot, jobs, timeout=60)


def test_a_claimed_job_not_started_is_where_the_queue_is(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.sqlite")
    store.add_method("h" * 64, MethodSpec(name="M", command="bash", script_path="m.sh"))

    def job(n: int, group: str) -> NewJob:
        return NewJob(f"{group}{n}", f"k-{group}{n}", "f" * 64, "M", "h" * 64, "{}", time.time(), "local",
                      queue_group=group)  # fmt: skip

    with store.write() as tx:
        tx.insert_jobs([job(n, "old") for n in range(5)])
    [ready] = store.claim_pending("local", 1)  # kept ready by a worker: STARTING, not started
    with store.write() as tx:
        tx.insert_jobs([job(0, "new")])
    ranks = dict(store._conn().execute("SELECT job_id, queue_rank FROM jobs"))
    store.close()
    assert ranks["new0"] == ranks[ready.job_id] - queue.HEAD_START, "the claimed job is the current turn"


def test_tiny_jobs_started_and_ended_in_one_turn_still_say_who_ran_them_and_when(one_slot: Engine) -> None:
    """Their start is written with their end, by the result alone (``START_WRITE_S``): the runner that ran each
    one and its method's start are recorded all the same."""
    jobs = sweep(one_slot, 60)
    records = wait_for_jobs(one_slot, jobs, timeout=60)
    assert {r.status for r in records} == {st.COMPLETED}
    for record in records:
        assert record.scheduler_id and ":" in record.scheduler_id, record
        assert record.started_at is not None and record.finished_at is not None
        assert record.created_at <= record.started_at <= record.finished_at
