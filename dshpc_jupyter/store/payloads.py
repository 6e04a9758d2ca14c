"""Batch results stored once per content, in blocks shared between batches (docs/design.md section 14.3).

A notebook cell run again sends the same configs; a sweep run again sends them with one more. Both get mostly the
same answer, so a batch's packed results are cut into blocks at points chosen by the content (after a result whose
job id ends in one of a few digits), each kept once in ``batch_payloads`` under its SHA-256, and the ordered list
of their digests is itself stored once per content (``batch_lists``, one JSON array under its own digest, which
the batch row names as its ``payload``). A call made again adds a batch row and nothing else; a call that adds or
changes one config stores the one or two blocks around it and a new list of about 5 kB, not a copy of every
result. Cut points that depend only on each result's own job id (not on its position) make an insertion anywhere
shift no later block. A list is deleted with the last batch that names it; ``block_refs`` counts the lists naming
each block, and a block is deleted when none does (nor, for a whole payload of an older row, a batch). Older rows
keep reading: results inline (before schema step 7) or one whole payload named by ``batches.payload`` (steps 7 to
12); such a batch is converted to blocks when it is next written.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import orjson

from ..domain.errors import StoreDamagedError
from .rows import BATCH_COLUMNS, pack_results

#: What ``batches.results`` holds for a batch recorded in blocks (schema step 13): the version marker.
BLOCKS = b'{"format":2}'
#: A block ends after a result whose job id ends in one of these: 2 of 256, so about 128 results a block
#: (a changed block costs about 30 kB; smaller ones make every list longer).
_CUT_ENDINGS = frozenset({"00", "80"})
#: A block ends here regardless (results without job ids, or job ids not in hex, never cut otherwise).
MAX_BLOCK = 1024
_JOB_ID = itemgetter("job_id")
#: One statement, so one snapshot, for a batch row with its blocks (or its whole payload) in order: a block
#: an append or a refusal replaces meanwhile is never read half-gone.
READ_SQL = (
    f"SELECT {', '.join('b.' + column for column in BATCH_COLUMNS.split(', '))},"  # noqa: S608 (no data in it)
    " b.results, b.payload, l.digest, p.results, j.value FROM batches AS b"
    " LEFT JOIN batch_lists AS l ON l.digest = b.payload AND b.results = ?2 LEFT JOIN json_each(l.blocks) AS j"
    " LEFT JOIN batch_payloads AS p ON p.digest = coalesce(j.value, b.payload)"
    " WHERE b.batch_id = ?1 ORDER BY j.key"
)


def cut(results: Sequence[Mapping[str, Any]]) -> list[Sequence[Mapping[str, Any]]]:
    """``results`` in blocks (none empty): each ends at a content-chosen point or at ``MAX_BLOCK`` results.

    One pass that only finds the cut points (a C-level ``map`` over the job ids): this runs on every call,
    all-cached ones included, so it costs about 0.1 us a result."""
    ends = [n + 1 for n, job_id in enumerate(map(_JOB_ID, results)) if job_id and job_id[-2:] in _CUT_ENDINGS]
    ends.append(len(results))
    blocks, start = [], 0
    for end in ends:
        while end - start > MAX_BLOCK:
            blocks.append(results[start : start + MAX_BLOCK])
            start += MAX_BLOCK
        if end > start:
            blocks.append(results[start:end])
            start = end
    return blocks


def save(conn: sqlite3.Connection, packed: bytes) -> str:
    """Store one packed block (once per content); its digest."""
    digest = hashlib.sha256(packed).hexdigest()
    conn.execute("INSERT OR IGNORE INTO batch_payloads (digest, results) VALUES (?, ?)", (digest, packed))
    return digest


def add_blocks(conn: sqlite3.Connection, before: Sequence[str], results: Sequence[Mapping[str, Any]]) -> str:
    """Store ``results`` as blocks after the blocks ``before``; the digest of the whole list, which the batch
    row names as its ``payload``."""
    packed = [pack_results(block) for block in cut(results)]
    digests = [hashlib.sha256(block).hexdigest() for block in packed]
    conn.executemany(
        "INSERT OR IGNORE INTO batch_payloads (digest, results) VALUES (?, ?)", zip(digests, packed, strict=True)
    )
    listed = [*before, *digests]
    text = orjson.dumps(listed).decode()  # text: SQLite reads a blob given to ``json_each`` as its binary JSONB
    manifest = hashlib.sha256(b"blocks" + text.encode()).hexdigest()
    if conn.execute("INSERT OR IGNORE INTO batch_lists (digest, blocks) VALUES (?, ?)", (manifest, text)).rowcount:
        conn.executemany(  # a new list: each block it names (as often as it names it) gains a reference
            "INSERT INTO block_refs (digest, refs) VALUES (?, 1) ON CONFLICT (digest) DO UPDATE SET refs = refs + 1",
            ((digest,) for digest in listed),
        )
    return manifest


def blocks_of(conn: sqlite3.Connection, inline: str | bytes, digest: str | None) -> list[str]:
    """A batch row's blocks, before results are appended to it: its list's, or for an older row its whole
    payload as one block, or its inline results stored as one."""
    if inline == BLOCKS:
        row = conn.execute("SELECT blocks FROM batch_lists WHERE digest = ?", (digest,)).fetchone()
        if row is None:
            raise StoreDamagedError(f"batch results {digest} are missing from the store: restore it from a backup")
        listed: list[str] = orjson.loads(row[0])
        return listed
    if digest is not None:
        return [digest]
    packed = inline.encode() if isinstance(inline, str) else bytes(inline)
    return [] if packed.strip() == b"[]" else [save(conn, packed)]


def assemble(rows: Sequence[Sequence[Any]]) -> bytes:
    """A batch's packed results (one JSON array of rows) from the last five columns of its rows of
    ``READ_SQL``: its blocks' rows spliced, its whole payload, or its inline results (rows written before)."""
    rows = [row[-5:] for row in rows]
    inline, whole, listed, stored, _ = rows[0]
    if inline == BLOCKS and listed is None:
        raise StoreDamagedError(f"batch results {whole} are missing from the store: restore it from a backup")
    if inline != BLOCKS:
        if whole is None:
            return inline.encode() if isinstance(inline, str) else bytes(inline)
        if stored is None:
            raise StoreDamagedError(f"batch results {whole} are missing from the store: restore it from a backup")
        return bytes(stored)
    parts = []
    for _, _, _, block, digest in rows:
        if digest is None:  # a batch of no results has no blocks
            continue
        if block is None:
            raise StoreDamagedError(f"batch results {digest} are missing from the store: restore it from a backup")
        part = bytes(block).strip()[1:-1].strip()
        if part:  # a whole payload of no results, named as a block by :func:`blocks_of`
            parts.append(part)
    return b"[" + b",".join(parts) + b"]"


def release(conn: sqlite3.Connection, digest: str | None) -> None:
    """Delete a batch's former payload (a list of blocks, or a whole older payload) once no batch names it,
    with the blocks no list names any more."""
    if digest is None or conn.execute("SELECT 1 FROM batches WHERE payload = ?", (digest,)).fetchone():
        return
    lists = conn.execute("DELETE FROM batch_lists WHERE digest = ? RETURNING blocks", (digest,)).fetchall()
    _unlist(conn, [row[0] for row in lists], [digest])


def release_unnamed(conn: sqlite3.Connection) -> None:
    """Delete the lists no batch names, and every block no list or batch names (after a prune)."""
    lists = conn.execute(
        "DELETE FROM batch_lists WHERE digest NOT IN (SELECT payload FROM batches WHERE payload IS NOT NULL)"
        " RETURNING blocks"
    ).fetchall()
    _unlist(conn, [row[0] for row in lists], [])
    conn.execute(
        "DELETE FROM batch_payloads WHERE digest NOT IN (SELECT payload FROM batches WHERE payload IS NOT NULL)"
        " AND digest NOT IN (SELECT digest FROM block_refs)"
    )


def _unlist(conn: sqlite3.Connection, lists: Sequence[str | bytes], payloads: Sequence[str]) -> None:
    """Take back the references of deleted lists, then delete the blocks (and the whole ``payloads``) that
    neither a list nor a batch names."""
    blocks: list[str] = [digest for text in lists for digest in orjson.loads(text)]
    conn.executemany("UPDATE block_refs SET refs = refs - 1 WHERE digest = ?", ((digest,) for digest in blocks))
    candidates = [(digest,) for digest in dict.fromkeys([*payloads, *blocks])]
    conn.executemany("DELETE FROM block_refs WHERE digest = ? AND refs <= 0", candidates)
    conn.executemany(
        "DELETE FROM batch_payloads WHERE digest = ?1 AND NOT EXISTS (SELECT 1 FROM batches WHERE payload = ?1)"
        " AND NOT EXISTS (SELECT 1 FROM block_refs WHERE digest = ?1)",
        candidates,
    )


#: Each list's block digests, a row per entry (a list that is not a JSON array gives none: reported apart).
_LISTED = (
    "batch_lists AS l, json_each(CASE WHEN json_valid(l.blocks) THEN CASE json_type(l.blocks) WHEN 'array'"
    " THEN l.blocks END END) AS j"
)
#: Batch rows whose list (or, for an older row, whole payload) is gone. ?1: the version marker, ?2: a limit.
_LOST_PAYLOADS = (
    "SELECT batch_id, results = ?1, payload FROM batches WHERE CASE WHEN results = ?1"
    " THEN NOT EXISTS (SELECT 1 FROM batch_lists WHERE digest = payload)"
    " ELSE payload IS NOT NULL AND NOT EXISTS (SELECT 1 FROM batch_payloads WHERE digest = payload) END LIMIT ?2"
)
_MALFORMED_LISTS = (
    "SELECT digest FROM batch_lists WHERE CASE WHEN json_valid(blocks) THEN json_type(blocks) IS NOT 'array'"
    " ELSE 1 END LIMIT ?2"
)
#: Blocks a list names that are gone, with a batch naming that list (None: no batch does).
_LOST_BLOCKS = (
    "SELECT DISTINCT l.digest, j.value, (SELECT batch_id FROM batches WHERE payload = l.digest LIMIT 1)"  # noqa: S608
    f" FROM {_LISTED} WHERE NOT EXISTS (SELECT 1 FROM batch_payloads WHERE digest = j.value) LIMIT ?2"
)
#: Blocks whose count is not the number of times the lists name them (None: no count at all).
_WRONG_COUNTS = (
    f"WITH held AS (SELECT j.value AS digest, count(*) AS n FROM {_LISTED} GROUP BY j.value)"  # noqa: S608
    " SELECT h.digest, r.refs, h.n FROM held AS h LEFT JOIN block_refs AS r ON r.digest = h.digest"
    " WHERE r.refs IS NOT h.n"
    " UNION ALL SELECT digest, refs, 0 FROM block_refs WHERE refs != 0 AND digest NOT IN (SELECT digest FROM held)"
    " LIMIT ?2"
)


def problems(conn: sqlite3.Connection, limit: int) -> list[str]:
    """What is wrong with the stored batch results, read only (``store check``): a batch naming a list or
    payload that is gone, a list naming a block that is gone, a count in ``block_refs`` that is not the number
    of times the lists name its block. A read reports the first two as damage, but a wrong count shows only
    later: a block freed while lists still name it, or never freed. At most ``limit`` of each kind."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'block_refs'").fetchone() is None:
        return []  # before schema step 13: the store is upgraded, and checkable, when it is next opened
    found = []
    for batch_id, listed, payload in conn.execute(_LOST_PAYLOADS, (BLOCKS, limit)):
        kind, table = ("list of blocks", "batch_lists") if listed else ("payload", "batch_payloads")
        found.append(f"batches row {batch_id}: its {kind} {payload} is missing from {table}")
    for (digest,) in conn.execute(_MALFORMED_LISTS, (BLOCKS, limit)):
        found.append(f"batch_lists row {digest}: its blocks are not a JSON array of digests")
    for digest, block, batch_id in conn.execute(_LOST_BLOCKS, (BLOCKS, limit)):
        named = "" if batch_id is None else f" (batch {batch_id} reads as damaged)"
        found.append(f"batch_lists row {digest}: its block {block} is missing from batch_payloads{named}")
    for digest, refs, held in conn.execute(_WRONG_COUNTS, (BLOCKS, limit)):
        counted = "is missing" if refs is None else f"counts {refs}"
        found.append(f"block_refs row {digest} {counted} while batch_lists hold {held} reference(s) to the block")
    return found
