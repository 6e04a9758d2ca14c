"""A store at schema version 2 (before batch names, migration step 5) is upgraded in place: its batches are kept,
listed without a name, and a batch recorded after the upgrade is found by its name."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_versions import downgrade_to_2, seeded_store, user_version

from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.schema import SCHEMA_VERSION

WORDS = "Word Count (bash)"


def test_a_version_2_store_gets_batch_names_and_keeps_its_batches(home: Path) -> None:
    seeded = seeded_store(home, name="before the upgrade")
    config, old = seeded.config, seeded.batch_id
    with sqlite3.connect(home / "store.sqlite") as conn:  # back to version 2, as an older package left it
        downgrade_to_2(conn)

    engine = open_engine(home)
    try:
        assert user_version(home) == SCHEMA_VERSION >= 5
        (kept,) = engine.batches()
        assert (kept.batch_id, kept.name, kept.total_jobs) == (old, None, 1)
        assert engine.batch(old).name is None
        new = engine.simulate_jobs([config], name="after").batch_id
        assert [b.batch_id for b in engine.batches(name="after")] == [new]
        assert engine.batches(name="before the upgrade") == []
    finally:
        engine.close()
