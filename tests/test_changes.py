"""Polling by change (docs/design.md section 14): every write of a job, whichever statement makes it, stamps it
with the next number of one store-wide counter; ``job_changes`` answers what changed after a cursor, on both
backends; a store from before the stamps is upgraded with its jobs stamped; a Batch's poller keeps only its
own jobs of the store's changes."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from store_versions import downgrade_to_2
from support import CountingBackend, wait_for_jobs
from test_backends_shared import BACKENDS, EXAMPLE, WORDS, open_connection

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.errors import InvalidInputError, NotFoundError
from dshpc_jupyter.domain.models import MAX_CHANGES_LIMIT, MAX_CURSOR, JobChanges, MethodSpec
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.front.batch import Batch
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.schema import SCHEMA_VERSION
from dshpc_jupyter.store.sqlite import JobUpdate, NewJob, Store


def new_job(n: int) -> NewJob:
    return NewJob(f"job-{n}", f"key-{n}", "f" * 64, "M", "h" * 64, "{}", time.time(), "local")


def stamps(store: Store) -> dict[str, int]:
    rows = store._conn().execute("SELECT job_id, change_seq FROM jobs")
    return dict(rows.fetchall())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "store.sqlite")
    store.add_method("h" * 64, MethodSpec(name="M", command="python3", script_path="main.py"))
    yield store
    store.close()


def test_every_kind_of_write_stamps_the_job_with_the_next_number(store: Store) -> None:
    assert store.job_changes(None, 10) == (0, [], False), "an empty store starts at cursor 0"
    with store.write() as tx:
        tx.insert_jobs(new_job(n) for n in range(3))
    assert stamps(store) == {"job-0": 1, "job-1": 2, "job-2": 3}, "inserts stamped in order, in one step"
    writes = [
        lambda: store.claim_pending("local", 1),                      # job-0: PD -> CF
        lambda: store.mark_running("job-0", "pid:1", time.time()),     # job-0: CF -> R
        lambda: store.set_scheduler_ids([("job-1", "1234_1")]),
        lambda: store.request_cancel(["job-1"]),
        lambda: store.cancel_pending(["job-2"], "test"),
        lambda: store.apply_updates([JobUpdate("job-0", st.COMPLETED, exit_code=0, output="{}")]),
        # a statement this package does not have yet (another feature's) is stamped by the trigger as well
        lambda: store._conn().execute("UPDATE jobs SET error = 'x' WHERE job_id = 'job-1'"),
    ]  # fmt: skip
    cursor = 3
    for number, write in enumerate(writes, 4):
        write()
        latest, records, more = store.job_changes(cursor, 10)
        assert (latest, more) == (number, False) and len(records) == 1, f"write {number} stamped one job once"
        cursor = latest
    assert store.job_changes(cursor, 10) == (cursor, [], False), "nothing changed: the same cursor, no records"
    assert store.job_changes(None, 10)[0] == cursor
    assert store.apply_updates([JobUpdate("job-0", st.FAILED)]) == 0, "a final job is not written..."
    assert store.job_changes(cursor, 10)[1] == [], "... so it is not stamped either"


def test_changes_come_oldest_first_in_pages_and_a_deleted_job_never_frees_its_stamp(store: Store) -> None:
    with store.write() as tx:
        tx.insert_jobs(new_job(n) for n in range(5))
    store.cancel_pending(["job-1"], "test")  # job-1 is now the latest change (6)
    cursor, page, more = store.job_changes(0, 2)
    assert (cursor, [r.job_id for r in page], more) == (3, ["job-0", "job-2"], True)
    cursor, page, more = store.job_changes(cursor, 2)
    assert (cursor, [r.job_id for r in page], more) == (5, ["job-3", "job-4"], True)
    cursor, page, more = store.job_changes(cursor, 2)
    assert (cursor, [(r.job_id, r.status) for r in page], more) == (6, [("job-1", st.CANCELLED)], False)
    store._conn().execute("DELETE FROM jobs WHERE job_id = 'job-1'")
    store.cancel_pending(["job-0"], "test")
    assert stamps(store)["job-0"] == 7, "the counter, not max(change_seq): a poller at 6 still sees it"
    assert [r.job_id for r in store.job_changes(6, 10)[1]] == ["job-0"]


def test_a_store_from_before_the_stamps_is_upgraded_with_every_job_stamped(engine: Engine) -> None:
    hello = next(f.file_hash for f in engine.list_files() if f.filename == "hello.txt")
    configs = [{"file_hash": hello, "method_name": WORDS, "parameters": {"unit": unit}} for unit in ("words", "lines")]
    ids = [r.job_id or "" for r in engine.simulate_jobs(configs).results]
    wait_for_jobs(engine, ids)
    path = engine.store.path
    engine.close()
    with sqlite3.connect(path) as conn:  # back to version 2, as the package before polling by change left it
        downgrade_to_2(conn)
        seqs = dict(conn.execute("SELECT job_id, seq FROM jobs").fetchall())
    engine = open_engine(path.parent)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert stamps(engine.store) == seqs, "each job stamped with its seq"
        cursor, records, more = engine.store.job_changes(0, 100)
        assert cursor == max(seqs.values()) and not more and {r.job_id for r in records} == set(seqs)
        assert engine.job_changes().cursor == cursor, "the counter starts above every stamp"
        engine.cancel(ids)  # finished jobs: nothing is written
        again = engine.simulate_jobs([{**configs[0], "parameters": {"unit": "bytes"}}]).results[0]
        assert [r.job_id for r in engine.job_changes(cursor).jobs][:1] == [again.job_id]
    finally:
        engine.close()


@pytest.fixture(params=BACKENDS)
def conn(request: pytest.FixtureRequest, home: Path) -> Iterator[Connection]:
    with ExitStack() as stack:
        yield open_connection(request.param, home, stack)


def test_job_changes_on_both_backends(conn: Connection) -> None:
    hello = next(f.file_hash for f in conn.list_files() if f.filename == "hello.txt")
    start = conn.job_changes()
    assert (start.jobs, start.more) == ([], False)
    response = conn.simulate_jobs([{"file_hash": hello, "method_name": EXAMPLE, "parameters": {"uppercase": u}}
                                   for u in (False, True)])  # fmt: skip
    ids = [r.job_id for r in response.results]
    first = conn.job_changes(start.cursor, limit=1)
    assert ([j.job_id for j in first.jobs], first.more) == (ids[:1], True), "oldest change first, one page"
    assert first.cursor > start.cursor
    wait_for_jobs(conn, ids)  # type: ignore[arg-type]
    cursor, seen = first.cursor, {}
    for _ in range(20):  # bounded: each answer moves the cursor on
        page = conn.job_changes(cursor, limit=2)
        seen.update((j.job_id, j.status) for j in page.jobs)
        cursor = page.cursor
        if not page.more:
            break
    assert seen == dict.fromkeys(ids, st.COMPLETED), "every job's latest record, once ended"
    assert conn.job_changes(cursor).jobs == [] and conn.job_changes(cursor).cursor == cursor
    for since in (-1, MAX_CURSOR + 1):  # past SQLite's 64 bits: refused, not an overflow (a 500 the fuzzer found)
        with pytest.raises(InvalidInputError, match="since"):
            conn.job_changes(since)
    for limit in (0, MAX_CHANGES_LIMIT + 1):
        with pytest.raises(InvalidInputError, match="limit"):
            conn.job_changes(cursor, limit=limit)


def test_a_batch_keeps_only_its_own_jobs_of_the_stores_changes(conn: Connection) -> None:
    hello = next(f.file_hash for f in conn.list_files() if f.filename == "hello.txt")
    batch = Batch.submit([{"file_hash": hello, "method_name": EXAMPLE}], connection=conn, poll=0.05)
    other = conn.simulate_jobs([{"file_hash": hello, "method_name": WORDS}]).results[0].job_id
    batch.wait(60)
    assert batch.poller.cursor is not None, "the batch was followed by change"
    assert [r.job.job_id for r in batch.rows() if r.job] == [batch.df["job_id"][0]]
    assert other not in batch.state._jobs


class OlderServer(CountingBackend):
    """A service from before polling by change: ``/jobs/changes`` is a 404."""

    async def job_changes(self, since: int | None = None, limit: int = 10_000) -> JobChanges:
        self.calls["job_changes"] += 1
        raise NotFoundError("Not Found")


def test_a_service_without_job_changes_is_polled_the_old_way(home: Path) -> None:
    engine = open_engine(home)
    engine.register_method(methods_dir())
    hello = engine.upload_file(next(p for p in data_files() if p.name == "hello.txt")).file_hash
    backend = OlderServer(EmbeddedBackend(engine))
    connection = Connection(backend)
    try:
        configs = [{"file_hash": hello, "method_name": EXAMPLE, "parameters": {"uppercase": u}} for u in (False, True)]
        batch = Batch.submit(configs, connection=connection, poll=0.05).wait(60)
        assert batch.df["state"].tolist() == ["completed", "completed"] and batch.last_error is None
        assert backend.calls["job_changes"] == 1, "asked once, then never again"
        assert backend.calls["job_statuses"] >= 1 and batch.poller.cursor is None
    finally:
        connection.close()
