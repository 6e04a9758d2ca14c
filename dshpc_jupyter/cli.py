"""``dshpc-jupyter``: the command line for the same service the notebook uses.

Every command works on the embedded store (``--home`` or ``$DSHPC_HOME``) or, with ``--url`` (or
``$DSHPC_URL``), on a remote dsHPC server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .domain import status as st
from .domain.errors import DshpcError, InvalidInputError
from .domain.models import BatchStatistics, JobRecord, MultiJobResult
from .examples import data_dir, data_files, methods_dir
from .front.batch import Batch
from .front.connection import Connection, connect
from .front.sweep import load_file

console = Console(highlight=False)
POLL_S = 0.2


def _connection(args: argparse.Namespace) -> Connection:
    api_key = os.environ.get(args.api_key_env) if args.api_key_env else None
    return connect(args.url, api_key=api_key, home=args.home, scheduler=args.scheduler)


# --- shared output -----------------------------------------------------------------------------------------


def _short(text: str | None, width: int = 60) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _first_line(text: str | None) -> str:
    return next((line for line in (text or "").splitlines() if line.strip()), "")


def _statistics_table(stats: BatchStatistics) -> Table:
    table = Table(title="Statistics", show_header=False, title_justify="left")
    for field in BatchStatistics.model_fields:
        table.add_row(field, str(getattr(stats, field)))
    return table


def _results_table(
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
            detail, style = _short(job.output if job else result.output), ""
        elif job and st.is_final(job.status):
            detail, style = _short(_first_line(job.error)), "red"
        else:
            detail, style = result.message, "red" if result.outcome in st.UNSERVED_OUTCOMES else ""
        table.add_row(
            str(index), result.method_name or "", names.get(result.file_hash or "", _short(result.file_hash, 12)),
            _short(json.dumps(result.parameters), 40), f"{status} {result.outcome}".strip(), detail, style=style,
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


def _print_batch(
    connection: Connection,
    results: Sequence[MultiJobResult],
    stats: BatchStatistics,
    jobs: Mapping[str, JobRecord] | None,
) -> None:
    names = {f.file_hash: f.filename or f.file_hash[:12] for f in connection.list_files()}
    console.print(_results_table(results, jobs, names))
    console.print(_statistics_table(stats))


def _print_submitted(batch: Batch, *, followed: bool) -> None:
    """A submitted batch's tables: with its jobs' records if it was followed, else the service's answers."""
    rows = batch.rows()
    jobs = {r.job.job_id: r.job for r in rows if r.job is not None} if followed else None
    _print_batch(batch.connection, [r.result for r in rows if r.result is not None], batch.statistics, jobs)


# --- commands ----------------------------------------------------------------------------------------------


def demo_configs(hashes: dict[str, str]) -> list[dict[str, Any]]:
    """The demo batch: new, cached and failing jobs, an unknown method and invalid parameters."""
    configs: list[dict[str, Any]] = [
        {"file_hash": hashes[name], "method_name": "Example Python Method", "parameters": {"uppercase": upper}}
        for name in ("hello.txt", "poem.txt")
        for upper in (False, True)
    ]
    configs += [
        {"file_hash": hashes["poem.txt"], "method_name": "Word Count (bash)", "parameters": {"unit": unit}}
        for unit in ("lines", "words")
    ]
    configs.append({"file_hash": hashes["poem.txt"], "method_name": "Text Statistics", "parameters": {"top": 3}})
    configs += [
        {"file_hash": hashes[name], "method_name": "Threshold Filter", "parameters": {"threshold": threshold}}
        for name in ("readings_a.csv", "readings_b.csv")
        for threshold in (0.5, 0.9)
    ]
    configs.append(
        {"file_hash": hashes["readings_a.csv"], "method_name": "Threshold Filter", "parameters": {"threshold": -1}}
    )
    configs.append({"file_hash": hashes["hello.txt"], "method_name": "Spectral Analysis", "parameters": {}})
    configs.append(
        {"file_hash": hashes["hello.txt"], "method_name": "Example Python Method", "parameters": {"uppercase": "yes"}}
    )
    return configs


def cmd_demo(args: argparse.Namespace) -> int:
    with _connection(args) as connection:
        console.print(f"[bold]dshpc-jupyter demo[/] on {connection.location}")
        methods = connection.register_method(methods_dir())
        console.print(f"registered {len(methods)} example methods: {', '.join(m.name for m in methods)}")
        files = data_files()
        hashes = dict(zip((p.name for p in files), connection.upload_files(files), strict=True))
        console.print(f"uploaded {len(files)} example files (stored once, whatever the number of uploads)")
        configs = demo_configs(hashes)
        warm = Batch.submit(configs[:1], connection=connection, poll=POLL_S)
        if any(r.result is None or r.result.outcome != st.CACHED for r in warm.rows()):
            console.print("running one job first, so that the batch below finds it in the cache")
            follow(warm)
        batch = Batch.submit(configs, connection=connection, poll=POLL_S)
        console.print(f"submitted batch {batch.batch_id} with {batch.statistics.total_jobs} configs")
        follow(batch, args.timeout)
        _print_submitted(batch, followed=True)
        console.print("Run the demo again: every successful job is then served from the cache.")
    return 0


def cmd_examples(args: argparse.Namespace) -> int:
    """Copy the example methods and data into a folder, so the README's paths work from wherever one stands."""
    target = Path(args.folder)
    for name, source in (("methods", methods_dir()), ("data", data_dir())):
        shutil.copytree(source, target / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    console.print(f"example methods in {target / 'methods'}, example data in {target / 'data'}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    with _connection(args) as connection:
        # a sweep's local files are uploaded when missing (for a dry run too: a dry run submits no job)
        expansion = load_file(args.file, upload=connection.upload_files)
        for note in expansion.notes():
            console.print(note)
        batch = Batch.submit(expansion.configs, connection=connection, poll=POLL_S, dry_run=args.dry_run)
        followed = args.wait and not args.dry_run
        if followed:
            follow(batch, args.timeout)
        else:
            batch.stop()  # the jobs go on; the tables show what the service answered
        if batch.batch_id:
            console.print(f"batch {batch.batch_id}")
        _print_submitted(batch, followed=followed)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    with _connection(args) as connection:
        if args.action == "register":
            for path in args.paths:
                for method in connection.register_method(path):
                    console.print(f"registered {method.name!r} version {method.version} ({method.function_hash[:12]})")
            return 0
        if args.action == "versions":
            methods = connection.method_versions(args.name)
        else:
            methods = connection.list_methods(latest_only=not args.all)
        table = Table("name", "version", "function_hash", "latest", "parameters", "description")
        for m in methods:
            params = ", ".join(f"{p.name}: {p.type}" + ("*" if p.required else "") for p in m.parameters)
            table.add_row(m.name, m.version, m.function_hash[:12], "yes" if m.latest else "", params, m.description)
        console.print(table)
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    with _connection(args) as connection:
        if args.action == "upload":
            for path, digest in zip(args.paths, connection.upload_files(args.paths), strict=True):
                console.print(f"{digest}  {path}")
            return 0
        if args.action == "download":
            console.print(str(connection.download(args.file_hash, args.dest)))
            return 0
        table = Table("file_hash", "filename", "size", "content_type", "uploaded")
        for f in connection.list_files():
            table.add_row(
                f.file_hash,
                f.filename or "",
                str(f.file_size),
                f.content_type or "",
                f"{f.upload_date:%Y-%m-%d %H:%M:%S}",
            )
        console.print(table)
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    with _connection(args) as connection:
        if args.action == "show":
            console.print_json(connection.get_job(args.job_id).model_dump_json())
            return 0
        if args.action == "cancel":
            console.print_json(connection.cancel(args.job_ids).model_dump_json())
            return 0
        if args.action == "outputs":
            outputs = Table("path", "file_hash", "size")
            for path, file_hash in connection.get_job(args.job_id).output_files.items():
                outputs.add_row(path, file_hash, str(connection.get_file(file_hash).file_size))
            console.print(outputs)
            return 0
        table = Table("job_id", "method", "status", "created", "exit", "parameters")
        for job in connection.list_jobs(status=args.status, limit=args.limit):
            table.add_row(
                job.job_id, job.method_name, job.status, f"{job.created_at:%Y-%m-%d %H:%M:%S}",
                "" if job.exit_code is None else str(job.exit_code), _short(json.dumps(job.parameters), 40),
            )  # fmt: skip
        console.print(table)
    return 0


def cmd_batches(args: argparse.Namespace) -> int:
    with _connection(args) as connection:
        if args.action == "show":
            detail = connection.batch(args.batch_id)
            _print_batch(connection, detail.results, detail.statistics, {j.job_id: j for j in detail.jobs})
            console.print(f"now: {detail.live.model_dump()}")
            return 0
        if args.action == "cancel":
            console.print_json(connection.cancel_batch(args.batch_id).model_dump_json())
            return 0
        table = Table("batch_id", "created", "configs", "completed", "in progress", "failed submissions")
        for b in connection.batches(limit=args.limit):
            s = b.statistics
            table.add_row(
                b.batch_id, f"{b.created_at:%Y-%m-%d %H:%M:%S}", str(b.total_jobs), str(s.completed_jobs),
                str(s.in_progress_jobs), str(s.failed_submissions),
            )  # fmt: skip
        console.print(table)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .domain.home import Home
    from .schedulers.local import stop_worker, worker_pid

    home = Home.open(args.home)
    if args.action == "stop":
        console.print("stopped" if stop_worker(home) else "no worker running")
        return 0
    pid = worker_pid(home)
    console.print(f"local worker of {home.root}: " + (f"running (pid {pid})" if pid else "not running"))
    return 0


def cmd_store(args: argparse.Namespace) -> int:
    """Check, back up or restore the embedded store file (SQLite's integrity check and online backup API)."""
    from pathlib import Path

    from .domain.home import Home
    from .schedulers.local import worker_pid
    from .store import maintenance

    home = Home.open(args.home)
    if args.action == "check":
        report = maintenance.check(home.db_path)
    elif args.action == "backup":
        report = maintenance.backup(home.db_path, Path(args.file).expanduser())
    else:
        if worker_pid(home) is not None:
            raise InvalidInputError("restore: the local worker is running; stop it (and the server) first")
        kept = maintenance.restore(Path(args.file).expanduser(), home.db_path)
        console.print(f"restored {home.db_path} from {args.file}" + (f"; the old file is {kept}" if kept else ""))
        report = maintenance.check(home.db_path)
    for problem in report.problems:
        console.print(f"[red]damaged:[/] {report.path}: {problem}", soft_wrap=True)
    if not report.problems:
        counts = ", ".join(f"{count} {table}" for table, count in report.counts.items())
        console.print(f"ok: {report.path} (schema version {report.schema_version}; {counts})", soft_wrap=True)
    return 1 if report.problems else 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    options: dict[str, Any] = {k: getattr(args, k) for k in ("host", "port", "max_configs") if hasattr(args, k)}
    if hasattr(args, "max_body_mb"):
        options["max_body_bytes"] = int(args.max_body_mb * (1 << 20))
    if args.api_key_env:
        options["api_key"] = os.environ.get(args.api_key_env)
        if not options["api_key"]:
            raise InvalidInputError(
                f"--api-key-env: ${args.api_key_env} is not set (refusing to serve without the key)"
            )
    serve(args.home, methods=args.methods, scheduler=args.scheduler or "local", **options)
    return 0


# --- parser ------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dshpc-jupyter", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--home", help="store directory (default: $DSHPC_HOME or the per-user data directory)")
    parser.add_argument("--url", help="a dsHPC server to use instead of the embedded store (default: $DSHPC_URL)")
    parser.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the server's API key")
    parser.add_argument("--scheduler", choices=["local", "slurm"], help="where new jobs run (default: local)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="register the examples, run a mixed batch, print results")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the batch (default 300)")
    demo.set_defaults(run=cmd_demo)

    examples = commands.add_parser("examples", help="copy the example methods and data into a folder")
    examples.add_argument("folder", nargs="?", default="examples", help="where to (default: ./examples)")
    examples.set_defaults(run=cmd_examples)

    submit = commands.add_parser("submit", help="submit a batch from a YAML or JSON file")
    submit.add_argument("file", help="the seed's request ({jobs: [...]}), a list of configs, or a sweep (YAML/JSON)")
    submit.add_argument("--wait", action="store_true", help="wait until every job has ended")
    submit.add_argument("--dry-run", action="store_true", help="say what would happen; submit nothing")
    submit.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    submit.set_defaults(run=cmd_submit)

    methods = commands.add_parser("methods", help="register and list methods")
    methods_actions = methods.add_subparsers(dest="action", required=True)
    register = methods_actions.add_parser("register", help="register method directories (or directories of them)")
    register.add_argument("paths", nargs="+")
    listing = methods_actions.add_parser("list", help="list methods (latest versions)")
    listing.add_argument("--all", action="store_true", help="every version, not only the latest")
    versions = methods_actions.add_parser("versions", help="every version of one method")
    versions.add_argument("name")
    methods.set_defaults(run=cmd_methods)

    files = commands.add_parser("files", help="upload and list input files")
    files_actions = files.add_subparsers(dest="action", required=True)
    files_actions.add_parser("upload", help="upload files (only those missing)").add_argument("paths", nargs="+")
    files_actions.add_parser("list", help="list stored files")
    download = files_actions.add_parser("download", help="write a stored file (an output, say) to DEST")
    download.add_argument("file_hash")
    download.add_argument("dest", help="a file to write, or a folder to put it in under its name")
    files.set_defaults(run=cmd_files)

    jobs = commands.add_parser("jobs", help="list, show and cancel jobs")
    jobs_actions = jobs.add_subparsers(dest="action", required=True)
    jobs_list = jobs_actions.add_parser("list", help="the most recent jobs")
    jobs_list.add_argument("--status", help="only jobs with this status code (e.g. F, CD, R)")
    jobs_list.add_argument("--limit", type=int, default=50)
    jobs_actions.add_parser("show", help="one job as JSON").add_argument("job_id")
    jobs_actions.add_parser("cancel", help="cancel jobs").add_argument("job_ids", nargs="+")
    jobs_actions.add_parser("outputs", help="the output files a job wrote").add_argument("job_id")
    jobs.set_defaults(run=cmd_jobs)

    batches = commands.add_parser("batches", help="list, show and cancel batches")
    batches_actions = batches.add_subparsers(dest="action", required=True)
    batches_actions.add_parser("list", help="the most recent batches").add_argument("--limit", type=int, default=50)
    batches_actions.add_parser("show", help="a batch with its jobs' current state").add_argument("batch_id")
    batches_actions.add_parser("cancel", help="cancel every job of a batch").add_argument("batch_id")
    batches.set_defaults(run=cmd_batches)

    serve = commands.add_parser("serve", help="run the dsHPC HTTP API over the embedded store")
    serve.add_argument("--host", default=argparse.SUPPRESS, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=argparse.SUPPRESS, help="port (default 8001)")
    serve.add_argument("--methods", action="append", default=[], metavar="DIR", help="register these methods first")
    serve.add_argument("--max-configs", type=int, default=argparse.SUPPRESS, help="configs per call (default 10000)")
    serve.add_argument("--max-body-mb", type=float, default=argparse.SUPPRESS, help="request size (default 64)")
    # The global options, accepted after ``serve`` too (SUPPRESS keeps a value given before it).
    serve.add_argument("--home", default=argparse.SUPPRESS, help="store directory")
    serve.add_argument("--api-key-env", metavar="VAR", default=argparse.SUPPRESS, help="env var holding the API key")
    serve.add_argument("--scheduler", choices=["local", "slurm"], default=argparse.SUPPRESS, help="where jobs run")
    serve.set_defaults(run=cmd_serve)

    store = commands.add_parser("store", help="check, back up or restore the embedded store file")
    store_actions = store.add_subparsers(dest="action", required=True)
    store_actions.add_parser("check", help="SQLite's integrity check, read-only (exit 1 when damaged)")
    store_actions.add_parser("backup", help="copy the store to a new file, consistently").add_argument("file")
    store_actions.add_parser("restore", help="put a checked backup in place (the old file is kept)").add_argument(
        "file"
    )
    store.set_defaults(run=cmd_store)

    worker = commands.add_parser("worker", help="the local worker of the embedded store")
    worker.add_argument("action", choices=["status", "stop"])
    worker.set_defaults(run=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except DshpcError as exc:
        console.print(f"[red]error:[/] {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted (submitted jobs keep running; see `dshpc-jupyter jobs list`)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
