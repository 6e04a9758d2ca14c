"""The commands on work submitted: jobs and batches."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.table import Table

from ..front.batch_lookup import load_detail
from ..front.connection import Connection
from .output import connection_for, console, print_batch, short


def cmd_jobs(args: argparse.Namespace) -> int:
    with connection_for(args) as connection:
        if args.action == "show":
            console.print_json(connection.get_job(args.job_id).model_dump_json())
            return 0
        if args.action == "cancel":
            console.print_json(connection.cancel(args.job_ids).model_dump_json())
            return 0
        if args.action == "forget":
            forgotten = connection.forget(args.job_ids)
            console.print_json(forgotten.model_dump_json())
            return 1 if forgotten.in_progress or forgotten.not_found else 0
        if args.action == "logs":
            return print_logs(connection, args.job_id, "stderr" if args.stderr else "stdout", args.follow)
        if args.action == "outputs":
            outputs = Table("path", "file_hash", "size")
            for path, file_hash in connection.get_job(args.job_id).output_files.items():
                outputs.add_row(path, file_hash, str(connection.get_file(file_hash).file_size))
            console.print(outputs)
            return 0
        jobs = connection.list_jobs(status=args.status, limit=args.limit)
        owned = any(job.owner is not None for job in jobs)
        table = Table("job_id", *(["owner"] if owned else []), "method", "status", "created", "exit", "parameters")
        for job in jobs:
            table.add_row(
                job.job_id, *([job.owner or ""] if owned else []), job.method_name, job.status,
                f"{job.created_at:%Y-%m-%d %H:%M:%S}", "" if job.exit_code is None else str(job.exit_code),
                short(json.dumps(job.parameters), 40),
            )  # fmt: skip
        console.print(table)
    return 0


def print_logs(connection: Connection, job_id: str, stream: str, follow: bool) -> int:
    """Write the log as it comes, unstyled (it is the job's own text: rich markup in it must stay as it is)."""
    for piece in connection.logs(job_id, stream=stream, follow=follow):
        sys.stdout.write(piece)
        sys.stdout.flush()
    return 0


def cmd_batches(args: argparse.Namespace) -> int:
    with connection_for(args) as connection:
        if args.action == "show":
            detail = load_detail(connection, args.batch_id)
            print_batch(connection, detail.results, detail.statistics, {j.job_id: j for j in detail.jobs})
            console.print(f"now: {detail.live.model_dump()}")
            return 0
        if args.action == "cancel":
            console.print_json(connection.cancel_batch(args.batch_id).model_dump_json())
            return 0
        found = connection.batches(limit=args.limit)
        owned = any(b.owner is not None for b in found)
        table = Table("batch_id", "name", *(["owner"] if owned else []), "created", "configs", "completed",
                      "in progress", "failed submissions")  # fmt: skip
        for b in found:
            s = b.statistics
            table.add_row(
                b.batch_id, b.name or "", *([b.owner or ""] if owned else []), f"{b.created_at:%Y-%m-%d %H:%M:%S}",
                str(b.total_jobs), str(s.completed_jobs), str(s.in_progress_jobs), str(s.failed_submissions),
            )  # fmt: skip
        console.print(table)
    return 0


def add_commands(commands: Any) -> None:
    jobs = commands.add_parser("jobs", help="list, show and cancel jobs")
    jobs_actions = jobs.add_subparsers(dest="action", required=True)
    jobs_list = jobs_actions.add_parser("list", help="the most recent jobs")
    jobs_list.add_argument("--status", help="only jobs with this status code (e.g. F, CD, R)")
    jobs_list.add_argument("--limit", type=int, default=50)
    jobs_actions.add_parser("show", help="one job as JSON").add_argument("job_id")
    jobs_actions.add_parser("cancel", help="cancel jobs").add_argument("job_ids", nargs="+")
    jobs_actions.add_parser("outputs", help="the output files a job wrote").add_argument("job_id")
    jobs_actions.add_parser(
        "forget", help="remove ended jobs from the cache, with the files nothing else needs (cancel running ones first)"
    ).add_argument("job_ids", nargs="+")
    logs = jobs_actions.add_parser("logs", help="a job's stdout (or stderr), while it runs and after")
    logs.add_argument("job_id")
    logs.add_argument("--stderr", action="store_true", help="the job's stderr instead of its stdout")
    logs.add_argument("--follow", action="store_true", help="keep printing what the job writes until it ends")
    jobs.set_defaults(run=cmd_jobs)

    batches = commands.add_parser("batches", help="list, show and cancel batches")
    batches_actions = batches.add_subparsers(dest="action", required=True)
    batches_actions.add_parser("list", help="the most recent batches").add_argument("--limit", type=int, default=50)
    show = batches_actions.add_parser("show", help="a batch with its jobs' current state")
    show.add_argument("batch_id", help="its id, or its name while only one batch has it")
    batches_actions.add_parser("cancel", help="cancel every job of a batch").add_argument("batch_id")
    batches.set_defaults(run=cmd_batches)
