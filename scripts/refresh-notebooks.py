"""Run notebooks top to bottom in a real kernel and save them with their new outputs (what nbval compares).

    python scripts/refresh-notebooks.py notebooks/01-quickstart.ipynb [...]

Each run gets its own temporary folder (the kernel's TMPDIR, where the notebooks make their homes); the local
workers started there are stopped and the folder removed afterwards. Widget state is not stored.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

import nbclient
import nbformat

from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.schedulers.local import stop_worker


def refresh(path: Path, timeout: int) -> None:
    notebook = nbformat.read(path, as_version=4)
    scratch = Path(tempfile.mkdtemp(prefix="dshpc-refresh-"))
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(scratch)
    try:
        client = nbclient.NotebookClient(
            notebook, timeout=timeout, kernel_name="python3", record_timing=False, store_widget_state=False,
            resources={"metadata": {"path": str(path.parent)}},
        )  # fmt: skip
        client.execute()
    finally:
        os.environ.pop("TMPDIR") if saved is None else os.environ.update(TMPDIR=saved)
        for lock in scratch.glob("**/run/worker.lock"):
            stop_worker(Home.open(lock.parent.parent))
        shutil.rmtree(scratch, ignore_errors=True)
    nbformat.write(notebook, path)
    print(f"refreshed {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    for path in parser.parse_args().notebooks:
        refresh(path, parser.parse_args().timeout)


if __name__ == "__main__":
    main()
