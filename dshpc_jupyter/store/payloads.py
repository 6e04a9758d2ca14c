"""Batch results stored once per content, in blocks shared between batches (docs/design.md section 14.3).

A notebook cell run again sends the same configs; a sweep run again sends them with one more. Both get mostly
the same answer, so a batch's packed results are cut into blocks at points chosen by the content (after a
result whose job id ends in one of a few digits), each kept once in ``batch_payloads`` under its SHA-256, and
the batch names its blocks in order in ``batch_blocks``: a call that adds or changes one config stores the
one or two blocks around it, not a copy of every result. Cut points that depend only on each result's own job
id (not on its position) make an insertion anywhere shift no later block. A block is deleted with the last
batch that names it. Older rows keep reading: results inline (before schema step 7) or one whole payload named
by ``batches.payload`` (steps 7 to 12); such a batch is converted to blocks when it is next written.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..domain.errors import StoreDamagedError
from .rows import BATCH_COLUMNS, pack_results

#: What ``batches.results`` holds for a batch recorded in blocks (schema step 13): the version marker.
BLOCKS = b'{"format":2}'
#: A block ends after a result whose job id ends in one of these: 2 of 256, so about 128 results a block
#: (a block's change costs about 32 kB; smaller ones cost more in ``batch_blocks`` rows than they save).
_CUT_ENDINGS = frozenset({"00", "80"})
#: A block ends here regardless (results without job ids, or job ids not in hex, never cut otherwise).
MAX_BLOCK = 1024
#: One statement, so one snapshot, for a batch row with its blocks (or its whole payload) in order: a block
#: an append or a refusal replaces meanwhile is never read half-gone.
READ_SQL = (
    f"SELECT {', '.join('b.' + column for column in BATCH_COLUMNS.split(', '))},"  # noqa: S608 (no data in it)
    " b.results, b.payload, p.results, k.digest FROM batches AS b"
    " LEFT JOIN batch_blocks AS k ON k.batch = b.batch_id"
    " LEFT JOIN batch_payloads AS p ON p.digest = coalesce(k.digest, b.payload)"
    " WHERE b.batch_id = ? ORDER BY k.position"
)


def cut(results: Sequence[Mapping[str, Any]]) -> list[Sequence[Mapping[str, Any]]]:
    """``results`` in blocks (none empty): each ends at a content-chosen point or at ``MAX_BLOCK`` results."""
    blocks, start = [], 0
    for index, result in enumerate(results):
        if (result["job_id"] or "")[-2:] in _CUT_ENDINGS or index - start + 1 == MAX_BLOCK:
            blocks.append(results[start : index + 1])
            start = index + 1
    if start < len(results):
        blocks.append(results[start:])
    return blocks


def save(conn: sqlite3.Connection, packed: bytes) -> str:
    """Store one packed block (once per content); its digest."""
    digest = hashlib.sha256(packed).hexdigest()
    conn.execute("INSERT OR IGNORE INTO batch_payloads (digest, results) VALUES (?, ?)", (digest, packed))
    return digest


def add_blocks(conn: sqlite3.Connection, batch_id: str, results: Sequence[Mapping[str, Any]]) -> None:
    """Store ``results`` as blocks and name them after the batch's existing blocks, in order."""
    packed = [pack_results(block) for block in cut(results)]
    digests = [hashlib.sha256(block).hexdigest() for block in packed]
    conn.executemany(
        "INSERT OR IGNORE INTO batch_payloads (digest, results) VALUES (?, ?)", zip(digests, packed, strict=True)
    )
    (first,) = conn.execute(
        "SELECT coalesce(max(position) + 1, 0) FROM batch_blocks WHERE batch = ?", (batch_id,)
    ).fetchone()
    conn.executemany(
        "INSERT INTO batch_blocks (batch, position, digest) VALUES (?, ?, ?)",
        ((batch_id, first + n, digest) for n, digest in enumerate(digests)),
    )


def to_blocks(conn: sqlite3.Connection, batch_id: str, inline: str | bytes, digest: str | None) -> None:
    """Name an older batch row's results as its first block (before anything is appended to it): its whole
    payload as it is, or its inline results stored as one."""
    if inline == BLOCKS:
        return
    if digest is None:
        packed = inline.encode() if isinstance(inline, str) else bytes(inline)
        digest = None if packed.strip() == b"[]" else save(conn, packed)
    if digest is not None:
        conn.execute("INSERT INTO batch_blocks (batch, position, digest) VALUES (?, 0, ?)", (batch_id, digest))


def drop_blocks(conn: sqlite3.Connection, batch_id: str) -> list[str]:
    """Unname a batch's blocks (before its results are rewritten); their digests, for :func:`release`."""
    rows = conn.execute("DELETE FROM batch_blocks WHERE batch = ? RETURNING digest", (batch_id,)).fetchall()
    return [row[0] for row in rows]


def assemble(rows: Sequence[Sequence[Any]]) -> bytes:
    """A batch's packed results (one JSON array of rows) from the last four columns of its rows of
    ``READ_SQL``: its blocks' rows spliced, its whole payload, or its inline results (rows written before)."""
    rows = [row[-4:] for row in rows]
    inline, whole, stored, _ = rows[0]
    if inline != BLOCKS:
        if whole is None:
            return inline.encode() if isinstance(inline, str) else bytes(inline)
        if stored is None:
            raise StoreDamagedError(f"batch results {whole} are missing from the store: restore it from a backup")
        return bytes(stored)
    parts = []
    for _, _, block, digest in rows:
        if digest is None:  # a batch of no results has no blocks
            continue
        if block is None:
            raise StoreDamagedError(f"batch results {digest} are missing from the store: restore it from a backup")
        part = bytes(block).strip()[1:-1].strip()
        if part:  # a whole payload of no results, named as a block by :func:`to_blocks`
            parts.append(part)
    return b"[" + b",".join(parts) + b"]"


def release(conn: sqlite3.Connection, digests: Iterable[str | None]) -> None:
    """Delete the blocks (or whole payloads) among ``digests`` that no batch names any more."""
    conn.executemany(
        "DELETE FROM batch_payloads WHERE digest = ?1 AND NOT EXISTS (SELECT 1 FROM batches WHERE payload = ?1)"
        " AND NOT EXISTS (SELECT 1 FROM batch_blocks WHERE digest = ?1)",
        ((digest,) for digest in dict.fromkeys(digests) if digest is not None),
    )


def release_unnamed(conn: sqlite3.Connection) -> int:
    """Unname the blocks of deleted batches, and delete every block no batch names (after a prune); how many."""
    conn.execute("DELETE FROM batch_blocks WHERE batch NOT IN (SELECT batch_id FROM batches)")
    return conn.execute(
        "DELETE FROM batch_payloads WHERE digest NOT IN (SELECT payload FROM batches WHERE payload IS NOT NULL)"
        " AND digest NOT IN (SELECT digest FROM batch_blocks)"
    ).rowcount
