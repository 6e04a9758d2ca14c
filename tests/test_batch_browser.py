"""The live ``%%dshpc_batch`` display in a real JupyterLab, in headless Chromium: the cell returns at once, the
widget follows the jobs (a failed one stands out) while the next cell blocks the kernel in ``time.sleep``, and
it ends as the final table. A screenshot of the batch while it runs is saved in the test's folder (and, with
``DSHPC_LIVE_SCREENSHOT=path``, there too: that is how the README's ``docs/images/live-batch.png`` is made).

Skipped only where Debian's Chromium is absent; CI installs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import CHROMIUM, SECONDS, chromium, jupyterlab, keep_screenshot, open_and_run_all, write_notebook

from dshpc_jupyter.examples import data_files

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)")

SLEEP_S = 25
SETUP = """%load_ext dshpc_jupyter
import dshpc_jupyter
from dshpc_jupyter import examples
registered = dshpc_jupyter.current().register_method(examples.methods_dir())"""


def batch_cell() -> str:
    csvs = ", ".join(str(p) for p in data_files("readings_*.csv"))
    poem = next(iter(data_files("poem.txt")))
    return f"""%%dshpc_batch --out b --poll 0.2
- method: Threshold Filter
  files: [{csvs}]
  grid: {{threshold: [0.5, -1]}}
- method: Simulated Workload
  files: [{poem}]
  grid: {{seconds: [1.5, 2.0, 2.5, 3.0]}}"""


def test_live_display_follows_the_batch_while_the_kernel_sleeps(tmp_path: Path, home: Path) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "root"
    root.mkdir()
    sleeper = f"import time\ntime.sleep({SLEEP_S})\nprint('slept:', b.stats.summary())"
    write_notebook(root / "live.ipynb", [SETUP, batch_cell(), sleeper])
    env = {"DSHPC_HOME": str(home), "DSHPC_LOCAL_SLOTS": "2"}
    with jupyterlab(root, tmp_path / "lab", env) as lab, chromium({"width": 1280, "height": 1000}) as page:
        errors = open_and_run_all(page, lab, "live.ipynb")

        cells = page.locator(".jp-Notebook .jp-Cell")
        output = cells.nth(1).locator(".jp-OutputArea")
        summary = output.locator(".dshpc-summary:visible")
        expect(summary).to_contain_text("8 configs", timeout=90 * SECONDS)
        # mid-run: some jobs have ended, others not yet; the failing one is marked as it happens
        expect(output.locator(".dshpc-live .dshpc-bar")).to_be_visible(timeout=30 * SECONDS)
        expect(output.locator("tr.dshpc-failed:visible").first).to_be_visible(timeout=60 * SECONDS)
        expect(summary).to_contain_text("running", timeout=60 * SECONDS)
        output.screenshot(path=str(tmp_path / "live-batch.png"))

        expect(summary).to_contain_text("6 completed (0 cached) · 2 failed", timeout=90 * SECONDS)
        expect(summary).to_contain_text("done in", timeout=30 * SECONDS)
        sleeping = cells.nth(2).locator(".jp-OutputArea-output")
        assert sleeping.count() == 0, "the display finished while the next cell still blocked the kernel"
        expect(output.locator("tr.dshpc-failed:visible")).to_have_count(2)
        expect(output.locator("tr.dshpc-failed:visible").first).to_contain_text("threshold must be non-negative")
        expect(sleeping).to_contain_text("slept: 8 configs", timeout=(SLEEP_S + 60) * SECONDS)
        assert errors == []

    keep_screenshot(tmp_path / "live-batch.png", "DSHPC_LIVE_SCREENSHOT")
