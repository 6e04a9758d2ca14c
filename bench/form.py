"""Form responsiveness with 100 methods (5 parameters each) and 1,000 stored files, over the embedded engine.

What a person waits for: opening the form, choosing a method, each keystroke in the file search, "select
shown", and "Add" (which expands the grid and asks the service for a dry run of every pending config). Also
what one keystroke sends to the browser (the file list's labels) and how many widgets the form makes.

Run: ``python bench/form.py [--repeat 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import ipywidgets as widgets
from timing import best_of

from dshpc_jupyter.front.connection import Connection, connect_async
from dshpc_jupyter.jupyter.form import JobForm

METHOD = """{"name": "Method %03d", "description": "benchmark method", "command": "python3", "script_path": "m.py",
"version": "1", "parameters": [%s]}"""


def models() -> int:
    """Widget models alive in this process (layouts and styles included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return len(widgets.Widget.widgets)


def populate(connection: Connection, root: Path) -> None:
    parameters = ", ".join(f'{{"name": "p{i}", "type": "integer", "default": {i}}}' for i in range(5))
    for n in range(100):
        folder = root / "methods" / f"m{n:03d}"
        folder.mkdir(parents=True)
        (folder / "method.json").write_text(METHOD % (n, parameters))
        (folder / "m.py").write_text("print(1)\n")
    connection.register_method(root / "methods")
    for n in range(1000):
        connection.upload_file(f"sample {n}\n".encode(), filename=f"sample_{n:04d}.txt")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dshpc-bench-form-") as folder:
        root = Path(folder)
        os.environ["DSHPC_HOME"] = str(root / "home")
        connection = Connection(connect_async())
        populate(connection, root)
        rows: list[tuple[str, tuple[float, float]]] = []

        before = models()
        form = JobForm(connection)
        made = models() - before
        rows.append(("open the form (list methods + files, build widgets)", best_of(args.repeat, lambda: JobForm(
            connection).close())))  # fmt: skip
        names = [value for _, value in form.method.options]
        choices = iter(names * args.repeat)
        rows.append(("choose a method (first time: builds its fields)",
                     best_of(args.repeat, lambda: form.method.set_trait("value", next(choices)))))  # fmt: skip
        again = iter(names[:2] * args.repeat)
        rows.append(("choose a method again (fields kept)",
                     best_of(args.repeat, lambda: form.method.set_trait("value", next(again)))))  # fmt: skip
        searches = iter(["sample_07", "sample_0", "sample_07", "sample_0"] * args.repeat)
        rows.append(("one keystroke in the file search (1,000 files)",
                     best_of(args.repeat, lambda: form.files.search.set_trait("value", next(searches)))))  # fmt: skip
        form.files.search.value = ""
        shown_bytes = len(json.dumps(form.files.select.get_state()["_options_labels"]))
        rows.append(("select shown (200 files)", best_of(args.repeat, form.files.select_shown.click,
                                                         form.files.clear.click)))  # fmt: skip
        form.method.value = names[0]
        field = form.parameter("p0")
        field.mode.value = "range"
        field.start.value, field.stop.value, field.step.value = 1, 5, 1
        form.files.clear.click()
        form.files.search.value = "sample_000"  # 10 files x 5 values = 50 configs
        form.files.select_shown.click()
        rows.append(("Add 50 configs (+ dry-run preview of all pending)",
                     best_of(args.repeat, form.add_button.click, form.clear_button.click)))  # fmt: skip
        form.files.clear.click()
        form.files.search.value = "sample_0"  # 200 files x 5 values = 1,000 configs
        form.files.select_shown.click()
        rows.append(
            (
                "Add 1,000 configs (+ dry-run preview of all pending)",
                best_of(args.repeat, form.add_button.click, form.clear_button.click),
            )
        )
        assert len(form.pending) == 1000 and form.preview_counts()["new"] == 1000, form.summary()  # fmt: skip
        form.close()
        connection.close()

    print("| action | best | median |\n|---|---|---|")
    for name, (best, median) in rows:
        print(f"| {name} | {best * 1000:.1f} ms | {median * 1000:.1f} ms |")
    print(f"\nwidget models made by one form (layouts and styles included, no method chosen yet): {made}")
    print(f"file list sent to the browser when the search is empty: {shown_bytes / 1000:.1f} kB (200 labels)")


if __name__ == "__main__":
    main()
