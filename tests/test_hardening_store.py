"""Fault injection: a damaged store file (issue 14, item 7), damaged for real on disk: emptied, truncated,
replaced by garbage, a page overwritten. It is refused with a clear message and never re-created; the
``store check | backup | restore`` commands bring the jobs, files and batches back."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from http_support import thread_server
from support import run_cli

from dshpc_jupyter.domain.errors import StoreDamagedError
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.service.factory import open_engine


def _filled_home(home: Path, files: int = 300) -> dict[str, object]:
    """A home whose store spans many pages (files and a recorded batch), closed; what it holds."""
    engine = open_engine(home)
    try:
        hashes = [engine.upload_file(f"file number {i}\n".encode() * 3).file_hash for i in range(files)]
        batch = engine.simulate_jobs([{"file_hash": h, "method_name": "Unknown"} for h in hashes[:20]])
        return {"files": sorted(hashes), "batch": batch.batch_id}
    finally:
        engine.close()


def _damage(db: Path, how: str) -> None:
    data = db.read_bytes()
    if how == "emptied":
        db.write_bytes(b"")
    elif how == "truncated":
        db.write_bytes(data[: len(data) // 2 + 100])
    elif how == "garbage":
        db.write_bytes(b"\x8b not a database at all " * 400)
    else:  # one page of the files table overwritten (a page of the schema would make the store unopenable)
        with closing(sqlite3.connect(db)) as conn:
            (page,) = conn.execute(
                "SELECT max(pageno) FROM dbstat WHERE name = 'files' AND pagetype = 'leaf'"
            ).fetchone()
        start = (page - 1) * 4096
        db.write_bytes(data[:start] + b"\xa5" * 4096 + data[start + 4096 :])


@pytest.mark.parametrize("how", ["emptied", "truncated", "garbage"])
def test_a_damaged_file_is_refused_and_left_as_it_is(home: Path, how: str) -> None:
    _filled_home(home)
    db = Home.open(home).db_path
    _damage(db, how)
    damaged = db.read_bytes()
    with pytest.raises(StoreDamagedError, match="store check"):
        open_engine(home)
    served = run_cli(home, "serve", "--port", "0")
    assert served.returncode == 2 and served.stderr == "", served.stderr
    assert len(served.stdout.strip().splitlines()) == 1 and "refusing to open it or make a new one" in served.stdout
    assert db.read_bytes() == damaged
    checked = run_cli(home, "store", "check")
    assert checked.returncode == 1 and "damaged:" in checked.stdout
    assert db.read_bytes() == damaged
    db.unlink()  # so that the fixture's clean-up finds a usable home


def test_a_corrupted_page_makes_the_status_degraded_and_writes_503(home: Path) -> None:
    _filled_home(home)
    _damage(Home.open(home).db_path, "page")
    with thread_server(home) as url:
        status = httpx.get(f"{url}/services/status").json()
        assert status["status"] == "degraded" and status["jobs_db"]["status"] == "down"
        for read in ("/files", "/batches"):
            answer = httpx.get(url + read)
            assert answer.status_code in (200, 503), answer.text
            if answer.status_code == 503:
                assert "damaged" in answer.json()["detail"]
        body = {"content": "bmV3Cg==", "file_hash": "7aa7a5359173d05b63cfd682e3c38487f3cb4f7f1d60659fe59fab1505977d4c"}
        write = httpx.post(f"{url}/files/upload", json=body)
        assert write.status_code in (201, 503), write.text  # never a 500
    Home.open(home).db_path.unlink()


def test_backup_then_restore_brings_everything_back(home: Path, tmp_path: Path) -> None:
    held = _filled_home(home)
    backup = tmp_path / "backup.sqlite"
    made = run_cli(home, "store", "backup", str(backup))
    assert made.returncode == 0 and "ok:" in made.stdout and "300 files" in made.stdout
    assert run_cli(home, "store", "backup", str(backup)).returncode == 2  # never overwrites a file
    _damage(Home.open(home).db_path, "garbage")
    assert run_cli(home, "store", "check").returncode == 1
    restored = run_cli(home, "store", "restore", str(backup))
    assert restored.returncode == 0, restored.stdout
    assert "the old file is" in restored.stdout, restored.stdout
    assert list(Home.open(home).root.glob("store.sqlite.damaged-*"))
    engine = open_engine(home)
    try:
        assert sorted(f.file_hash for f in engine.list_files()) == held["files"]
        assert engine.batch(str(held["batch"])).total_jobs == 20
    finally:
        engine.close()
    assert run_cli(home, "store", "check").returncode == 0
