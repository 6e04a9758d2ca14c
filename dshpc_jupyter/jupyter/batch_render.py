"""A Batch rendered for people: the summary line, the results table and the dated static snapshot, as HTML
and as text. The live widget (:mod:`.display`), the static output a saved notebook keeps and the terminal all
render from here, so they always say the same thing.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from ..domain.failures import failure_line
from ..front.batch import Batch, BatchStats, Row
from ..front.batch_views import OUTCOME_LABELS
from .outcome_bar import bar_html

MAX_ROWS: Final = 30
ROW_COLOURS: Final = {"failed": "#fde2e1", "error": "#fff1d6", "in progress": "#eef4fb", "queued": "#f4f4f4"}
STATE_MARKS: Final = {"completed": "✓", "failed": "✗", "error": "!", "in progress": "…", "queued": "·", "dry run": "?"}
TEXT_WIDTH: Final = 60


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
    how = OUTCOME_LABELS.get(outcome or "")
    label = f"{label} ({how})" if how and row.state != "dry run" else label
    position = row.job.queue_position if row.job is not None else None
    return f"{label} · #{position} in queue" if position is not None and row.status == "PD" else label


def _duration(row: Row) -> str:
    return "" if row.duration is None else f"{row.duration:.2f} s"


def title(batch: Batch) -> str:
    """The heading: the batch's name (if it has one) and its ids."""
    if batch.dry_run:
        return f"dsHPC {batch.name!r}" if batch.name else "dsHPC"  # the summary line says "dry run: ..."
    ids = ", ".join(batch.batch_ids[:3]) + (" …" if len(batch.batch_ids) > 3 else "")
    named = f" {batch.name!r}" if batch.name else ""
    if not ids:
        return f"dsHPC batch{named}"
    return f"dsHPC batch{named} ({ids})" if named else f"dsHPC batch {ids}"


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
        "text/html": summary_html(batch, stats, when) + bar_html(stats) + table_html(rows, max_rows, labels=labels),
        "text/plain": summary_text(batch, stats, when) + "\n" + table_text(rows, max_rows, labels=labels),
    }
