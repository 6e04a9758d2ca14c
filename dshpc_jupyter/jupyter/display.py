"""The live display of a Batch: a summary line, a progress bar and the results table.

:class:`BatchView` is an ipywidgets box that follows its Batch from a background thread (at most a few renders a
second), so it keeps moving while other cells run, ``time.sleep`` included; it can be placed inside another
widget (the form does). :func:`show` is what ``%%dshpc_batch`` calls: it puts a live view in the cell and, once
every job has ended, replaces it with the same content as plain HTML and text, which is what a saved notebook
keeps and what GitHub or nbconvert show. Without a kernel (terminal IPython, a script) it prints text instead.
"""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import ipywidgets as widgets

from ..domain.errors import DshpcError
from ..domain.failures import failure_line
from ..front.batch import Batch, BatchStats, Row

MAX_ROWS: Final = 30
MIN_INTERVAL: Final = 0.25
IDLE_REFRESH: Final = 1.0
WIDGET_MIME: Final = "application/vnd.jupyter.widget-view+json"
ROW_COLOURS: Final = {"failed": "#fde2e1", "error": "#fff1d6", "in progress": "#eef4fb", "queued": "#f4f4f4"}
STATE_MARKS: Final = {"completed": "✓", "failed": "✗", "error": "!", "in progress": "…", "queued": "·", "dry run": "?"}
TEXT_WIDTH: Final = 60
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


# --- rendering (shared by the widget, the static HTML and the text) ------------------------------------


def pick_rows(rows: Sequence[Row], max_rows: int = MAX_ROWS) -> list[Row]:
    """At most ``max_rows`` rows in request order, failures first in line so they are never cut off."""
    if len(rows) <= max_rows:
        return list(rows)
    chosen = {r.index for r in rows if r.state in ("failed", "error")}
    chosen = set(sorted(chosen)[:max_rows])
    for row in rows:
        if len(chosen) >= max_rows:
            break
        chosen.add(row.index)
    return [r for r in rows if r.index in chosen]


def _short(value: str | None, width: int) -> str:
    text = " ".join((value or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _parameters(row: Row) -> str:
    parameters = row.config.get("parameters") or {}
    return json.dumps(parameters, sort_keys=True, separators=(", ", ": "), default=str) if parameters else ""


def _detail(row: Row) -> str:
    """What to show of a row: the line of a failure's error that names it (a traceback's exception line), else
    the output, else the service's message."""
    if row.error:
        return failure_line(row.error, row.status) or row.error
    return row.output or row.message


def state_label(row: Row) -> str:
    """The row state as a person reads it: pending (with its place in the queue, ``· #3 in queue``) apart from
    running, cancelled apart from failed, and how the config got its job (cached, joined one in progress, new,
    resubmitted after a failure)."""
    label: str = row.state
    if row.state == "in progress":
        label = "running" if row.status in ("R", "CG") else "pending"
    elif row.state == "failed" and row.status == "CA":
        label = "cancelled"
    outcome = row.result.outcome if row.result is not None else None
    how = {"cached": "cached", "new": "new", "resubmitted": "resubmitted", "in_progress": "joined"}.get(outcome or "")
    label = f"{label} ({how})" if how and row.state != "dry run" else label
    position = row.job.queue_position if row.job is not None else None
    return f"{label} · #{position} in queue" if position is not None and row.status == "PD" else label


def _duration(row: Row) -> str:
    return "" if row.duration is None else f"{row.duration:.2f} s"


def title(batch: Batch) -> str:
    if batch.dry_run:
        return "dsHPC"  # the summary line says "dry run: ..."
    ids = ", ".join(batch.batch_ids[:3]) + (" …" if len(batch.batch_ids) > 3 else "")
    return f"dsHPC batch {ids}" if ids else "dsHPC batch"


def as_of(stats: BatchStats, when: float | None) -> str:
    """`` · as of HH:MM:SS`` for a snapshot of a batch that has not ended (``when``: the snapshot's time)."""
    if when is None or stats.done:
        return ""
    return f" · as of {time.strftime('%H:%M:%S', time.localtime(when))}"


def summary_text(batch: Batch, stats: BatchStats, when: float | None = None) -> str:
    problem = f" · polling problem: {batch.last_error}" if batch.last_error and not stats.done else ""
    return f"{title(batch)}: {stats.summary()}{problem}{as_of(stats, when)}"


def summary_html(batch: Batch, stats: BatchStats, when: float | None = None) -> str:
    if stats.dry_run:
        colour = "#1f5fa8"
    else:
        colour = "#b3261e" if stats.failed or stats.errors else ("#1e7d32" if stats.done else "#1f5fa8")
    problem = (
        f' <span style="color:#b3261e">polling problem: {html.escape(batch.last_error)}</span>'
        if batch.last_error and not stats.done
        else ""
    )
    return (
        f'<div class="dshpc-summary"><b>{html.escape(title(batch))}</b>: '
        f'<span style="color:{colour}">{html.escape(stats.summary())}</span>{problem}'
        f'<span class="dshpc-as-of">{html.escape(as_of(stats, when))}</span></div>'
    )


#: On every cell, not in a <style> block: JupyterLab strips <style> from outputs and right-aligns table cells.
CELL_STYLE = "padding:2px 8px;text-align:left;vertical-align:top"


@dataclass(frozen=True)
class Labels:
    """What a table names besides its rows: file names (file_hash -> name), and where every row is."""

    names: Mapping[str, str] = field(default_factory=dict)
    variable: str | None = None
    batch_id: str | None = None

    @classmethod
    def of(cls, batch: Batch) -> Labels:
        return cls(batch.file_names, batch.variable, batch.batch_id)

    def file(self, row: Row) -> str:
        file_hash = str(row.config.get("file_hash", ""))
        return self.names.get(file_hash.lower()) or file_hash[:12]

    def where(self) -> str:
        """Where every row is, in code the user can run."""
        if self.variable:
            return f"{self.variable}.df"
        return f"Batch.load({self.batch_id!r}).df" if self.batch_id else "batch.df"


ALL_STATES: Final = "all"
#: The states :func:`state_label` gives, in the order counts and the filter list them.
STATE_ORDER: Final = ("completed", "running", "pending", "queued", "failed", "cancelled", "error", "dry run")


def state_counts(rows: Sequence[Row]) -> dict[str, int]:
    """How many rows are in each :func:`state_label` state (without the outcome), in a stable order."""
    counts: dict[str, int] = {}
    for row in rows:
        label = state_label(row).split(" (", 1)[0]
        counts[label] = counts.get(label, 0) + 1
    return {label: counts[label] for label in STATE_ORDER if label in counts}


def counts_text(rows: Sequence[Row]) -> str:
    return " · ".join(f"{n} {label}" for label, n in state_counts(rows).items())


def table_html(
    rows: Sequence[Row], max_rows: int = MAX_ROWS, *, labels: Labels | None = None,
    shown: Sequence[Row] | None = None,
) -> str:  # fmt: skip
    """The rows as an HTML table (``shown``: the rows to show, else :func:`pick_rows`); file names from
    ``labels``, the footer naming where every row is."""
    shown = pick_rows(rows, max_rows) if shown is None else list(shown)
    labels = labels or Labels()
    head = "".join(f'<th style="{CELL_STYLE}">{h}</th>' for h in ("#", "method", "file", "parameters", "status",
                                                                    "state", "duration", "output / error"))  # fmt: skip
    body = []
    for row in shown:
        colour = ROW_COLOURS.get(row.state)
        style = f' style="background:{colour}"' if colour and row.status != "CA" else ""
        detail = _detail(row)
        mark = STATE_MARKS.get(row.state, "")
        cells = (
            str(row.index),
            html.escape(str(row.config.get("method_name", ""))),
            f'<span title="{html.escape(str(row.config.get("file_hash", "")))}">{html.escape(labels.file(row))}</span>',
            f"<code>{html.escape(_parameters(row))}</code>",
            html.escape(row.status or ""),
            f"{mark} {html.escape(state_label(row))}",
            _duration(row),
        )
        tds = [f'<td style="{CELL_STYLE}">{cell}</td>' for cell in cells]
        error_style = ";color:#b3261e" if row.error and row.status != "CA" else ""
        shown_detail = html.escape(_short(detail, 120))
        full = html.escape(row.error or detail)
        tds.append(f'<td title="{full}" style="{CELL_STYLE}{error_style}">{shown_detail}</td>')
        body.append(f'<tr class="dshpc-{row.state.replace(" ", "-")}"{style}>{"".join(tds)}</tr>')
    more = (
        f'<div class="dshpc-more">showing {len(shown)} of {len(rows)} rows (failures always shown; '
        f"{html.escape(counts_text(rows))}); "
        f"every row is in <code>{html.escape(labels.where())}</code></div>"
        if len(shown) < len(rows)
        else ""
    )
    return (
        f'<table class="dshpc-table" style="border-collapse:collapse;font-size:90%"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}"
    )


def table_text(rows: Sequence[Row], max_rows: int = MAX_ROWS, *, labels: Labels | None = None) -> str:
    shown = pick_rows(rows, max_rows)
    labels = labels or Labels()
    header = ("#", "method", "file", "parameters", "status", "state", "output / error")
    lines = [
        (str(r.index), str(r.config.get("method_name", "")), labels.file(r), _short(_parameters(r), 40),
         r.status or "", state_label(r), _short(_detail(r), TEXT_WIDTH))
        for r in shown
    ]  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    text = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in [header, *lines]]
    if len(shown) < len(rows):
        counts = counts_text(rows)
        text.append(f"(showing {len(shown)} of {len(rows)} rows, failures always shown: {counts}; every row is in "
                    f"{labels.where()})")  # fmt: skip
    return "\n".join(text)


def static_bundle(batch: Batch, max_rows: int = MAX_ROWS, *, when: float | None = None) -> dict[str, str]:
    """The batch as it is now, as plain HTML and text (what a saved notebook keeps); ``when`` dates a snapshot
    of a batch that has not ended (``as of HH:MM:SS``), so nothing saved claims a state the batch has left."""
    stats, rows = batch.stats, batch.rows()
    labels = Labels.of(batch)
    return {
        "text/html": summary_html(batch, stats, when) + table_html(rows, max_rows, labels=labels),
        "text/plain": summary_text(batch, stats, when) + "\n" + table_text(rows, max_rows, labels=labels),
    }


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
        self.progress = widgets.IntProgress(min=0, max=max(1, len(batch.configs)), layout={"width": "98%"})
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
        super().__init__([self.summary, self.progress, controls, self.table])
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
        ended = stats.completed + stats.failed + stats.cancelled + stats.errors
        style = "danger" if stats.failed or stats.errors else ("success" if stats.done else "info")
        values: dict[Any, dict[str, Any]] = {
            self.summary: {"value": summary_html(self.batch, stats)},
            self.progress: {"value": ended, "bar_style": style, "description": f"{ended}/{stats.configs}"},
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

    With ``wait`` the cell blocks until every job has ended (or ``timeout``); the live view is then replaced by
    the final table, so a notebook run from top to bottom (nbconvert, nbval) keeps only the final state.
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
    # Dated snapshots beside the widget, re-sent as the batch moves, then the final table. With --wait, only once
    # the wait is given up: a wait that ends clears the cell and shows the final table alone.
    dated = [not wait]
    handle = display(live_bundle(view) if dated[0] else widget_bundle(view), raw=True, display_id=True)
    sent = [time.monotonic()]

    def resend() -> None:
        if dated[0] and time.monotonic() - sent[0] >= SNAPSHOT_INTERVAL:
            sent[0] = time.monotonic()
            handle.update(live_bundle(view), raw=True)

    def finish() -> None:
        if dated[0]:
            handle.update(static_bundle(batch), raw=True)

    view.follow(on_done=finish, setup=_keep_parent(), on_render=resend)
    if not wait:
        return
    try:
        batch.wait(timeout)
    except (TimeoutError, KeyboardInterrupt) as exc:  # the live view above keeps following the jobs
        dated[0] = True
        handle.update(live_bundle(view), raw=True)
        _print_lines(notes)
        reason = str(exc) if isinstance(exc, TimeoutError) else "stopped waiting; the jobs go on"
        print(f"{reason} (the table above stays live)")
        return
    view.stop()
    clear_output()
    _print_lines(notes)
    display(static_bundle(batch), raw=True)


def widget_bundle(view: BatchView) -> dict[str, Any]:
    """The live widget alone (what ``--wait`` shows until it gives up, then clears for the final table)."""
    return {WIDGET_MIME: view._repr_mimebundle_()[WIDGET_MIME]}


def live_bundle(view: BatchView) -> dict[str, Any]:
    """The live widget and, for whatever cannot show it (a saved notebook reopened without its kernel,
    nbconvert, GitHub), a snapshot of the batch dated ``as of HH:MM:SS``.

    The widget is never closed once shown: after a reload of the page the widget manager restores it from the
    kernel, live again, and it ends showing the final state."""
    return {**widget_bundle(view), **static_bundle(view.batch, when=time.time())}


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


__all__ = ["MAX_ROWS", "BatchView", "has_kernel", "live_bundle", "pick_rows", "show", "static_bundle"]
