"""The form in a real JupyterLab, in headless Chromium: choose a method, sweep a parameter, pick a stored file,
upload another, add, submit, and watch the live display reach the end; then submit again and see that nothing
ran twice; tick "rerun even if cached", submit, see every config run again, and open a row's stderr in the
live table's log panel. A screenshot is saved in the test's folder (and, with ``DSHPC_FORM_SCREENSHOT=path``, there too:
that is how the README's ``docs/images/form.png`` is made).

Skipped only where Debian's Chromium is absent; CI installs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import CHROMIUM, SECONDS, chromium, jupyterlab, keep_screenshot, open_and_run_all, write_notebook

from dshpc_jupyter.domain.hashing import sha256_file
from dshpc_jupyter.front.connection import Connection, connect_async

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed (apt-get install chromium)")

SETUP = """%load_ext dshpc_jupyter
import dshpc_jupyter
from dshpc_jupyter import examples
connection = dshpc_jupyter.current()
connection.register_method(examples.methods_dir())
connection.upload_files(examples.data_files("readings_*.csv"));"""
SHOW = "%dshpc_form --out b"


def test_build_submit_and_follow_a_batch_in_jupyterlab(tmp_path: Path, home: Path) -> None:
    from playwright.sync_api import expect

    root = tmp_path / "root"
    root.mkdir()
    write_notebook(root / "form.ipynb", [SETUP, SHOW])
    extra = tmp_path / "readings_c.csv"
    extra.write_text("time,value,sensor\n" + "".join(f"{i},{i / 40:.3f},{('north', 'south')[i % 2]}\n"
                                                       for i in range(48)), encoding="utf-8")  # fmt: skip
    with (
        jupyterlab(root, tmp_path / "lab", {"DSHPC_HOME": str(home)}) as lab,
        chromium({"width": 1280, "height": 2000}) as page,
    ):
        errors = open_and_run_all(page, lab, "form.ipynb")
        form = page.locator(".dshpc-form")
        form.wait_for(timeout=90 * SECONDS)

        form.locator(".dshpc-form-method select").select_option("Threshold Filter")
        add = form.locator(".dshpc-form-add")
        threshold = form.locator(".dshpc-param-threshold")
        form.locator(".dshpc-form-files select").select_option(label="readings_a.csv · 776 B · 111b4e46")
        expect(add).to_have_text("Add (1 config)", timeout=30 * SECONDS)  # the count shows before Add
        threshold.locator(".widget-toggle-button", has_text="range").click()
        expect(add).to_have_text("Add (3 configs)", timeout=30 * SECONDS)  # a range's defaults sweep three values
        threshold.locator(".widget-toggle-button", has_text="list").click()
        threshold.locator("input[type=text]").fill("0.2, 0.5, 0.8")
        expect(add).to_have_text("Add (3 configs)", timeout=30 * SECONDS)
        upload = form.locator(".dshpc-form-upload")
        expect(upload).to_have_text("Upload (0)")
        with page.expect_file_chooser() as chooser:
            upload.click()
        chooser.value.set_files(str(extra))
        expect(form).to_contain_text("readings_c.csv uploaded", timeout=30 * SECONDS)
        expect(form).to_contain_text("2 selected · 3 of 3 files match", timeout=30 * SECONDS)
        expect(upload).to_have_text("Upload (1)")  # counts the file sent with it, not 0 once it is sent
        expect(add).to_have_text("Add (6 configs)")

        add.click()
        preview = form.locator(".dshpc-form-preview")
        expect(preview).to_contain_text("6 pending config(s) · preview: 0 cached · 0 in progress · 6 new · 0 invalid",
                                        timeout=30 * SECONDS)  # fmt: skip
        expect(form.locator(".dshpc-form-pending option")).to_have_count(6)

        form.locator(".dshpc-form-submit").click()
        status = form.locator(".dshpc-form-submit-status")
        expect(status).to_contain_text("6 config(s) → 6 new job(s)", timeout=30 * SECONDS)
        expect(form.locator(".dshpc-form-submitted")).to_contain_text("these 6 config(s) were sent as batch")
        summary = form.locator(".dshpc-form-results .dshpc-summary")
        expect(summary).to_contain_text("6 configs · 6 completed (0 cached) · 0 failed · 0 errors · done in",
                                        timeout=120 * SECONDS)  # fmt: skip
        expect(form.locator(".dshpc-form-results tr.dshpc-completed")).to_have_count(6)
        expect(preview).to_contain_text("preview: 6 cached", timeout=30 * SECONDS)  # asked again once done
        form.screenshot(path=str(tmp_path / "form.png"))

        form.locator(".dshpc-form-submit").click()
        expect(status).to_contain_text("0 new job(s), 6 from the cache", timeout=30 * SECONDS)
        expect(summary).to_contain_text("6 completed (6 cached)", timeout=30 * SECONDS)

        form.locator(".dshpc-form-force input[type=checkbox]").check()  # an option set by a click reaches the batch
        form.locator(".dshpc-form-submit").click()
        expect(status).to_contain_text("6 new job(s) (6 rerun although cached)", timeout=30 * SECONDS)
        expect(summary).to_contain_text("6 completed (0 cached)", timeout=120 * SECONDS)
        expect(summary).to_contain_text("6 cached rerun")
        logs = form.locator(".dshpc-form-results")
        logs.locator(".dshpc-log-row input").fill("1")
        logs.locator(".widget-toggle-button", has_text="stderr").click()
        logs.locator(".dshpc-log-show").click()
        expect(logs.locator(".dshpc-log-text")).to_contain_text("row 1 · stderr", timeout=30 * SECONDS)
        assert errors == []

    keep_screenshot(tmp_path / "form.png", "DSHPC_FORM_SCREENSHOT")
    # what the service holds: one batch that made 6 jobs, one served from the cache, one forced to run them again,
    # the uploaded file
    connection = Connection(connect_async(home=home))
    try:
        made, cached, forced = sorted(connection.batches(), key=lambda b: b.created_at)
        assert (forced.total_jobs, forced.statistics.successful_submissions) == (6, 6)
        assert (made.total_jobs, made.statistics.successful_submissions) == (6, 6)
        assert (cached.total_jobs, cached.statistics.successful_submissions, cached.statistics.completed_jobs) == (
            6, 0, 6)  # fmt: skip
        assert sha256_file(extra) in {f.file_hash for f in connection.list_files()}
        assert {j.status for j in connection.list_jobs()} == {"CD"}
    finally:
        connection.close()
