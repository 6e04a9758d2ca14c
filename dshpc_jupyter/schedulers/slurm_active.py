"""What the Slurm scheduler knows of its jobs in progress between two polls by change, kept up to date from the
store's change stamps, so a poll reads and compares only what changed (docs/design.md section 14.1).

A poll looks at the jobs whose row changed since the last one, the jobs of the tasks whose ``squeue`` line
changed, and the jobs it is watching: waiting to be submitted, their task running (packed jobs may end while it
runs on, seen in their result files), their task not in the queue (ended, or not there yet), or just updated.
Every other job's task shows the state its job already has: nothing to do for it.
"""

from __future__ import annotations

from ..domain.jobs import ActiveJob
from .base import JobLedger


class ActiveView:
    """Our jobs in progress as of the store's change stamp ``cursor``, by job and by task."""

    def __init__(self, scheduler: str) -> None:
        self.scheduler = scheduler
        self.cursor: int | None = None
        self.jobs: dict[str, ActiveJob] = {}
        self.by_task: dict[str, set[str]] = {}
        #: Jobs looked at every poll until they no longer need it (see the module docstring).
        self.watch: set[str] = set()
        #: The generation of the queue snapshot last compared (``QueueSnapshot.changed_since``).
        self.generation = 0

    def refresh(self, ledger: JobLedger) -> set[str]:
        """Read what changed in the store since the last refresh; the ids of our jobs in progress that did (all
        of them the first time)."""
        self.cursor, changed, others = ledger.active_changes(self.scheduler, self.cursor)
        for job_id in others:
            self._drop(job_id)
        for job in changed:
            self._drop(job.job_id)
            self.jobs[job.job_id] = job
            if job.scheduler_id is not None:
                self.by_task.setdefault(job.scheduler_id, set()).add(job.job_id)
        return {job.job_id for job in changed}

    def of_tasks(self, tasks: set[str]) -> set[str]:
        """The ids of our jobs in these array tasks."""
        return {job_id for task in tasks for job_id in self.by_task.get(task, ())}

    def _drop(self, job_id: str) -> None:
        old = self.jobs.pop(job_id, None)
        self.watch.discard(job_id)
        if old is not None and old.scheduler_id is not None:
            mates = self.by_task.get(old.scheduler_id)
            if mates is not None:
                mates.discard(job_id)
                if not mates:
                    del self.by_task[old.scheduler_id]
