"""``squeue``'s answer parsed by difference, so a poll of 100,000 tasks of which a few changed parses the few.

Slurm prints every task of ours at each poll (the command's own cost, which stays); the lines printed as they
were last time are not parsed again: the same text is the same answer, else a set difference of the lines,
then only the new or changed ones parsed (docs/design.md section 14.1).
"""

from __future__ import annotations

from collections import deque

from .slurm_cli import QueueEntry, parse_squeue

#: How many past answers' changed tasks are kept for ``changed_since``; a poller further behind compares all.
HISTORY = 64


class QueueSnapshot:
    """The latest parsed ``squeue`` answer, updated from the next one by its changed lines only."""

    def __init__(self) -> None:
        self._text = ""
        self._lines: set[str] = set()
        self.entries: dict[str, QueueEntry] = {}
        #: One more for each answer that differed from the one before.
        self.generation = 0
        self._changes: deque[tuple[int, set[str]]] = deque(maxlen=HISTORY)

    def update(self, text: str) -> dict[str, QueueEntry]:
        """Task id -> entry for ``text`` (``squeue -h -r -o SQUEUE_FORMAT``); a new dict when anything changed,
        never the one returned before changed in place (a caller may still hold it)."""
        if text == self._text:  # the usual answer of a queue where nothing moved: one comparison of bytes
            return self.entries
        lines = set(text.splitlines())
        self._text = text
        if lines == self._lines:
            return self.entries
        entries = dict(self.entries)
        gone = {line.strip().split("|", 1)[0] for line in self._lines - lines}
        for task in gone:
            entries.pop(task, None)
        new = parse_squeue("\n".join(lines - self._lines))
        entries.update(new)
        self._lines, self.entries = lines, entries
        self.generation += 1
        self._changes.append((self.generation, gone | new.keys()))
        return entries

    def changed_since(self, generation: int) -> set[str] | None:
        """The task ids whose line changed (appeared, changed or went) in the answers after ``generation``; None
        when that is further back than the history kept (the caller then compares every task)."""
        if generation == self.generation:
            return set()
        if not self._changes or self._changes[0][0] > generation + 1:
            return None
        return set().union(*(tasks for made, tasks in self._changes if made > generation))
