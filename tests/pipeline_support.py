"""Small methods whose outputs feed each other, for the pipeline tests: a table maker (an output file and a
JSON summary), a scaler (a named input and a parameter from upstream JSON), a byte counter (the seed's single
file), a summer (an array input) and a method that fails on request."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from support import write_method

from dshpc_jupyter.domain.pipeline_models import PipelineDetail
from dshpc_jupyter.front.connection import Connection

READ_INPUTS = """
import json, os, sys, time
def inputs():
    with open(sys.argv[1], encoding="utf-8") as f:
        return json.load(f)
def params():
    with open(sys.argv[-1], encoding="utf-8") as f:
        return json.load(f)
def values(path):
    with open(path, encoding="utf-8") as f:
        return [float(line) for line in f.read().split()]
def write(name, numbers):
    os.makedirs("outputs", exist_ok=True)
    with open(os.path.join("outputs", name), "w", encoding="utf-8") as f:
        f.write("".join(f"{v}\\n" for v in numbers))
"""

MAKE = (
    READ_INPUTS
    + """
p = params()
time.sleep(p["sleep"]) if p["sleep"] else None
numbers = [p["offset"] + i for i in range(1, p["n"] + 1)]
write("table.csv", numbers)
print(json.dumps({"summary": {"mean": sum(numbers) / len(numbers), "n": p["n"]}}))
"""
)

SCALE = (
    READ_INPUTS
    + """
p = params()
numbers = [v * p["factor"] for v in values(inputs()["table"])]
write("scaled.csv", numbers)
print(json.dumps({"total": sum(numbers)}))
"""
)

COUNT = """
import json, os, sys
print(json.dumps({"bytes": os.path.getsize(sys.argv[1])}))
"""

SUM = (
    READ_INPUTS
    + """
print(json.dumps({"total": sum(v for path in inputs()["tables"] for v in values(path))}))
"""
)

FAIL = """
import json, sys
with open(sys.argv[-1], encoding="utf-8") as f:
    fail = json.load(f)["fail"]
print(json.dumps({"ok": not fail}))
sys.exit(1 if fail else 0)
"""

METHODS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "Make Table": (MAKE, [
        {"name": "n", "type": "integer", "required": True},
        {"name": "offset", "type": "number", "required": False, "default": 0},
        {"name": "sleep", "type": "number", "required": False, "default": 0},
    ]),
    "Scale Table": (SCALE, [{"name": "factor", "type": "number", "required": True}]),
    "Count Bytes": (COUNT, []),
    "Sum Tables": (SUM, []),
    "Fail If": (FAIL, [{"name": "fail", "type": "boolean", "required": False, "default": False}]),
}  # fmt: skip


def register(conn: Connection, root: Path, **scripts: str) -> None:
    """Register the pipeline methods (a script replaced by name, e.g. ``Scale_Table=...``)."""
    for name, (script, parameters) in METHODS.items():
        write_method(root, name, scripts.get(name.replace(" ", "_"), script), parameters=parameters)
    conn.register_method(root)


def wait_done(conn: Connection, pipeline_id: str, timeout: float = 90.0) -> PipelineDetail:
    """Poll a pipeline until every step has ended (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        detail = conn.pipeline(pipeline_id)
        if detail.statistics.done:
            return detail
        assert time.monotonic() < deadline, f"pipeline still running: {detail.statistics}"
        time.sleep(0.1)


def chain() -> dict[str, Any]:
    """Three steps: a table, scaled by its own mean (a file and a JSON value), then its scaler's stdout counted."""
    return {
        "make": {"method_name": "Make Table", "parameters": {"n": 4}},
        "scale": {
            "method_name": "Scale Table",
            "file_inputs": {"table": {"$ref": "make", "output": "table.csv"}},
            "parameters": {"factor": {"$ref": "make", "path": "summary/mean"}},
        },
        "count": {"method_name": "Count Bytes", "file_hash": {"$ref": "scale"}},
    }
