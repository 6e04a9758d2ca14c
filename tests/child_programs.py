"""Programs the concurrency and restart tests run as separate OS processes (``python child_programs.py ...``).

Each takes a home directory and a JSON file of configs, and reports its answer as JSON on stdout.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dshpc_jupyter.domain.hashing import sha256_bytes
from dshpc_jupyter.domain.models import FileInfo
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.store.sqlite import Store, Transaction


def _wait_for(path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {path}")
        time.sleep(0.002)


def submit_together(home: str, configs_file: str, ready_dir: str, go_file: str) -> None:
    """Get ready, say so, wait for the signal, then submit: so that several processes submit at once."""
    configs = json.loads(Path(configs_file).read_text())
    engine = open_engine(home, slots=1)
    engine.store.list_files()  # open the connection before the start signal
    (Path(ready_dir) / str(id(engine))).touch()
    _wait_for(Path(go_file))
    response = engine.simulate_jobs(configs)
    print(response.model_dump_json())
    engine.close()


def submit_and_stall(home: str, configs_file: str, marker: str) -> None:
    """Submit, but stall inside the write transaction once the jobs are inserted (to be killed there).

    Stalling is the one fake here: it makes "killed in the middle of the transaction" happen every time.
    """
    configs = json.loads(Path(configs_file).read_text())
    original = Transaction.insert_batch

    def stall(self: Transaction, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        Path(marker).touch()
        time.sleep(120)

    Transaction.insert_batch = stall  # type: ignore[method-assign]
    open_engine(home, slots=1).simulate_jobs(configs)


def submit_now(home: str, configs_file: str, marker: str) -> None:
    """Submit at once (to be killed at some moment of it)."""
    configs = json.loads(Path(configs_file).read_text())
    engine = open_engine(home, slots=1)
    Path(marker).touch()
    print(engine.simulate_jobs(configs).batch_id, flush=True)


def open_store_together(db_path: str, go_file: str, name: str) -> None:
    """Open (and so create or migrate) a store at the same moment as other processes, then write to it."""
    _wait_for(Path(go_file))
    store = Store(Path(db_path))
    content = name.encode()
    store.add_file(
        FileInfo(file_hash=sha256_bytes(content), filename=name, file_size=len(content), upload_date=datetime.now(UTC))
    )
    store.close()


def hold_exclusive(db_path: str, marker: str, release_file: str, seconds: str) -> None:
    """Hold ``BEGIN EXCLUSIVE`` on a store until ``release_file`` appears (or ``seconds`` pass), as another
    program (a backup tool, a stuck process) would."""
    import sqlite3

    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    Path(marker).touch()
    deadline = time.monotonic() + float(seconds)
    while not Path(release_file).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    conn.execute("ROLLBACK")
    conn.close()


if __name__ == "__main__":
    commands: dict[str, Callable[..., None]] = {
        "together": submit_together,
        "stall": submit_and_stall,
        "now": submit_now,
        "store": open_store_together,
        "exclusive": hold_exclusive,
    }
    commands[sys.argv[1]](*sys.argv[2:])
