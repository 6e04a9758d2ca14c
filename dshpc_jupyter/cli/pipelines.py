"""The commands of pipelines (docs/design.md section 10): ``submit`` of a ``steps:`` file lands here, and
``pipelines show|cancel ID`` look at one afterwards."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from ..domain.errors import InvalidInputError
from ..front.connection import Connection
from ..front.pipeline import Pipeline
from ..front.pipeline_sweep import is_pipeline_document
from ..front.sweep import parse_text
from .output import connection_for, console


def pipeline_document(path: str) -> Any | None:
    """The document of a ``submit`` file when it is a pipeline (``steps:``), else None."""
    try:
        document = parse_text(Path(path).expanduser().read_text(encoding="utf-8"))
    except (OSError, InvalidInputError):
        return None  # the batch reader reports it
    return document if is_pipeline_document(document) else None


def submit_pipeline(args: argparse.Namespace, connection: Connection, document: Any) -> int:
    if args.dry_run:
        raise InvalidInputError("--dry-run: not available for a pipeline (its later steps depend on outputs)")
    pipeline = Pipeline.submit(document, connection=connection, base=Path(args.file).expanduser().parent)
    console.print(f"pipeline {pipeline.pipeline_id} with {pipeline.detail.statistics.total_steps} steps")
    if args.wait:
        pipeline.wait(args.timeout)
    print_pipeline(pipeline)
    return 0 if not (pipeline.detail.statistics.failed or pipeline.detail.statistics.error) else 1


def print_pipeline(pipeline: Pipeline) -> None:
    table = Table("step", "method", "state", "status", "outcome", "reason")
    for name, step in pipeline.detail.steps.items():
        table.add_row(name, step.method_name, step.state, step.status or "", step.outcome or "", step.reason or "")
    console.print(table)
    for line in pipeline.progress():
        console.print(line)


def cmd_show(args: argparse.Namespace) -> int:
    with connection_for(args) as connection:
        print_pipeline(Pipeline.load(args.pipeline_id, connection=connection))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    with connection_for(args) as connection:
        print_pipeline(Pipeline.load(args.pipeline_id, connection=connection).cancel())
    return 0


def add_commands(commands: Any) -> None:
    group = commands.add_parser("pipelines", help="look at or cancel a pipeline (submit one with `submit FILE`)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="each step's state now")
    show.add_argument("pipeline_id")
    show.set_defaults(run=cmd_show)
    cancel = actions.add_parser("cancel", help="cancel the waiting steps and the running jobs")
    cancel.add_argument("pipeline_id")
    cancel.set_defaults(run=cmd_cancel)
