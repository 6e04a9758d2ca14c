"""What the commands print: the results and statistics tables, and a batch followed with a progress bar."""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections.abc import Mapping, Sequence

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..domain import status as st
from ..domain.failures import failure_line
from ..domain.models import BatchStatistics, JobRecord, MultiJobResult
from ..front.batch import Batch
from ..front.connection import Connection, connect

console = Console(highlight=False)
POLL_S = 0.2


def connection_for(args: argparse.Namespace) -> Connection:
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    return connect(args.url, api_key=api_key, home=args.home, scheduler=args.scheduler)


def short(text: str | None, width: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def statistics_table(stats: BatchStatistics) -> Table:
    table = Table(title="Statistics", show_header=False, title_justify="left")
    for field in BatchStatistics.model_fields:
        table.add_row(field, str(getattr(stats, field)))
    return table


def results_table(
    results: Sequence[MultiJobResult], jobs: Mapping[str, JobRecord] | None, names: Mapping[str, str]
) -> Table:
    """One line per config. ``jobs``: the jobs' records once followed (an ended job shows its output or error, a
    cached one its output); ``None``: the service's answers only (each config's message)."""
    table = Table(title="Results", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
    columns = {"#": (2, 1), "method": (10, 4), "file": (8, 3), "parameters": (10, 4), "status": (13, 3),
               "output / message": (12, 7)}  # fmt: skip
    for column, (least, ratio) in columns.items():
        table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=least, ratio=ratio)
    for index, result in enumerate(results):
        job = (jobs or {}).get(result.job_id or "")
        status = job.status if job else (result.new_status or "")
        if jobs is not None and status == st.COMPLETED:
            detail, style = short(job.output if job else result.output), ""
        elif job and st.is_final(job.status):
            detail, style = short(failure_line(job.error, job.status)), "red"
        else:
            detail, style = result.message, "red" if result.outcome in st.UNSERVED_OUTCOMES else ""
        table.add_row(
            str(index), result.method_name or "", names.get(result.file_hash or "", short(result.file_hash, 12)),
            short(json.dumps(result.parameters), 40), f"{status} {result.outcome}".strip(), detail, style=style,
        )  # fmt: skip
    return table


def follow(batch: Batch, timeout: float | None = None) -> None:
    """Block in ``Batch.wait`` (its poller asks for every unfinished job in one call per interval), with a
    progress bar following the batch's changes. After ``timeout`` seconds it returns: the jobs go on, and the
    tables printed next show where each one is."""
    columns = (TextColumn("jobs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    stop = threading.Event()
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("jobs", total=len(batch.configs))

        def show_progress() -> None:
            version = -1
            while not stop.is_set():
                ended = sum(1 for row in batch.rows() if row.state in st.FINAL_ROW_STATES)
                progress.update(bar, completed=ended)
                version = batch.wait_for_change(version, POLL_S)

        updater = threading.Thread(target=show_progress, name="dshpc-cli-progress", daemon=True)
        updater.start()
        try:
            batch.wait(timeout)
        except TimeoutError:
            pass  # not an error here: the tables show the jobs still in progress
        finally:
            stop.set()
            updater.join()


def print_batch(
    connection: Connection,
    results: Sequence[MultiJobResult],
    stats: BatchStatistics,
    jobs: Mapping[str, JobRecord] | None,
) -> None:
    names = {f.file_hash: f.filename or f.file_hash[:12] for f in connection.list_files()}
    console.print(results_table(results, jobs, names))
    console.print(statistics_table(stats))


def print_submitted(batch: Batch, *, followed: bool) -> None:
    """A submitted batch's tables: with its jobs' records if it was followed, else the service's answers."""
    rows = batch.rows()
    jobs = {r.job.job_id: r.job for r in rows if r.job is not None} if followed else None
    print_batch(batch.connection, [r.result for r in rows if r.result is not None], batch.statistics, jobs)
