"""A pipeline in a notebook cell (docs/design.md section 10.4): its Mermaid graph, steps coloured by state with
counts per swept step, above a progress line per step, kept up to date by a thread until every step has ended;
with ``wait`` the cell blocks and keeps only the final picture (what nbval compares)."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..front.pipeline import Pipeline
from .display import has_kernel

#: Seconds between two refreshes of a live pipeline.
REFRESH_S = 0.5


def bundle(pipeline: Pipeline) -> dict[str, str]:
    """The display data: Markdown with a Mermaid block (JupyterLab draws it), and text."""
    return {"text/markdown": pipeline._repr_markdown_(), "text/plain": repr(pipeline)}


def show_pipeline(pipeline: Pipeline, *, wait: bool = False, timeout: float | None = None) -> None:
    """Show a pipeline in the current cell: live while it runs (a thread refreshes it), final once done."""
    if not has_kernel():
        if wait:
            pipeline.wait(timeout=timeout)
        print(repr(pipeline))
        return
    from IPython.display import display

    if wait:
        pipeline.wait(timeout=timeout)
        display(bundle(pipeline), raw=True)
        return
    handle: Any = display(bundle(pipeline), raw=True, display_id=True)
    if not pipeline.done:
        threading.Thread(target=_follow, args=(pipeline, handle), daemon=True, name="dshpc-pipeline-view").start()


def _follow(pipeline: Pipeline, handle: Any) -> None:
    """Refresh the shown pipeline until it is done (a service that stops answering ends the refreshes)."""
    while not pipeline.done:
        time.sleep(REFRESH_S)
        try:
            pipeline.refresh()
        except Exception:  # the connection was closed, or the service is gone: the last picture stays
            return
        handle.update(bundle(pipeline), raw=True)
