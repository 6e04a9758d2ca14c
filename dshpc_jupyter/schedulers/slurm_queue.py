"""``squeue``'s answer parsed by difference, so a poll of 100,000 tasks of which a few changed parses the few.

Slurm prints every task of ours at each poll (the command's own cost, which stays); the lines printed as they
were last time are not parsed again: the same text is the same answer; else only the lines not seen before
are parsed (one set lookup per line), and the lines are compared as a whole only when the count says some
task left the queue (docs/design.md section 14.1).
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
        self._line_of: dict[str, str] = {}
        self.entries: dict[str, QueueEntry] = {}
        #: One more for each answer that differed from the one before.
        self.generation = 0
        self._changes: deque[tuple[int, set[str]]] = deque(maxlen=HISTORY)

    def update(self, text: str) -> dict[str, QueueEntry]:
        """Task id -> entry for ``text`` (``squeue -h -r -o SQUEUE_FORMAT``); a new dict when anything changed,
        never the one returned before changed in place (a caller may still hold it)."""
        if text == self._text:  # the usual answer of a queue where nothing moved: one comparison of bytes
            return self.entries
        self._text = text
        lines = text.splitlines()
        known = self._lines
        added = [line for line in lines if line not in known]
        if not added and len(lines) == len(known):
            return self.entries  # the same lines in another order
        new = parse_squeue("\n".join(added))
        entries = {**self.entries, **new}
        for line in added:
            task = line.strip().split("|", 1)[0]
            if task in new:
                known.discard(self._line_of.get(task, ""))
                self._line_of[task] = line
                known.add(line)
        changed = set(new)
        if len(known) != len(lines):  # tasks left the queue (or lines repeat, or do not parse): look at each
            present = set(lines)
            for task, line in [(t, line) for t, line in self._line_of.items() if line not in present]:
                del self._line_of[task]
                known.discard(line)
                entries.pop(task, None)
                changed.add(task)
        self.entries = entries
        self.generation += 1
        self._changes.append((self.generation, changed))
        return entries

    def changed_since(self, generation: int) -> set[str] | None:
        """The task ids whose line changed (appeared, changed or went) in the answers after ``generation``; None
        when that is further back than the history kept (the caller then compares every task)."""
        if generation == self.generation:
            return set()
        if not self._changes or self._changes[0][0] > generation + 1:
            return None
        return set().union(*(tasks for made, tasks in self._changes if made > generation))
