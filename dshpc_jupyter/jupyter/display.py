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
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import ipywidgets as widgets

from ..front.batch import Batch, BatchStats, Row

MAX_ROWS: Final = 30
MIN_INTERVAL: Final = 0.25
IDLE_REFRESH: Final = 1.0
WIDGET_MIME: Final = "application/vnd.jupyter.widget-view+json"
ROW_COLOURS: Final = {"failed": "#fde2e1", "error": "#fff1d6", "in progress": "#eef4fb", "queued": "#f4f4f4"}
STATE_MARKS: Final = {"completed": "✓", "failed": "✗", "error": "!", "in progress": "…", "queued": "·", "dry run": "?"}
TEXT_WIDTH: Final = 60


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
    """What to show of a row: the error for a failure, else the output, else the service's message."""
    return row.error or row.output or row.message


def _duration(row: Row) -> str:
    return "" if row.duration is None else f"{row.duration:.2f} s"


def title(batch: Batch) -> str:
    if batch.dry_run:
        return "dsHPC dry run"
    ids = ", ".join(batch.batch_ids[:3]) + (" …" if len(batch.batch_ids) > 3 else "")
    return f"dsHPC batch {ids}" if ids else "dsHPC batch"


def summary_text(batch: Batch, stats: BatchStats) -> str:
    problem = f" · polling problem: {batch.last_error}" if batch.last_error and not stats.done else ""
    return f"{title(batch)}: {stats.summary()}{problem}"


def summary_html(batch: Batch, stats: BatchStats) -> str:
    colour = "#b3261e" if stats.failed or stats.errors else ("#1e7d32" if stats.done else "#1f5fa8")
    problem = (
        f' <span style="color:#b3261e">polling problem: {html.escape(batch.last_error)}</span>'
        if batch.last_error and not stats.done
        else ""
    )
    return (
        f'<div class="dshpc-summary"><b>{html.escape(title(batch))}</b>: '
        f'<span style="color:{colour}">{html.escape(stats.summary())}</span>{problem}</div>'
    )


#: On every cell, not in a <style> block: JupyterLab strips <style> from outputs and right-aligns table cells.
CELL_STYLE = "padding:2px 8px;text-align:left;vertical-align:top"


def table_html(rows: Sequence[Row], max_rows: int = MAX_ROWS) -> str:
    shown = pick_rows(rows, max_rows)
    head = "".join(f'<th style="{CELL_STYLE}">{h}</th>' for h in ("#", "method", "file", "parameters", "status",
                                                                    "state", "duration", "output / error"))  # fmt: skip
    body = []
    for row in shown:
        colour = ROW_COLOURS.get(row.state)
        style = f' style="background:{colour}"' if colour else ""
        detail = _detail(row)
        mark = STATE_MARKS.get(row.state, "")
        cached = " (cached)" if row.result is not None and row.result.outcome == "cached" else ""
        cells = (
            str(row.index),
            html.escape(str(row.config.get("method_name", ""))),
            f"<code>{html.escape(str(row.config.get('file_hash', ''))[:12])}</code>",
            f"<code>{html.escape(_parameters(row))}</code>",
            html.escape(row.status or ""),
            f"{mark} {html.escape(row.state)}{cached}",
            _duration(row),
        )
        tds = [f'<td style="{CELL_STYLE}">{cell}</td>' for cell in cells]
        error_style = ";color:#b3261e" if row.error else ""
        shown_detail = html.escape(_short(detail, 120))
        tds.append(f'<td title="{html.escape(detail)}" style="{CELL_STYLE}{error_style}">{shown_detail}</td>')
        body.append(f'<tr class="dshpc-{row.state.replace(" ", "-")}"{style}>{"".join(tds)}</tr>')
    more = (
        f'<div class="dshpc-more">showing {len(shown)} of {len(rows)} rows (failures always shown); '
        "every row is in <code>batch.df</code></div>"
        if len(shown) < len(rows)
        else ""
    )
    return (
        f'<table class="dshpc-table" style="border-collapse:collapse;font-size:90%"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>{more}"
    )


def table_text(rows: Sequence[Row], max_rows: int = MAX_ROWS) -> str:
    shown = pick_rows(rows, max_rows)
    header = ("#", "method", "file", "parameters", "status", "state", "output / error")
    lines = [
        (str(r.index), str(r.config.get("method_name", "")), str(r.config.get("file_hash", ""))[:12],
         _short(_parameters(r), 40), r.status or "", r.state, _short(_detail(r), TEXT_WIDTH))
        for r in shown
    ]  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    text = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in [header, *lines]]
    if len(shown) < len(rows):
        text.append(f"(showing {len(shown)} of {len(rows)} rows, failures always shown; every row is in batch.df)")
    return "\n".join(text)


def static_bundle(batch: Batch, max_rows: int = MAX_ROWS) -> dict[str, str]:
    """The batch as it is now, as plain HTML and text (what a saved notebook keeps)."""
    stats, rows = batch.stats, batch.rows()
    return {
        "text/html": summary_html(batch, stats) + table_html(rows, max_rows),
        "text/plain": summary_text(batch, stats) + "\n" + table_text(rows, max_rows),
    }


# --- the live widget ---------------------------------------------------------------------------------------


class BatchView(widgets.VBox):  # type: ignore[misc]
    """A summary line and a progress bar above the results table, following a Batch until it is done."""

    def __init__(self, batch: Batch, *, max_rows: int = MAX_ROWS, min_interval: float = MIN_INTERVAL) -> None:
        self.batch = batch
        self.max_rows = max_rows
        self.min_interval = min_interval
        self.summary = widgets.HTML()
        self.progress = widgets.IntProgress(min=0, max=max(1, len(batch.configs)), layout={"width": "98%"})
        self.table = widgets.HTML()
        super().__init__([self.summary, self.progress, self.table])
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.render()

    def render(self) -> None:
        """Bring the widgets up to date with the Batch (only changed values are sent to the front end)."""
        stats, rows = self.batch.stats, self.batch.rows()
        ended = stats.completed + stats.failed + stats.errors
        style = "danger" if stats.failed or stats.errors else ("success" if stats.done else "info")
        values: dict[Any, dict[str, Any]] = {
            self.summary: {"value": summary_html(self.batch, stats)},
            self.progress: {"value": ended, "bar_style": style, "description": f"{ended}/{stats.configs}"},
            self.table: {"value": table_html(rows, self.max_rows)},
        }
        for widget, traits in values.items():
            changed = {k: v for k, v in traits.items() if getattr(widget, k) != v}
            if changed:
                with widget.hold_sync():
                    for key, value in changed.items():
                        setattr(widget, key, value)

    def follow(self, on_done: Callable[[], None] | None = None, setup: Callable[[], None] | None = None) -> None:
        """Re-render from a daemon thread as the Batch changes (and every second, for the clock) until it is
        done; then render once more and call ``on_done`` in that thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(on_done, setup), name="dshpc-view", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following (the Batch goes on polling)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, on_done: Callable[[], None] | None, setup: Callable[[], None] | None) -> None:
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
    widget_view = {WIDGET_MIME: view._repr_mimebundle_()[WIDGET_MIME]}
    if not wait:
        _print_lines(notes)
        handle = display({**widget_view, "text/plain": summary_text(batch, batch.stats)}, raw=True, display_id=True)

        def finish() -> None:  # the final state as plain HTML/text in the cell; the widget is no longer needed
            handle.update(static_bundle(batch), raw=True)
            view.close()

        view.follow(on_done=finish, setup=_keep_parent())
        return
    display(widget_view, raw=True)
    view.follow()
    try:
        batch.wait(timeout)
    except (TimeoutError, KeyboardInterrupt) as exc:  # the live view above keeps following the jobs
        _print_lines(notes)
        reason = str(exc) if isinstance(exc, TimeoutError) else "stopped waiting; the jobs go on"
        print(f"{reason} (the table above stays live)")
        return
    view.stop()
    view.close()
    clear_output()
    _print_lines(notes)
    display(static_bundle(batch), raw=True)


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


__all__ = ["MAX_ROWS", "BatchView", "has_kernel", "pick_rows", "show", "static_bundle"]
