"""``Batch.df`` and ``Batch.outputs()``: pandas frames built from the batch's columns (:mod:`.batch_columns`).

The state keeps one list per field, current as answers arrive, so a view is pandas work on whole columns
(categories made once per column, times converted per column, durations from the two time columns), not a pass
per row: 100,000 rows in a fraction of a second (bench/views.py). No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import orjson

from ..domain import status as st
from ..domain.bulk import no_gc_pauses
from .batch_columns import ColumnsSnapshot
from .batch_files import input_columns
from .batch_parameters import ParameterColumn

if TYPE_CHECKING:
    import pandas as pd

#: The columns every ``Batch.df`` has, in order; parameter, input and ``output_files`` columns follow.
BASE_COLUMNS: Final = (
    "job_id", "method_name", "file_hash", "function_hash", "parameters", "new_status", "old_status", "message",
    "output", "outcome", "status", "state", "cached", "error", "exit_code", "attempt", "submitted_at", "started_at",
    "finished_at", "queue_position", "duration",
)  # fmt: skip


def rows_frame(
    snapshot: ColumnsSnapshot, parameters: Mapping[str, ParameterColumn], file_names: Mapping[str, str | None]
) -> pd.DataFrame:
    """One row per config in request order: the seed's result fields, the job's current state and timings, one
    column per parameter (defaults filled in from the method's spec), per named input, and ``output_files``."""
    import pandas as pd

    c = snapshot.columns
    with no_gc_pauses():
        started, finished = _times(c.started_at), _times(c.finished_at)
        columns: dict[str, Any] = {
            "job_id": c.job_id,
            "method_name": pd.Categorical(c.method_name),
            "file_hash": pd.Categorical(c.file_hash),
            "function_hash": pd.Categorical(c.function_hash),
            "parameters": c.parameters,
            "new_status": pd.Categorical(c.new_status),
            "old_status": pd.Categorical(c.old_status),
            "message": pd.Categorical(c.message),
            "output": c.output,
            "outcome": pd.Categorical(c.outcome, categories=st.OUTCOMES),
            "status": pd.Categorical(c.status),
            "state": pd.Categorical(c.state, categories=st.ROW_STATES),
            "cached": [outcome == st.CACHED for outcome in c.outcome],
            "error": c.error,
            "exit_code": pd.array(c.exit_code, dtype="Int64"),
            "attempt": pd.array(c.attempt, dtype="Int64"),
            "submitted_at": _times(c.created_at),
            "started_at": started,
            "finished_at": finished,
            "queue_position": pd.array(c.queue_position, dtype="Int64"),
            "duration": pd.array((finished - started).dt.total_seconds(), dtype="Float64"),
        }
        columns.update(_extra_columns(snapshot, parameters, file_names))
        return pd.DataFrame(columns)


def outputs_frame(
    snapshot: ColumnsSnapshot, parameters: Mapping[str, ParameterColumn], file_names: Mapping[str, str | None]
) -> pd.DataFrame:
    """The JSON outputs of completed rows as columns beside each config's method, file and parameters (and the
    other columns :func:`rows_frame` has after ``duration``), same index; an output column named like one of
    those gets ``output.`` in front. Outputs that are not JSON objects land in ``value`` (other JSON) or
    ``text`` (not JSON). Nested objects are flattened (``pandas.json_normalize``: ``a.b``); flat ones, the
    usual case, go straight to a frame, several times faster."""
    import pandas as pd

    c = snapshot.columns
    with no_gc_pauses():
        keep: dict[str, Any] = {
            "method_name": pd.Categorical(c.method_name),
            "file_hash": pd.Categorical(c.file_hash),
            **_extra_columns(snapshot, parameters, file_names),
        }
        parsed = [
            _parse_output(out) if state == "completed" else {} for out, state in zip(c.output, c.state, strict=True)
        ]
        if not any(parsed):
            outputs = pd.DataFrame(index=range(len(parsed)))
        elif any(isinstance(value, dict) for output in parsed for value in output.values()):
            outputs = pd.json_normalize(parsed)
        else:
            outputs = pd.DataFrame(parsed)
        outputs.columns = [f"output.{name}" if name in keep else str(name) for name in outputs.columns]
        return pd.concat([pd.DataFrame(keep), outputs], axis=1)


def _extra_columns(
    snapshot: ColumnsSnapshot, parameters: Mapping[str, ParameterColumn], file_names: Mapping[str, str | None]
) -> dict[str, Any]:
    """The columns after ``duration``: one per parameter (``param_NAME`` when a base column has the name; a
    category when every value given is a string), then the inputs' and ``output_files``."""
    import pandas as pd

    columns: dict[str, Any] = {}
    for name, parameter in parameters.items():
        column = name if name not in BASE_COLUMNS else f"param_{name}"
        columns[column] = pd.Series(parameter.values, dtype="category" if parameter.strings else None)
    columns.update(input_columns(snapshot.configs, snapshot.input_names, file_names))
    columns["output_files"] = pd.Series([{} if f is None else dict(f) for f in snapshot.columns.output_files],
                                        dtype=object)  # fmt: skip
    return columns


def _times(values: Sequence[datetime | None]) -> Any:
    import pandas as pd

    return pd.to_datetime(pd.Series(list(values), dtype=object), utc=True, cache=False)


def _parse_output(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses and the standard parser reads (integers past 64 bits, NaN)
            value = json.loads(text)
        except ValueError:
            return {"text": text.strip()}
    return value if isinstance(value, dict) else {"value": value}
