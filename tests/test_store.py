"""The SQLite store: schema version, several Store objects (threads, processes) on one file, its guarantees."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import wait_for_jobs, wait_until

from dshpc_jupyter.domain.errors import StoreVersionError
from dshpc_jupyter.domain.hashing import sha256_bytes
from dshpc_jupyter.domain.models import BatchStatistics, FileInfo
from dshpc_jupyter.schedulers.local import worker_pid
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.sqlite import SCHEMA_VERSION, JobUpdate, NewJob, Store

CHILD = str(Path(__file__).with_name("child_programs.py"))


def _file(name: str) -> FileInfo:
    content = name.encode()
    return FileInfo(
        file_hash=sha256_bytes(content), filename=name, file_size=len(content), upload_date=datetime.now(UTC)
    )


def test_new_store_has_schema_version_and_wal(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.close()
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    Store(tmp_path / "s.sqlite").close()  # reopening an up-to-date store changes nothing


def test_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "home" / "store.sqlite"
    open_engine(tmp_path / "home").close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    expected = f"has schema version {SCHEMA_VERSION + 1}; this dshpc_jupyter reads up to {SCHEMA_VERSION}: upgrade"
    with pytest.raises(StoreVersionError, match=expected):
        Store(path)
    with pytest.raises(StoreVersionError, match=str(path)):
        open_engine(tmp_path / "home")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1, "left untouched"


def test_two_stores_on_one_file_from_two_threads(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    first, second = Store(path), Store(path)
    inside, written = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def hold_the_write_lock() -> None:
        try:
            with first.write() as tx:
                tx.insert_batch("held", time.time(), BatchStatistics(), [])
                inside.set()
                time.sleep(0.5)
        except BaseException as exc:
            errors.append(exc)

    def write_meanwhile() -> None:
        try:
            inside.wait(10)
            second.add_file(_file("waited"))  # waits for the lock (busy timeout) instead of failing
            written.set()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hold_the_write_lock), threading.Thread(target=write_meanwhile)]
    for thread in threads:
        thread.start()
    assert inside.wait(10)
    assert second.list_batches() == [], "a reader sees only committed data and is not blocked"
    for thread in threads:
        thread.join(20)
    assert errors == [] and written.is_set()
    for store in (first, second):
        assert [b.batch_id for b in store.list_batches()] == ["held"]
        assert [f.filename for f in store.list_files()] == ["waited"]
    first.close()
    second.close()


def test_one_store_used_by_many_threads(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    errors: list[BaseException] = []

    def add(start: int) -> None:
        try:
            for i in range(start, start + 25):
                store.add_file(_file(f"file-{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n * 25,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert len(store.list_files()) == 100
    store.close()


def test_processes_creating_one_store_at_once(tmp_path: Path) -> None:
    path, go = tmp_path / "fresh.sqlite", tmp_path / "go"
    children = [
        subprocess.Popen(
            [sys.executable, CHILD, "store", str(path), str(go), f"p{i}"], stderr=subprocess.PIPE, text=True
        )
        for i in range(6)
    ]
    time.sleep(0.5)  # let them start and wait for the signal
    go.touch()
    try:
        errors = [child.communicate(timeout=60)[1] for child in children]
    finally:
        for child in children:
            child.kill()
            child.wait()
    assert [child.returncode for child in children] == [0] * 6, errors
    store = Store(path)
    assert sorted(f.filename or "" for f in store.list_files()) == [f"p{i}" for i in range(6)]
    store.close()


def test_dry_run_is_not_blocked_by_a_writer(engine: Engine, example_hashes: dict[str, str]) -> None:
    other = Store(engine.home.db_path)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with other.write():
            inside.set()
            release.wait(20)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert inside.wait(10)
        started = time.monotonic()
        dry = engine.simulate_jobs(
            [{"file_hash": example_hashes["poem.txt"], "method_name": "Word Count (bash)"}], dry_run=True
        )
        assert dry.results[0].outcome == "new"
        assert time.monotonic() - started < 5, "a dry run only reads"
    finally:
        release.set()
        thread.join(20)
        other.close()


def test_finished_jobs_never_change_and_one_live_job_per_key(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    job = NewJob("j1", "key", "f" * 64, "M", "h" * 64, "{}", time.time(), "local")
    with store.write() as tx:
        tx.insert_jobs([job])
    with pytest.raises(sqlite3.IntegrityError), store.write() as tx:
        tx.insert_jobs([NewJob("j2", "key", "f" * 64, "M", "h" * 64, "{}", time.time(), "local")])
    assert [j.job_id for j in store.get_jobs(["j1", "j2"])] == ["j1"], "the failed insert was rolled back"

    assert store.apply_updates([JobUpdate("j1", "CD", exit_code=0, output="out")]) == 1
    assert store.apply_updates([JobUpdate("j1", "NF", error="late report")]) == 0
    [record] = store.get_jobs(["j1"])
    assert (record.status, record.output, record.error) == ("CD", "out", None)
    assert store.cancel_pending(["j1"], "too late") == []
    assert store.request_cancel(["j1"]) == []
    with pytest.raises(sqlite3.IntegrityError), store.write() as tx:
        tx.insert_jobs([NewJob("j3", "key", "f" * 64, "M", "h" * 64, "{}", time.time(), "local")])
    store.close()


def test_latest_job_of_a_key_is_the_most_recent(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    for n in range(3):
        with store.write() as tx:
            tx.insert_jobs([NewJob(f"j{n}", "key", "f" * 64, "M", "h" * 64, "{}", time.time(), "local")])
        store.apply_updates([JobUpdate(f"j{n}", "F" if n < 2 else "R")])
    with store.read() as tx:
        latest = tx.latest_jobs(["key", "other"])
    assert list(latest) == ["key"] and (latest["key"].job_id, latest["key"].status) == ("j2", "R")
    store.close()


def test_engines_on_one_home_share_its_worker(engine: Engine, example_hashes: dict[str, str]) -> None:
    """A second engine on the same home uses the same worker (one per home)."""
    first = engine.simulate_jobs([{"file_hash": example_hashes["hello.txt"], "method_name": "Word Count (bash)"}])
    wait_until(lambda: worker_pid(engine.home) is not None, 20, "a worker")
    pid = worker_pid(engine.home)
    other = open_engine(engine.home.root)
    try:
        second = other.simulate_jobs(
            [
                {
                    "file_hash": example_hashes["poem.txt"],
                    "method_name": "Word Count (bash)",
                    "parameters": {"unit": "lines"},
                }
            ]
        )
        records = wait_for_jobs(other, [first.results[0].job_id or "", second.results[0].job_id or ""])
        assert [r.status for r in records] == ["CD", "CD"]
        assert worker_pid(engine.home) == pid
    finally:
        other.close()
