"""``Batch.plot()`` under ``jupyter nbconvert --execute``: a small notebook (a sweep with --wait, then each kind
of plot) run by the real command in a subprocess, with no browser and no widget front end, keeps one image/png
per plot cell in the executed notebook."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("nbconvert")

CELLS = [
    "%load_ext dshpc_jupyter\nimport dshpc_jupyter\nfrom dshpc_jupyter import examples\n"
    "registered = dshpc_jupyter.current().register_method(examples.methods_dir())",
    "%%dshpc_batch --out b --wait --timeout 120 --base {examples.data_dir()}\n"
    "method: Threshold Filter\nfiles: [readings_*.csv]\ngrid: {threshold: [0.2, 0.5, 0.8]}",
    'b.plot("states")',
    'b.plot("durations", parameter="threshold")',
    'b.plot("gantt")',
]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_every_kind_of_plot_is_an_image_in_the_executed_notebook(home: Path, tmp_path: Path) -> None:
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
             for source in CELLS]  # fmt: skip
    notebook = {
        "cells": cells,
        "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    source = tmp_path / "plots.ipynb"
    source.write_text(json.dumps(notebook), encoding="utf-8")
    env = {**os.environ, "DSHPC_HOME": str(home)}
    env.pop("MPLBACKEND", None)  # the kernel's own default (the inline backend), as a user's nbconvert has
    done = subprocess.run(
        [sys.executable, "-m", "jupyter", "nbconvert", "--execute", "--to", "notebook", "--output", "executed",
         "--ExecutePreprocessor.timeout=180", str(source)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    executed = json.loads((tmp_path / "executed.ipynb").read_text(encoding="utf-8"))
    outputs = [cell["outputs"] for cell in executed["cells"]]
    assert any("6 configs · 6 completed" in "".join(o.get("data", {}).get("text/plain", "")) for o in outputs[1])
    for cell, cell_outputs in zip(CELLS[2:], outputs[2:], strict=True):
        images = [o["data"]["image/png"] for o in cell_outputs if "image/png" in o.get("data", {})]
        assert len(images) == 1, (cell, cell_outputs)
        png = base64.b64decode("".join(images[0]))
        assert png.startswith(PNG_SIGNATURE) and len(png) > 5_000, cell
        assert not [o for o in cell_outputs if o["output_type"] == "error"], cell
