"""``squeue``'s answer parsed by difference, so a poll of 100,000 tasks of which a few changed parses the few.

Slurm prints every task of ours at each poll (the command's own cost, which stays); the lines printed as they
were last time are not parsed again: a set difference of the lines, then only the new or changed ones parsed
(docs/design.md section 14.1).
"""

from __future__ import annotations

from .slurm_cli import QueueEntry, parse_squeue


class QueueSnapshot:
    """The latest parsed ``squeue`` answer, updated from the next one by its changed lines only."""

    def __init__(self) -> None:
        self._lines: set[str] = set()
        self.entries: dict[str, QueueEntry] = {}

    def update(self, text: str) -> dict[str, QueueEntry]:
        """Task id -> entry for ``text`` (``squeue -h -r -o SQUEUE_FORMAT``); a new dict when anything changed,
        never the one returned before changed in place (a caller may still hold it)."""
        lines = set(text.splitlines())
        if lines == self._lines:
            return self.entries
        entries = dict(self.entries)
        for line in self._lines - lines:
            entries.pop(line.strip().split("|", 1)[0], None)
        entries.update(parse_squeue("\n".join(lines - self._lines)))
        self._lines, self.entries = lines, entries
        return entries
