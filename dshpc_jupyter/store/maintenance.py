"""A store file's health, and its backup and restore through SQLite's online backup API: what
``dshpc-jupyter store check | backup | restore`` run, and what :class:`.sqlite.Store` checks before opening.

A damaged store is refused, never replaced: an empty, truncated or foreign file gives :class:`StoreDamagedError`
naming the file and the way back, so no job, method or batch is forgotten without someone deciding it.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from ..domain.errors import DiskFullError, DshpcError, StoreBusyError, StoreDamagedError
from . import payloads

SQLITE_HEADER = b"SQLite format 3\x00"
RECOVERY = (
    "check it with `dshpc-jupyter store check`, and restore a backup with `dshpc-jupyter store restore BACKUP` "
    "(the damaged file is kept beside it)"
)
_BUSY_CODES = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_DAMAGE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
#: Problems reported of each kind (SQLite's own, and each of :func:`.payloads.problems`).
_MAX_PROBLEMS = 20
#: The tables whose rows a sound store's report counts (those its schema version has): what was checked.
_COUNTED = ("files", "methods", "jobs", "batches", "batch_payloads")
#: How long an empty file may stay empty while another process is creating the store in it.
_CREATION_GRACE_S = 2.0


def file_problem(path: Path) -> str | None:
    """What is wrong with the store file at ``path`` that SQLite would not say on opening it (it takes an empty
    file for a new database): empty, not a SQLite file, shorter than its header says. None when sound or absent."""
    deadline = time.monotonic() + _CREATION_GRACE_S
    while True:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        if size > 0:
            break
        if time.monotonic() > deadline:
            return "the file is empty (0 bytes): the store that was there has been emptied"
        time.sleep(0.05)
    with path.open("rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        return f"the file is not a SQLite database ({size} bytes of something else)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    header_valid = header[24:28] == header[92:96]
    if header_valid and size < pages * page_size:
        return f"the file is truncated ({size} bytes; its header says {pages * page_size})"
    return None


def store_error(exc: sqlite3.Error, path: Path) -> DshpcError | None:
    """The error of this package's family that a SQLite error means, or None when it is not one we name."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in _BUSY_CODES:
        return StoreBusyError(
            f"store {path}: another process holds the write lock; nothing was written: try again shortly"
        )
    if code == sqlite3.SQLITE_FULL:
        return DiskFullError(f"no space left on the disk holding the store {path}: free some space there")
    if code in _DAMAGE_CODES:
        return StoreDamagedError(f"store {path} is damaged ({exc}): {RECOVERY}")
    return None


@dataclass(frozen=True)
class CheckReport:
    """What ``store check`` found: ``problems`` is empty for a sound store."""

    path: Path
    problems: list[str]
    schema_version: int | None
    counts: dict[str, int]


def check(path: Path) -> CheckReport:
    """SQLite's full ``integrity_check`` of a store, then the batch results' shared blocks and their counts
    (:func:`.payloads.problems`, which SQLite cannot see), read-only (it never creates or upgrades one)."""
    if not path.exists():
        return CheckReport(path, [f"{path} does not exist"], None, {})
    problem = file_problem(path)
    if problem is not None:
        return CheckReport(path, [problem], None, {})
    try:
        with closing(_read_only(path)) as conn:
            problems = [row[0] for row in conn.execute(f"PRAGMA integrity_check({_MAX_PROBLEMS})") if row[0] != "ok"]
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            counts = {}
            if not problems:
                problems = payloads.problems(conn, _MAX_PROBLEMS)
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                for table in [table for table in _COUNTED if table in tables]:
                    counts[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
    except sqlite3.Error as exc:
        return CheckReport(path, [f"SQLite: {exc}"], None, {})
    return CheckReport(path, problems, version, counts)


def backup(source: Path, target: Path) -> CheckReport:
    """Copy the store ``source`` into the new file ``target`` with SQLite's online backup API (consistent while
    other processes use the store), then check the copy."""
    if target.exists():
        raise StoreDamagedError(f"backup: {target} already exists; give a new file name")
    problem = file_problem(source)
    if problem is not None:
        raise StoreDamagedError(f"backup: store {source}: {problem}; restore an earlier backup instead")
    try:
        with closing(_read_only(source)) as conn:
            _copy(conn, target)
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise StoreDamagedError(f"backup: cannot copy {source} ({exc}): {RECOVERY}") from None
    return check(target)


def restore(backup_file: Path, store: Path) -> Path | None:
    """Put a checked backup in place of the store, moving the current store file (and its WAL) aside rather
    than deleting it; the name it was moved to, or None when there was none. Stop the server and worker first."""
    report = check(backup_file)
    if report.problems:
        raise StoreDamagedError(f"restore: backup {backup_file} is not sound: {report.problems[0]}")
    kept = store.with_name(f"{store.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}") if store.exists() else None
    staged = store.with_name(f"{store.name}.restoring")
    staged.unlink(missing_ok=True)
    with closing(_read_only(backup_file)) as conn:
        _copy(conn, staged)
    for suffix in ("", "-wal", "-shm"):
        current = store.with_name(store.name + suffix)
        if current.exists() and kept is not None:
            current.rename(kept.with_name(kept.name + suffix))
    staged.replace(store)
    return kept


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)


def _copy(conn: sqlite3.Connection, target: Path) -> None:
    destination = sqlite3.connect(target)
    try:
        conn.backup(destination)
    finally:
        destination.close()
