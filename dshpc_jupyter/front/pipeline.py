"""A pipeline from Python (docs/design.md section 10.4): submitted from explicit steps or a ``steps:`` document,
reopened by id, waited for, seen as a DataFrame (a ``step`` column), its JSON outputs per step, and drawn as a
Mermaid graph (JupyterLab renders Mermaid in Markdown), steps coloured by state with counts per swept step."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..domain.errors import DshpcError
from ..domain.pipeline_models import STEP_STATES, PipelineDetail
from .connection import Connection, current
from .pipeline_sweep import Instance, PipelineExpansion, expand_pipeline, is_pipeline_document

if TYPE_CHECKING:
    import pandas as pd

#: Mermaid fill colours per state (the live table's palette).
COLOURS = {
    "waiting": "#eeeeee", "pending": "#fff3cd", "running": "#cfe2ff", "completed": "#d1e7dd",
    "failed": "#f8d7da", "cancelled": "#e2e3e5", "error": "#f5c2c7",
}  # fmt: skip
#: Where a swept step is drawn when its instances are in several states: the first of these it has.
PRECEDENCE = ("error", "failed", "running", "pending", "waiting", "cancelled", "completed")


class Pipeline:
    """A submitted pipeline and where it is (``refresh`` asks the service again)."""

    def __init__(
        self,
        connection: Connection,
        detail: PipelineDetail,
        instances: Mapping[str, Instance] | None = None,
        graph: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.connection = connection
        self.detail = detail
        self.instances = dict(instances or {name: Instance(name, {}) for name in detail.steps})
        self.graph_edges = dict(graph or {name: s.depends_on for name, s in detail.steps.items()})

    @classmethod
    def submit(
        cls, steps: Mapping[str, Any], *, connection: Connection | None = None, base: str | Path | None = None
    ) -> Pipeline:
        """Submit explicit steps (``{name: step}``) or a document with ``steps:`` (sweeps, ``$gather``)."""
        connection = connection or current()
        if is_pipeline_document(steps):
            expansion: PipelineExpansion = expand_pipeline(steps, upload=connection.upload_files, base_dir=base)
            detail = connection.submit_pipeline(expansion.steps)
            return cls(connection, detail, expansion.instances, expansion.graph)
        return cls(connection, connection.submit_pipeline(steps))

    @classmethod
    def load(cls, pipeline_id: str, *, connection: Connection | None = None) -> Pipeline:
        """Reopen a pipeline by id (its steps are shown one per node: the document is not kept)."""
        connection = connection or current()
        return cls(connection, connection.pipeline(pipeline_id))

    @property
    def pipeline_id(self) -> str:
        return self.detail.pipeline_id

    @property
    def done(self) -> bool:
        return self.detail.statistics.done

    def refresh(self) -> Pipeline:
        self.detail = self.connection.pipeline(self.pipeline_id)
        return self

    def wait(self, timeout: float | None = None, interval: float = 0.5) -> Pipeline:
        """Poll until every step has ended; DshpcError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.refresh().done:
            if deadline is not None and time.monotonic() > deadline:
                raise DshpcError(f"pipeline {self.pipeline_id}: not done after {timeout} s "
                                 f"({self.detail.statistics.model_dump()})")  # fmt: skip
            time.sleep(interval)
        return self

    def cancel(self) -> Pipeline:
        self.detail = self.connection.cancel_pipeline(self.pipeline_id)
        return self

    # --- views -------------------------------------------------------------------------------------------

    @property
    def df(self) -> pd.DataFrame:
        """One row per step instance: ``step`` (the document's step), ``instance``, its swept values, state."""
        import pandas as pd

        rows = []
        for name, step in self.detail.steps.items():
            instance = self.instances.get(name, Instance(name, {}))
            rows.append({"step": instance.step, "instance": name, **instance.labels, "method_name": step.method_name,
                         "state": step.state, "status": step.status, "outcome": step.outcome, "reason": step.reason,
                         "job_id": step.job_id, "output_files": dict(step.output_files)})  # fmt: skip
        return pd.DataFrame(rows)

    def outputs(self, step: str | None = None) -> pd.DataFrame:
        """The JSON outputs of completed instances (of one document step), flattened into columns."""
        import pandas as pd

        frame = self.df
        if step is not None:
            if step not in set(frame["step"]):
                raise DshpcError(f"step: no step {step!r} (steps: {', '.join(dict.fromkeys(frame['step']))})")
            frame = frame[frame["step"] == step]
        frame = frame[frame["state"] == "completed"]
        parsed = [_json(self.detail.steps[name].output) for name in frame["instance"]]
        outputs = pd.json_normalize(parsed) if parsed else pd.DataFrame()
        outputs.index = frame.index
        keep = [c for c in frame.columns if c not in ("method_name", "status", "reason", "job_id", "output_files")]
        return pd.concat([frame[keep], outputs], axis=1).reset_index(drop=True)

    def counts(self) -> dict[str, dict[str, int]]:
        """Instances per state of each document step, in graph order."""
        counts: dict[str, dict[str, int]] = {name: {} for name in self.graph_edges}
        for name, step in self.detail.steps.items():
            owner = counts.setdefault(self.instances.get(name, Instance(name, {})).step, {})
            owner[step.state] = owner.get(step.state, 0) + 1
        return counts

    def graph(self) -> str:
        """The pipeline as Mermaid text: a node per document step (its method and counts per state, coloured by
        its most telling state), an edge per dependency."""
        lines = ["flowchart LR"]
        ids = {name: f"s{i}" for i, name in enumerate(self.graph_edges)}
        methods = {self.instances.get(n, Instance(n, {})).step: s.method_name for n, s in self.detail.steps.items()}
        for name, counts in self.counts().items():
            shown = ", ".join(f"{counts[s]} {s}" for s in STEP_STATES if counts.get(s))
            label = f"{name}<br/>{methods.get(name, '')}<br/>{shown}".replace('"', "'")
            state = next((s for s in PRECEDENCE if counts.get(s)), "waiting")
            lines.append(f'    {ids[name]}["{label}"]:::{state}')
        for name, deps in self.graph_edges.items():
            lines.extend(f"    {ids[dep]} --> {ids[name]}" for dep in deps if dep in ids)
        lines.extend(f"    classDef {state} fill:{colour},stroke:#555" for state, colour in COLOURS.items())
        return "\n".join(lines)

    def progress(self) -> list[str]:
        """One line per document step: its instances per state."""
        return [
            f"{name}: " + ", ".join(f"{n} {s}" for s, n in counts.items()) for name, counts in self.counts().items()
        ]

    def _repr_markdown_(self) -> str:
        stats = self.detail.statistics
        head = (f"**pipeline {self.pipeline_id}**: {stats.total_steps} steps, {stats.completed} completed, "
                f"{stats.new_jobs} new jobs, {stats.cached} cached")  # fmt: skip
        lines = "\n".join(f"- {line}" for line in self.progress())
        return f"{head}\n\n```mermaid\n{self.graph()}\n```\n\n{lines}\n"

    def __repr__(self) -> str:
        return f"<Pipeline {self.pipeline_id}: " + "; ".join(self.progress()) + ">"


def _json(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "")
    except ValueError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}
