"""The live pipeline display in a real JupyterLab, in headless Chromium: the cell returns at once with the
pipeline's graph drawn by JupyterLab's Mermaid renderer, and the drawing changes as steps complete while the
next cell blocks the kernel in ``time.sleep``. Skipped only where Debian's Chromium is absent; CI installs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from browser import CHROMIUM, SECONDS, chromium, jupyterlab, open_and_run_all, write_notebook

from dshpc_jupyter.examples import data_files

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)")

SETUP = """%load_ext dshpc_jupyter
import dshpc_jupyter
from dshpc_jupyter import examples
registered = dshpc_jupyter.current().register_method(examples.methods_dir())"""


def svg_text(image: Any) -> str:
    """The SVG JupyterLab drew, from the image's data URL (its labels are in it as text)."""
    return unquote(image.get_attribute("src") or "")


def test_the_graph_is_drawn_and_changes_as_steps_complete(tmp_path: Path, home: Path) -> None:
    from playwright.sync_api import expect

    poem = next(iter(data_files("poem.txt")))
    cell = f"""%%dshpc_batch --out p
steps:
  slow:
    method: Simulated Workload
    files: [{poem}]
    parameters: {{seconds: 4}}
  words:
    method: Word Count (bash)
    file_hash: {{$ref: slow}}"""
    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "pipeline.ipynb", [SETUP, cell, "import time\ntime.sleep(20)"])
    with jupyterlab(root, tmp_path / "lab", {"DSHPC_HOME": str(home)}) as lab, chromium() as page:
        errors = open_and_run_all(page, lab, "pipeline.ipynb")
        output = page.locator(".jp-Notebook .jp-Cell").nth(1).locator(".jp-OutputArea")
        drawing = output.locator(".jp-RenderedMermaid img").first
        expect(drawing).to_be_visible(timeout=90 * SECONDS)  # JupyterLab drew the Mermaid block as an SVG image
        first = svg_text(drawing)
        assert "words" in first and "Word Count (bash)" in first and "1 waiting" in first, first
        output.screenshot(path=str(tmp_path / "pipeline-running.png"))
        expect(output).to_contain_text("words: 1 completed", timeout=60 * SECONDS)
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jp-RenderedMermaid img')].some("
            "i => decodeURIComponent(i.src).includes('Word Count (bash)<br/>1 completed')"
            " || decodeURIComponent(i.src).includes('1 completed</'))",
            timeout=30 * SECONDS,
        )
        last = svg_text(output.locator(".jp-RenderedMermaid img").first)
        assert "1 waiting" not in last and last != first, "the drawing changed as the steps completed"
        output.screenshot(path=str(tmp_path / "pipeline-done.png"))
        assert not errors, errors
