"""Standard views of a batch with matplotlib (an optional dependency): where its configs were over time, run time
by parameter, and a Gantt chart of its jobs. Each reads a :attr:`Batch.df` frame and draws on one Axes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from ..domain.errors import InvalidInputError
from .sweep import did_you_mean

if TYPE_CHECKING:
    import pandas as pd

KINDS: Final = ("states", "durations", "gantt")
STATE_COLOURS: Final = {"pending": "#9e9e9e", "running": "#1f5fa8", "completed": "#1e7d32", "failed": "#b3261e"}
#: The columns of ``Batch.df`` that are not parameters.
FRAME_COLUMNS: Final = frozenset(
    ("job_id", "method_name", "file_hash", "function_hash", "parameters", "new_status", "old_status", "message",
     "output", "outcome", "status", "state", "cached", "error", "exit_code", "attempt", "submitted_at", "started_at",
     "finished_at", "queue_position", "duration")
)  # fmt: skip


def pyplot() -> Any:
    """matplotlib's pyplot, or a clear error saying how to get it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Batch.plot() needs matplotlib: pip install matplotlib") from None
    return plt


def plot(frame: pd.DataFrame, kind: str = "states", *, parameter: str | None = None, ax: Any = None) -> Any:
    """Draw one view of a batch's rows; the matplotlib Axes drawn on."""
    if kind not in KINDS:
        raise InvalidInputError(f"kind: {kind!r} is not one of {', '.join(KINDS)}{did_you_mean(kind, KINDS)}")
    if ax is None:
        _, ax = pyplot().subplots(figsize=(8, 4))
    jobs = frame.dropna(subset=["job_id"]).drop_duplicates("job_id")
    if kind == "states":
        _states(jobs, ax)
    elif kind == "durations":
        _durations(frame, parameter, ax)
    else:
        _gantt(jobs, ax)
    return ax


def _states(jobs: pd.DataFrame, ax: Any) -> None:
    """How many jobs were pending, running and ended at each moment (a step chart from every job's times)."""
    import pandas as pd

    events = sorted(t for column in ("submitted_at", "started_at", "finished_at") for t in jobs[column].dropna())
    if not events:
        ax.set_title("no job has a recorded time yet")
        return
    counts: dict[str, list[int]] = {"pending": [], "running": [], "completed": [], "failed": []}
    for moment in events:
        started = jobs["started_at"].le(moment).fillna(False)
        finished = jobs["finished_at"].le(moment).fillna(False)
        submitted = jobs["submitted_at"].le(moment).fillna(False)
        ok = jobs["state"].eq("completed")
        counts["pending"].append(int((submitted & ~started & ~finished).sum()))
        counts["running"].append(int((started & ~finished).sum()))
        counts["completed"].append(int((finished & ok).sum()))
        counts["failed"].append(int((finished & ~ok).sum()))
    times = pd.to_datetime(pd.Series(events))
    for state, values in counts.items():
        ax.step(times, values, where="post", label=state, color=STATE_COLOURS[state])
    ax.set_ylabel("jobs")
    ax.set_title("jobs by state over time")
    ax.legend()


def _durations(frame: pd.DataFrame, parameter: str | None, ax: Any) -> None:
    """Run time (seconds) of each config against one parameter (default: the first parameter column)."""
    parameters = [c for c in frame.columns if c not in FRAME_COLUMNS]
    if parameter is None:
        if not parameters:
            raise InvalidInputError("parameter: the batch's configs have no parameter to plot durations by")
        parameter = str(parameters[0])
    if parameter not in parameters:
        raise InvalidInputError(
            f"parameter: {parameter!r} is not a parameter of this batch{did_you_mean(parameter, map(str, parameters))}"
        )
    ran = frame.dropna(subset=["duration"])
    ax.scatter(ran[parameter].astype(str), ran["duration"].astype(float), color=STATE_COLOURS["running"])
    ax.set_xlabel(parameter)
    ax.set_ylabel("duration (s)")
    ax.set_title(f"run time by {parameter}")


def _gantt(jobs: pd.DataFrame, ax: Any) -> None:
    """One bar per job from its start to its end (still running: to now), coloured by how it ended."""
    import pandas as pd

    ran = jobs.dropna(subset=["started_at"]).sort_values("started_at")
    now = pd.Timestamp.now(tz="UTC")
    for position, (_, job) in enumerate(ran.iterrows()):
        end = job["finished_at"] if not pd.isna(job["finished_at"]) else now
        state = str(job["state"])
        colour = STATE_COLOURS.get(state, STATE_COLOURS["running"] if state == "in progress" else "#9e9e9e")
        ax.barh(position, (end - job["started_at"]).total_seconds() / 86400, left=job["started_at"], color=colour)
    ax.set_yticks(range(len(ran)), [str(j)[:8] for j in ran["job_id"]])
    ax.set_xlabel("time")
    ax.set_title("jobs from start to end")
