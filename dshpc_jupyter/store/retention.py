"""The retention rule of recorded batches: ``dshpc-jupyter store prune`` (docs/design.md section 14.3).

A batch record is a convenience (a listing, a reopened table after a restart); the jobs are the cache. Without
a rule the batch rows grow with every call, all-cached ones included, so old ones are deleted: those created
before a cutoff, except the most recent ``keep``. Jobs are never deleted: a pruned batch's configs still find
their jobs, and submitting them again makes a new batch record, not new jobs.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..domain.errors import InvalidInputError
from . import payloads
from .maintenance import store_error
from .sqlite import Store, busy_timeout


@dataclass(frozen=True)
class PruneReport:
    """What a prune did: batches deleted and kept, and the store's size on disk before and after (bytes; it
    shrinks only with ``vacuum``: SQLite otherwise keeps the freed pages for its next writes)."""

    removed: int
    kept: int
    size_before: int
    size_after: int


def prune_batches(store: Store, *, older_than: float, keep: int = 0, vacuum: bool = False) -> PruneReport:
    """Delete the batches created before the unix time ``older_than``, but for the ``keep`` most recent ones;
    with ``vacuum``, give the freed space back to the filesystem (it rewrites the file: a moment's write lock
    per megabyte or so)."""
    if keep < 0:
        raise InvalidInputError(f"keep: must be 0 or more, got {keep}")
    size_before = disk_size(store.path)
    with store.write() as tx:
        removed = tx.connection.execute(
            "DELETE FROM batches WHERE created_at < ? AND batch_id NOT IN"
            " (SELECT batch_id FROM batches ORDER BY created_at DESC LIMIT ?)",
            (older_than, keep),
        ).rowcount
        payloads.release_unnamed(tx.connection)
        kept = tx.connection.execute("SELECT count(*) FROM batches").fetchone()[0]
    if vacuum:
        conn = sqlite3.connect(store.path, timeout=busy_timeout(), isolation_level=None)
        try:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise store_error(exc, store.path) or exc from None
        finally:
            conn.close()
    return PruneReport(removed, kept, size_before, disk_size(store.path))


def disk_size(path: Path) -> int:
    """Bytes of a store on disk: the file and its write-ahead log (recent writes live there until a checkpoint)."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
