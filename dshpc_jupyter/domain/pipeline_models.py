"""Wire models of pipelines (docs/design.md section 10): ``POST /pipelines`` and what it and
``GET /pipelines/{pipeline_id}`` answer."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .models import Model
from .status import Outcome

#: Where a step is: ``waiting`` for its dependencies (no job yet), its job's row state, ``cancelled`` (a
#: dependency failed, or the pipeline was cancelled before it ran) or ``error`` (no job could be made).
StepState = Literal["waiting", "pending", "running", "completed", "failed", "cancelled", "error"]
STEP_STATES: tuple[StepState, ...] = ("waiting", "pending", "running", "completed", "failed", "cancelled", "error")


class PipelineRequest(Model):
    """``POST /pipelines`` body: ``{"steps": {name: step}}``, steps as in docs/design.md section 10.1."""

    steps: dict[str, Any] = Field(description="Step name to step: a config with optional $ref inputs/parameters "
                                  "and 'after'.")  # fmt: skip


class PipelineStep(Model):
    """One step now: its job (once released), the job's status, the step's state and why."""

    method_name: str
    depends_on: list[str] = Field(default_factory=list)
    job_id: str | None = None
    #: The job's status code; ``PD`` while waiting for the dependencies, ``CA`` when cancelled by one.
    status: str | None = None
    state: StepState
    #: ``waiting for a, b``, ``dependency a failed``, the job's message or error.
    reason: str | None = None
    #: How the step got its job: ``cached`` (served from an identical earlier job), ``new``, ... (section 2.3).
    outcome: Outcome | None = None
    output: str | None = None
    output_files: dict[str, str] = Field(default_factory=dict)


class PipelineStatistics(Model):
    """Steps per state, and how many jobs the pipeline made and found in the cache."""

    total_steps: int
    waiting: int = 0
    pending: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    error: int = 0
    new_jobs: int = 0
    cached: int = 0

    @property
    def done(self) -> bool:
        """Every step has ended (completed, failed, cancelled or in error)."""
        return self.waiting + self.pending + self.running == 0


class PipelineDetail(Model):
    """A pipeline now: each step's state and the counts."""

    pipeline_id: str
    created_at: float
    #: Who submitted it on a server for a team (docs/design.md section 11.3); None on the embedded engine.
    owner: str | None = None
    steps: dict[str, PipelineStep]
    statistics: PipelineStatistics
