"""The live table's log panel: a row's stdout or stderr, read on demand under the table.

The table shows one line per job; when that line is not enough (a failure's traceback, a job's progress) a
person types the row's ``#``, picks the stream and clicks Show. It reads what is there now
(``Batch.logs(row, follow=False)``: never blocks the kernel on a running job) and keeps the last
:data:`MAX_LINES` lines, so a chatty job cannot flood the notebook (docs/design.md section 6).
"""

from __future__ import annotations

import html
from typing import Final

import ipywidgets as widgets

from ..domain.errors import DshpcError
from ..front.batch import Batch

MAX_LINES: Final = 200
STREAMS: Final = ("stdout", "stderr")
PRE_STYLE: Final = "max-height:300px;overflow:auto;background:#f7f7f7;padding:4px;margin:2px 0;white-space:pre-wrap"
ERROR_STYLE: Final = "color:#b3261e"


def last_lines(text: str, limit: int = MAX_LINES) -> tuple[str, int]:
    """The last ``limit`` lines of ``text`` and how many lines were left out before them."""
    lines = text.splitlines()
    return "\n".join(lines[-limit:]), max(0, len(lines) - limit)


class RowLogs(widgets.VBox):  # type: ignore[misc]
    """Row number, stream toggle and a Show button above the log text of that row's job."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self.row = widgets.BoundedIntText(value=0, min=0, max=max(0, len(batch.configs) - 1),
                                          description="log of row", layout={"width": "180px"})  # fmt: skip
        self.row.add_class("dshpc-log-row")
        self.stream = widgets.ToggleButtons(options=list(STREAMS), value="stdout", style={"button_width": "70px"})
        self.show_button = widgets.Button(description="Show", icon="file-text-o", layout={"width": "auto"},
                                          tooltip="show the last lines this job wrote")  # fmt: skip
        self.show_button.add_class("dshpc-log-show")
        self.hide_button = widgets.Button(description="Hide", layout={"width": "auto"})
        self.text = widgets.HTML()
        self.text.add_class("dshpc-log-text")
        super().__init__(
            [widgets.HBox([self.row, self.stream, self.show_button, self.hide_button],
                          layout={"align_items": "center"}), self.text]
        )  # fmt: skip
        self.show_button.on_click(lambda _: self.show())
        self.hide_button.on_click(lambda _: self.hide())

    def show(self) -> str:
        """Fill the panel with the chosen row's stream as it is now; a row without a job or a service that
        cannot answer is said in the panel (a click handler's exception would reach no one). Returns the text
        shown."""
        row, stream = int(self.row.value), str(self.stream.value)
        try:
            text = self.batch.logs(row, stream=stream, follow=False)
        except (DshpcError, OSError) as exc:
            self.text.value = f'<span style="{ERROR_STYLE}">⚠ {html.escape(str(exc))}</span>'
            return ""
        shown, cut = last_lines(text)
        head = f"row {row} · {stream}" + (f" · the last {MAX_LINES} lines ({cut} earlier left out)" if cut else "")
        body = html.escape(shown) if shown else f"(no {stream} yet)"
        self.text.value = f'<div style="color:#666">{html.escape(head)}</div><pre style="{PRE_STYLE}">{body}</pre>'
        return shown

    def hide(self) -> None:
        self.text.value = ""


__all__ = ["MAX_LINES", "RowLogs", "last_lines"]
