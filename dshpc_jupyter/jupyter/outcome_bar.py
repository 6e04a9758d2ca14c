"""The progress bar split by outcome: completed, failed, cancelled and error segments for the configs that have
ended, then running and pending, so a batch with a few failures still shows how much succeeded (a single bar
that turns red at the first failure says neither). Plain HTML, so the live widget, the dated snapshot and the
final table draw the same bar.
"""

from __future__ import annotations

import html
from typing import Final

from ..front.batch import BatchStats

#: Each segment: the BatchStats counter, its label and colour, in the order drawn (ended first, then the rest).
SEGMENTS: Final = (
    ("completed", "completed", "#2e7d32"),
    ("failed", "failed", "#c62828"),
    ("cancelled", "cancelled", "#8a8a8a"),
    ("errors", "errors", "#ef8f00"),
    ("dry_run_rows", "would run", "#9fb8d8"),
    ("running", "running", "#64a0e0"),
    ("pending", "pending", "#cfe0f5"),
    ("queued", "queued", "#e6e6e6"),
)
ENDED: Final = ("completed", "failed", "cancelled", "errors")


def segments(stats: BatchStats) -> list[tuple[str, int]]:
    """The non-empty segments as (label, configs), in drawing order."""
    return [(label, getattr(stats, name)) for name, label, _ in SEGMENTS if getattr(stats, name)]


def ended(stats: BatchStats) -> int:
    """Configs whose job has ended, or that got none."""
    return sum(getattr(stats, name) for name in ENDED)


def bar_html(stats: BatchStats) -> str:
    """The bar: one segment per outcome, as wide as its share of the configs (each names its count on hover),
    and ``ended/configs`` beside it."""
    total = max(1, stats.configs)
    parts = []
    for name, label, colour in SEGMENTS:
        count = getattr(stats, name)
        if count:
            share = f"{100 * count / total:.3f}".rstrip("0").rstrip(".")
            parts.append(
                f'<div class="dshpc-bar-{label.replace(" ", "-")}" title="{count} {html.escape(label)}" '
                f'style="width:{share}%;background:{colour}"></div>'
            )
    track = (
        '<div class="dshpc-bar-track" style="display:flex;flex:1;height:12px;border-radius:3px;overflow:hidden;'
        f'background:#f2f2f2;border:1px solid #d0d0d0">{"".join(parts)}</div>'
    )
    count = f'<span class="dshpc-bar-count" style="min-width:6em">{ended(stats)}/{stats.configs}</span>'
    return f'<div class="dshpc-bar" style="display:flex;align-items:center;gap:8px;margin:4px 0">{track}{count}</div>'


__all__ = ["bar_html", "ended", "segments"]
