"""Taking a store back to an older schema version, as an older package left it: what the upgrade tests start from.

The undo is not written step by step (it would be a hand copy of ``store/schema.py`` to keep in step with it): a
fresh store migrated to the older version says what that version has, and :func:`downgrade` takes a store there
by difference: triggers, indexes and tables the older version lacks are dropped, the columns later steps added
are dropped, and the indexes and triggers the older version defines differently are created as it did. So a
step added later is undone with no code here. :func:`downgrade` checks that the result has exactly the older
version's tables, columns, indexes and triggers, and fails naming what still differs when a step did what a
difference cannot take back (a column's type changed by rebuilding its table, say): such a step needs its own
undo here. Nor does a difference say where rows moved: ``DATA_UNDO`` holds those moves, run first.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from support import wait_for_jobs

from dshpc_jupyter.domain.models import JobRecord
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.schema import MIGRATIONS, split_statements

#: Rows a step's package writes elsewhere than the older version read them: put back before the schema is.
#: Step 7: batch results stored once per content (``batch_payloads``), inline in ``batches`` before.
#: Step 13: in blocks named in order by a ``batch_lists`` row: spliced back into one inline array.
DATA_UNDO: dict[int, str] = {
    13: "UPDATE batches SET payload = NULL, results = '[' || coalesce((SELECT group_concat(substr(results, 2,"
    " length(results) - 2), ',') FROM (SELECT p.results FROM batch_lists AS l, json_each(l.blocks) AS j"
    " JOIN batch_payloads AS p ON p.digest = j.value WHERE l.digest = batches.payload AND length(p.results) > 2"
    " ORDER BY j.key)), '') || ']' WHERE results = CAST('{\"format\":2}' AS BLOB)",
    7: "UPDATE batches SET results = (SELECT results FROM batch_payloads WHERE digest = payload)"
    " WHERE payload IS NOT NULL",
}


@dataclass(frozen=True, slots=True)
class Shape:
    """What a schema version has: each table's columns (name, type, not null, default, key), and the SQL of
    each index and trigger by (type, name)."""

    columns: dict[str, list[tuple[object, ...]]]
    sql: dict[tuple[str, str], str]

    def differences(self, other: Shape) -> list[str]:
        tables = {t for t in self.columns.keys() | other.columns.keys() if self.columns.get(t) != other.columns.get(t)}
        objects = {k for k in self.sql.keys() | other.sql.keys() if self.sql.get(k) != other.sql.get(k)}
        return sorted(tables) + sorted(f"{kind} {name}" for kind, name in objects)


def schema_at(version: int) -> sqlite3.Connection:
    """An empty store in memory at ``version``: the migration steps up to it, as that version's package ran them."""
    conn = sqlite3.connect(":memory:")
    for step, statements in MIGRATIONS:
        if step <= version:
            for statement in split_statements(statements):
                conn.execute(statement)
    return conn


def shape(conn: sqlite3.Connection) -> Shape:
    objects = conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
    return Shape(
        {name: [row[1:6] for row in conn.execute(f"PRAGMA table_info({name})")] for kind, name, _ in objects
         if kind == "table"},
        {(kind, name): sql for kind, name, sql in objects if kind != "table"},
    )  # fmt: skip


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def added_columns(step: int, table: str) -> list[str]:
    """The columns ``step`` added to ``table`` (against the version before it)."""
    before = max(s for s, _ in MIGRATIONS if s < step)
    older = columns(schema_at(before), table)
    return [column for column in columns(schema_at(step), table) if column not in older]


def downgrade(conn: sqlite3.Connection, version: int) -> None:
    """Take ``conn``'s store back to schema ``version`` (see the module docstring); AssertionError naming what
    still differs from that version's fresh store when a step did what a difference cannot undo."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for step in sorted(DATA_UNDO, reverse=True):
        if version < step <= current:
            conn.execute(DATA_UNDO[step])
    target, now = shape(schema_at(version)), shape(conn)
    for (kind, name), sql in now.sql.items():  # first, as they may name the columns and tables that go
        if target.sql.get((kind, name)) != sql:
            conn.execute(f"DROP {kind.upper()} {name}")
    for table in now.columns.keys() - target.columns.keys():
        conn.execute(f"DROP TABLE {table}")
    for table, wanted in target.columns.items():
        kept = {column[0] for column in wanted}
        for column in reversed(columns(conn, table)):
            if column not in kept:
                conn.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    present = shape(conn).sql
    for key, sql in target.sql.items():
        if key not in present:
            conn.execute(sql)
    conn.execute(f"PRAGMA user_version = {version}")
    left = target.differences(shape(conn))
    assert not left, f"downgrade to version {version}: {', '.join(left)} still differ from a fresh store's"


def downgrade_to_2(conn: sqlite3.Connection) -> None:
    """As a package of schema version 2 (named inputs and output files) left the store."""
    downgrade(conn, 2)


def downgrade_to_1(conn: sqlite3.Connection) -> None:
    """As the first package left the store."""
    downgrade(conn, 1)


@dataclass(frozen=True, slots=True)
class Seeded:
    """What :func:`seeded_store` left: the config, the batch that ran it, and its completed job."""

    config: dict[str, str]
    batch_id: str
    job: JobRecord


def seeded_store(home: Path, *, name: str | None = None) -> Seeded:
    """A store on ``home`` with the example methods and data and one batch (named ``name``) of one Word Count
    config whose job completed, its engine closed: what an upgrade test takes back to an older version."""
    engine = open_engine(home)
    try:
        engine.register_method(methods_dir())
        poem = next(engine.upload_file(p) for p in data_files() if p.name == "poem.txt")
        config = {"file_hash": poem.file_hash, "method_name": "Word Count (bash)"}
        answer = engine.simulate_jobs([config], name=name)
        (job,) = wait_for_jobs(engine, [answer.results[0].job_id or ""])
    finally:
        engine.close()
    assert answer.batch_id is not None
    return Seeded(config, answer.batch_id, job)


def user_version(home: Path) -> int:
    """The schema version of the store on ``home``."""
    with sqlite3.connect(home / "store.sqlite") as conn:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version
