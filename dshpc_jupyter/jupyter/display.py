"""The live display of a Batch: a summary line, a progress bar and the results table.

:class:`BatchView` is an ipywidgets box that follows its Batch from a background thread (at most a few renders a
second), so it keeps moving while other cells run, ``time.sleep`` included; it can be placed inside another
widget (the form does). :func:`show` is what ``%%dshpc_batch`` calls: it puts a live view in the cell and, once
every job has ended, replaces it with the same content as plain HTML and text, which is what a saved notebook
keeps and what GitHub or nbconvert show. Without a kernel (terminal IPython, a script) it prints text instead.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import ipywidgets as widgets

from ..domain.errors import DshpcError
from ..front.batch import Batch, Row
from .batch_render import (
    ALL_STATES,
    MAX_ROWS,
    STATE_ORDER,
    Labels,
    pick_rows,
    state_label,
    static_bundle,
    summary_html,
    summary_text,
    table_html,
)
from .outcome_bar import bar_html
from .row_logs import RowLogs

MIN_INTERVAL: Final = 0.25
IDLE_REFRESH: Final = 1.0
WIDGET_MIME: Final = "application/vnd.jupyter.widget-view+json"
#: How often a running batch's cell output is re-sent with a fresh dated snapshot (what a save or a reload keeps).
SNAPSHOT_INTERVAL: Final = 5.0


def has_kernel() -> bool:
    """True inside a Jupyter kernel (where widgets can render), False in terminal IPython or plain Python."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


# --- the live widget ---------------------------------------------------------------------------------------


class BatchView(widgets.VBox):  # type: ignore[misc]
    """A summary line and a progress bar above the results table, following a Batch until it is done. The
    table pages (``max_rows`` a page) and filters by state (``state_filter``, with each state's count)."""

    def __init__(
        self, batch: Batch, *, max_rows: int = MAX_ROWS, min_interval: float = MIN_INTERVAL, cancel: bool = True
    ) -> None:
        self.batch = batch
        self.max_rows = max_rows
        self.min_interval = min_interval
        self.summary = widgets.HTML()
        #: The bar split by outcome (:mod:`.outcome_bar`): completed, failed, cancelled, errors, running, pending.
        self.progress = widgets.HTML(layout={"width": "98%"})
        # every state, always (options that change under a person's choice would reset the page's menu)
        self.state_filter = widgets.Dropdown(options=[ALL_STATES, *STATE_ORDER], value=ALL_STATES,
                                             description="show", layout={"width": "auto"})  # fmt: skip
        self.previous_page = widgets.Button(description="‹ previous", layout={"width": "auto"})
        self.next_page = widgets.Button(description="next ›", layout={"width": "auto"})
        self.page_label = widgets.Label()
        self.page = 0
        self.table = widgets.HTML()
        #: Cancels the batch's unfinished jobs (``cancel=False``: not shown, for a form that has its own).
        self.cancel_button = widgets.Button(description="Cancel", icon="stop", button_style="warning",
                                            tooltip="cancel the unfinished jobs of this batch")  # fmt: skip
        self.cancel_button.add_class("dshpc-cancel")
        self.cancel_note = widgets.HTML()
        extra = [self.cancel_button, self.cancel_note] if cancel and not batch.dry_run else []
        controls = widgets.HBox([self.state_filter, self.previous_page, self.page_label, self.next_page, *extra])
        #: A row's stdout/stderr on demand (:mod:`.row_logs`); a dry run has no jobs, so no logs.
        self.logs = RowLogs(batch)
        parts = [self.summary, self.progress, controls, self.table] + ([] if batch.dry_run else [self.logs])
        super().__init__(parts)
        self.add_class("dshpc-live")  # a snapshot beside it is hidden while it renders (SNAPSHOT_STYLE)
        self.state_filter.observe(lambda _: self._turn_to(0), names="value")
        self.previous_page.on_click(lambda _: self._turn_to(self.page - 1))
        self.next_page.on_click(lambda _: self._turn_to(self.page + 1))
        self.cancel_button.on_click(lambda _: self.cancel())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._render_lock = threading.RLock()
        self._rendering = False
        self.render()

    def cancel(self) -> None:
        """What the Cancel button does: cancel the unfinished jobs; a service that says no is shown beside it."""
        unfinished = len(self.batch.state.unfinished_ids())
        try:
            self.batch.cancel()
        except (DshpcError, OSError) as exc:
            self.cancel_note.value = f'<span style="color:#b3261e">cancel failed: {html.escape(str(exc))}</span>'
            return
        self.cancel_note.value = html.escape(f"cancel sent for {unfinished} unfinished job(s)")
        self.render()

    def _turn_to(self, page: int) -> None:
        self.page = max(0, page)
        if not self._rendering:  # fired from inside a render, which shows the page itself
            self.render()

    def shown_rows(self, rows: Sequence[Row]) -> tuple[list[Row], int]:
        """The rows of the current filter and page, and how many rows the filter keeps. The first page of every
        state puts failures first in line, so they are never cut off."""
        wanted = self.state_filter.value
        kept = list(rows) if wanted == ALL_STATES else [r for r in rows if state_label(r).split(" (", 1)[0] == wanted]
        pages = max(1, -(-len(kept) // self.max_rows))
        self.page = min(self.page, pages - 1)
        if self.page == 0:
            return pick_rows(kept, self.max_rows), len(kept)
        return kept[self.page * self.max_rows : (self.page + 1) * self.max_rows], len(kept)

    def render(self) -> None:
        """Bring the widgets up to date with the Batch (only changed values are sent to the front end)."""
        with self._render_lock:
            self._rendering = True
            try:
                self._render()
            finally:
                self._rendering = False

    def _render(self) -> None:
        stats, rows = self.batch.stats, self.batch.rows()
        shown, kept = self.shown_rows(rows)
        pages = max(1, -(-kept // self.max_rows))
        values: dict[Any, dict[str, Any]] = {
            self.summary: {"value": summary_html(self.batch, stats)},
            self.progress: {"value": bar_html(stats)},
            self.page_label: {"value": f"page {self.page + 1} of {pages}"},
            self.previous_page: {"disabled": self.page == 0},
            self.next_page: {"disabled": self.page >= pages - 1},
            self.cancel_button: {"disabled": stats.done},
            self.table: {"value": table_html(rows, self.max_rows, labels=Labels.of(self.batch), shown=shown)},
        }
        for widget, traits in values.items():
            changed = {k: v for k, v in traits.items() if getattr(widget, k) != v}
            if changed:
                with widget.hold_sync():
                    for key, value in changed.items():
                        setattr(widget, key, value)

    def follow(
        self, on_done: Callable[[], None] | None = None, setup: Callable[[], None] | None = None,
        on_render: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """Re-render from a daemon thread as the Batch changes (and every second, for the clock) until it is
        done, calling ``on_render`` after each render; then render once more and call ``on_done`` in that
        thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(on_done, setup, on_render), name="dshpc-view", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following (the Batch goes on polling)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(
        self, on_done: Callable[[], None] | None, setup: Callable[[], None] | None,
        on_render: Callable[[], None] | None,
    ) -> None:  # fmt: skip
        if setup is not None:
            setup()
        version = -1
        while not self._stop.is_set():
            version = self.batch.wait_for_change(version, IDLE_REFRESH)
            self.render()
            if self.batch.done:
                if on_done is not None:
                    on_done()
                return
            if on_render is not None:
                on_render()
            self._stop.wait(self.min_interval)

    def close(self) -> None:
        self.stop()
        super().close()


# --- what the magic calls ----------------------------------------------------------------------------------


def _print_lines(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)


def show(batch: Batch, *, wait: bool = False, timeout: float | None = None, notes: Sequence[str] = ()) -> None:
    """Show a Batch in the current cell: live while it runs, as static HTML/text once it is done.

    While it runs the cell holds two outputs: the live widget, and a dated snapshot of the batch (HTML and text)
    re-sent every :data:`SNAPSHOT_INTERVAL` seconds, which the page hides while the widget lives and shows where
    the widget cannot render (:func:`snapshot_bundle`). With ``wait`` the cell blocks until every job has ended
    (or ``timeout``) showing the widget alone, then is cleared for the final table, so a notebook run from top to
    bottom (nbconvert, nbval, which keeps every output it was sent) holds only the final state; a wait given up
    adds the snapshot.
    """
    if not has_kernel():
        _show_text(batch, wait=wait, timeout=timeout, notes=notes)
        return
    from IPython.display import clear_output, display

    if batch.done:
        _print_lines(notes)
        display(static_bundle(batch), raw=True)
        return
    view = BatchView(batch)
    if not wait:  # with --wait the notes come with the final table (a front end may not honour clear_output)
        _print_lines(notes)
    handle = display(widget_bundle(view), raw=True, display_id=True)
    snapshots: list[Any] = []  # the snapshot's display handle, once shown

    def show_snapshot() -> None:
        snapshots.append(display(snapshot_bundle(batch, when=time.time()), raw=True, display_id=True))

    if not wait:
        show_snapshot()
    sent = [time.monotonic()]
    # With --wait the final table is the main thread's (after clearing the cell), unless the wait is given up.
    waiting, finished, lock = [wait], [False], threading.Lock()

    def resend() -> None:
        if snapshots and time.monotonic() - sent[0] >= SNAPSHOT_INTERVAL:
            sent[0] = time.monotonic()
            snapshots[0].update(snapshot_bundle(batch, when=time.time()), raw=True)

    def finish() -> None:
        with lock:
            if waiting[0] or finished[0]:
                return
            finished[0] = True
        handle.update({}, raw=True)  # the widget's output goes (an empty output shows nothing)...
        snapshots[0].update(static_bundle(batch), raw=True)  # ...and the snapshot's becomes the final table

    view.follow(on_done=finish, setup=_keep_parent(), on_render=resend)
    if not wait:
        return
    try:
        batch.wait(timeout)
    except (TimeoutError, KeyboardInterrupt) as exc:  # the live view above keeps following the jobs
        show_snapshot()
        with lock:
            waiting[0] = False
        if batch.done:  # it ended as the wait gave up, and the view thread may have passed its end already
            finish()
        _print_lines(notes)
        reason = str(exc) if isinstance(exc, TimeoutError) else "stopped waiting; the jobs go on"
        print(f"{reason} (the table above stays live)")
        return
    view.stop()
    clear_output()
    _print_lines(notes)
    display(static_bundle(batch), raw=True)


def widget_bundle(view: BatchView) -> dict[str, Any]:
    """The live widget alone. It is never closed once shown: after a reload of the page the widget manager
    restores it from the kernel, live again, and it ends showing the final state."""
    return {WIDGET_MIME: view._repr_mimebundle_()[WIDGET_MIME]}


#: The rules a snapshot carries (a trusted output keeps its <style>; an untrusted one renders no widget at all):
#: the snapshot is hidden while a live view of the batch is in the same output area, and a widget output there
#: without one (a notebook reopened without its kernel: "model not found", or "Loading widget...") is hidden, so
#: the snapshot shows instead. JupyterLab marks every rendered output with its data-mime-type but a widget's;
#: :has() does not nest, so the second rule hides the widget's output node itself.
SNAPSHOT_STYLE: Final = (
    "<style>.jp-OutputArea:has(.dshpc-live) .dshpc-snapshot{display:none}"
    ".jp-OutputArea:has(.dshpc-snapshot) .jp-OutputArea-output:not([data-mime-type]):not(:has(.dshpc-live))"
    "{display:none}</style>"
)


def snapshot_bundle(batch: Batch, *, when: float | None = None) -> dict[str, str]:
    """The batch as it is now, dated ``as of HH:MM:SS`` while it runs, for whatever cannot show the live widget:
    a saved notebook reopened without its kernel (also after a reload, whose page no longer receives the final
    table), nbconvert, GitHub. A page with the live widget hides it (:data:`SNAPSHOT_STYLE`)."""
    bundle = static_bundle(batch, when=when)
    return {**bundle, "text/html": f'<div class="dshpc-snapshot">{SNAPSHOT_STYLE}{bundle["text/html"]}</div>'}


def live_bundle(view: BatchView) -> dict[str, Any]:
    """The two outputs of a running batch as one bundle (the widget and a snapshot dated now), for measuring."""
    return {**widget_bundle(view), **snapshot_bundle(view.batch, when=time.time())}


def _keep_parent() -> Callable[[], None]:
    """A setup for the view thread: its display messages name the cell that showed the batch as their parent,
    so the final update reaches that cell's output even when another cell runs at the time."""
    from IPython import get_ipython

    shell = get_ipython()
    publisher = getattr(shell, "display_pub", None)
    parent = getattr(publisher, "parent_header", None)

    def setup() -> None:
        if parent and publisher is not None and hasattr(publisher, "set_thread_parent"):
            publisher.set_thread_parent(parent)

    return setup


def _show_text(batch: Batch, *, wait: bool, timeout: float | None, notes: Sequence[str]) -> None:
    _print_lines(notes)
    if wait and not batch.done:
        print(summary_text(batch, batch.stats))
        try:
            batch.wait(timeout)
        except TimeoutError as exc:
            print(exc)
    bundle = static_bundle(batch)
    print(bundle["text/plain"] if batch.done else summary_text(batch, batch.stats))


__all__ = [
    "MAX_ROWS", "BatchView", "has_kernel", "live_bundle", "pick_rows", "show", "snapshot_bundle", "static_bundle",
]  # fmt: skip
