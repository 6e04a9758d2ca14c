"""A store from before pipeline owners (schema step 10) is upgraded in place: its pipelines are kept, with no
owner (visible to admins only on a server), and a pipeline recorded after the upgrade names its submitter."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from store_versions import downgrade

from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.service.identity import acting_for
from dshpc_jupyter.store.schema import SCHEMA_VERSION

WORDS = "Word Count (bash)"


def test_a_store_before_pipeline_owners_keeps_its_pipelines_and_records_owners_after(home: Path) -> None:
    engine = open_engine(home)
    engine.register_method(methods_dir())
    poem = next(engine.upload_file(p) for p in data_files() if p.name == "poem.txt")
    steps = {"only": {"method_name": WORDS, "file_hash": poem.file_hash}}
    old = engine.pipelines.submit(steps).pipeline_id
    engine.close()
    with sqlite3.connect(home / "store.sqlite") as conn:  # back to version 8, as the package before step 10 left it
        downgrade(conn, 8)
        assert "owner" not in {row[1] for row in conn.execute("PRAGMA table_info(pipelines)")}

    engine = open_engine(home)
    try:
        with sqlite3.connect(home / "store.sqlite") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 10
        kept = engine.pipelines.detail(old)
        assert kept.owner is None and kept.steps["only"].job_id is not None
        with acting_for("alice"):
            new = engine.pipelines.submit(steps)
        assert new.owner == "alice"
        assert engine.pipelines.detail(new.pipeline_id).owner == "alice"
    finally:
        engine.close()
