"""Batch results stored once per content (docs/design.md section 14.3).

A notebook cell run again sends the same configs and, once they are cached, gets the same answer: recorded
inline, each run added a copy of the results (2.5 MB per 10,000 configs). Instead the packed results are kept
in ``batch_payloads`` under their SHA-256, and a batch row names them (``payload``); rows written before this
keep their results inline and are still read. A payload no batch names any more is deleted with the last one.
"""

from __future__ import annotations

import hashlib
import sqlite3

from ..domain.errors import StoreDamagedError


def save(conn: sqlite3.Connection, packed: bytes) -> str:
    """Store packed results (once per content); their digest, for the batch row's ``payload``."""
    digest = hashlib.sha256(packed).hexdigest()
    conn.execute("INSERT OR IGNORE INTO batch_payloads (digest, results) VALUES (?, ?)", (digest, packed))
    return digest


def load(conn: sqlite3.Connection, inline: str | bytes, digest: str | None) -> bytes:
    """A batch row's packed results (inside a transaction, so the payload cannot go meanwhile)."""
    row = None if digest is None else conn.execute("SELECT results FROM batch_payloads WHERE digest = ?", (digest,))
    return resolve(inline, digest, None if row is None else (row.fetchone() or (None,))[0])


def resolve(inline: str | bytes, digest: str | None, stored: bytes | None) -> bytes:
    """The packed results of a batch row: its payload's (``stored``, read with it), or its own (a row written
    before payloads)."""
    if digest is None:
        return inline.encode() if isinstance(inline, str) else bytes(inline)
    if stored is None:
        raise StoreDamagedError(f"batch results {digest} are missing from the store: restore it from a backup")
    return bytes(stored)


def release(conn: sqlite3.Connection, digest: str | None) -> None:
    """Delete a payload once no batch names it (after a batch's results were replaced)."""
    if digest is not None:
        conn.execute(
            "DELETE FROM batch_payloads WHERE digest = ? AND NOT EXISTS (SELECT 1 FROM batches WHERE payload = ?)",
            (digest, digest),
        )


def release_unnamed(conn: sqlite3.Connection) -> int:
    """Delete every payload no batch names (after batches were pruned); how many."""
    return conn.execute(
        "DELETE FROM batch_payloads WHERE digest NOT IN (SELECT payload FROM batches WHERE payload IS NOT NULL)"
    ).rowcount
