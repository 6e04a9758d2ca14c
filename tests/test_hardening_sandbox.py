"""Fault injection: a hostile method (issue 14, item 2). It tries to read the server's secrets from its
environment, to append to its own stored input, to rewrite the store and another job's output, to write outside
its workspace and into its frozen method copy; each attempt is reported by the method and checked from outside.
Run with bubblewrap where it works here, and with the no-sandbox fallback (a clean environment, and ``nobody``
when the runner is root)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import shutdown_home, wait_for_jobs, write_method

from dshpc_jupyter.schedulers import sandbox
from dshpc_jupyter.schedulers.sandbox import bubblewrap
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine

ATTACK = r"""
import json, os, sys
from pathlib import Path
workspace = Path(os.environ["JOB_WORKSPACE"])
home = workspace.parents[2]
def attempt(action):
    try:
        action()
        return "done"
    except Exception as exc:
        return type(exc).__name__
def append(path, text):
    with open(path, "a") as handle:
        handle.write(text)
def rewrite_store():
    import sqlite3
    with sqlite3.connect(home / "store.sqlite", timeout=1) as db:
        db.execute("UPDATE jobs SET output = 'forged'")
others = [p for p in (home / "jobs").glob("*/*") if p != workspace]
report = {
    "store_visible": (home / "store.sqlite").exists(),
    "other_workspaces": len(others),
    "secrets": sorted(k for k in os.environ if "SECRET" in k or "KEY" in k),
    "uid": os.getuid(),
    "input": attempt(lambda: append(sys.argv[1], "tampered\n")),
    "store": attempt(rewrite_store),
    "store_file": attempt(lambda: append(home / "store.sqlite", "x")),
    "other_workspace": attempt(lambda: append(others[0] / "result.json", "x")) if others else "none",
    "outside": attempt(lambda: append("/var/tmp/dshpc-escaped", "x")),
    "method_copy": attempt(lambda: append(os.environ["METHOD_DIR"] + "/main.py", "x")),
    "own_workspace": attempt(lambda: append(workspace / "scratch.txt", "x")),
}
print(json.dumps(report))
"""

MODES = ["bwrap", "none"]


@pytest.fixture
def open_home() -> Iterator[Path]:
    """A home that user nobody can reach (pytest's own temporary directories are private to root)."""
    root = Path(tempfile.mkdtemp(prefix="dshpc-sandbox-", dir="/tmp"))
    root.chmod(0o755)
    yield root / "home"
    if (root / "home").exists():
        shutdown_home(root / "home")
    shutil.rmtree(root, ignore_errors=True)


def _engine(home: Path, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, str]:
    if mode == "bwrap" and bubblewrap() is None:
        pytest.skip("bubblewrap cannot build a sandbox on this machine (no bwrap, or no user namespaces)")
    monkeypatch.setenv("DSHPC_SANDBOX", mode)
    monkeypatch.setenv("DSHPC_API_KEY", "the-server-key")
    monkeypatch.setenv("SERVER_SECRET", "do not leak")
    engine = open_engine(home, slots=1)
    command = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
    engine.register_method(write_method(tmp_path, "Attack", ATTACK, command=command))
    engine.register_method(write_method(tmp_path, "Honest", "print('{\"honest\": true}')\n"))
    return engine, engine.upload_file(b"the input\n").file_hash


@pytest.mark.parametrize("mode", MODES)
def test_a_hostile_method_changes_nothing_it_must_not(
    open_home: Path, tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("/var/tmp/dshpc-escaped").unlink(missing_ok=True)
    engine, file_hash = _engine(open_home, tmp_path, mode, monkeypatch)
    try:
        honest_id = str(engine.simulate_job({"file_hash": file_hash, "method_name": "Honest"}).job_id)
        (honest,) = wait_for_jobs(engine, [honest_id])
        store_before = [job.model_dump() for job in engine.list_jobs()]
        attack_id = str(engine.simulate_job({"file_hash": file_hash, "method_name": "Attack"}).job_id)
        (attack,) = wait_for_jobs(engine, [attack_id])
        if os.geteuid() == 0 and mode == "none" and attack.status == "F":
            assert "refusing to run the method as root" in (attack.error or "")  # nobody cannot reach a file
            return
        assert attack.status == "CD", attack.error
        report = json.loads(attack.output or "{}")
        assert report["secrets"] == []
        if os.geteuid() == 0:
            assert report["uid"] != 0
        for target in ("input", "store", "other_workspace", "method_copy"):
            assert report[target] != "done", (target, report)
        if mode == "bwrap":  # the home is an empty tmpfs in the sandbox: what is written there vanishes
            assert (report["store_visible"], report["other_workspaces"]) == (False, 0)
            assert report["outside"] != "done"
        else:
            assert report["store_file"] != "done" and report["other_workspaces"] == 1
        assert sqlite3.connect(engine.home.db_path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert report["own_workspace"] == "done"
        stored = engine.home.file_path(file_hash)
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == file_hash
        assert [job.model_dump() for job in engine.list_jobs() if job.job_id != attack_id] == store_before
        assert engine.get_job(honest_id).output == honest.output
    finally:
        engine.close()
        Path("/var/tmp/dshpc-escaped").unlink(missing_ok=True)


def test_a_stored_file_changed_behind_the_store_fails_its_job_and_is_flagged(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_engine(home, slots=1)
    try:
        engine.register_method(write_method(tmp_path, "Honest", "print('{\"honest\": true}')\n"))
        file_hash = engine.upload_file(b"original bytes\n").file_hash
        stored = engine.home.file_path(file_hash)
        assert stat.S_IMODE(stored.stat().st_mode) == 0o444
        stored.chmod(0o644)
        stored.write_bytes(b"tampered bytes\n")  # as someone with the server's rights could
        job_id = str(engine.simulate_job({"file_hash": file_hash, "method_name": "Honest"}).job_id)
        (job,) = wait_for_jobs(engine, [job_id])
        assert job.status == "F"
        assert f"input file {file_hash} no longer matches its hash" in (job.error or "")
        flag = stored.with_name(stored.name + ".mismatch")
        assert flag.read_text().strip() == hashlib.sha256(b"tampered bytes\n").hexdigest()
    finally:
        engine.close()
    with sqlite3.connect(f"file:{home / 'store.sqlite'}?mode=ro", uri=True) as db:
        assert db.execute("SELECT count(*) FROM files").fetchone()[0] == 1


def test_an_input_verified_once_is_read_again_only_when_it_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner of many jobs hashes an unchanged input once (a sweep over a 1 GiB file read it once per job);
    rewritten with the same size, its times put back, it is hashed again and found changed."""
    data = b"original bytes\n"
    stored = tmp_path / hashlib.sha256(data).hexdigest()
    stored.write_bytes(data)
    hashed: list[Path] = []
    real_digest = sandbox.sha256
    monkeypatch.setattr(sandbox, "sha256", lambda path: hashed.append(path) or real_digest(path))
    assert sandbox.input_mismatch(stored) is None
    assert sandbox.input_mismatch(stored) is None
    assert hashed == [stored], "an unchanged input is not read again"
    before = stored.stat()
    stored.write_bytes(b"tampered bytes\n")  # the same size
    os.utime(stored, ns=(before.st_atime_ns, before.st_mtime_ns))  # its mtime put back: the ctime still moves
    problem = sandbox.input_mismatch(stored)
    assert problem is not None and "no longer matches its hash" in problem
    assert hashed == [stored, stored]
