"""The commands of whoever runs the service: the server, the store file and the local worker."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from ..domain.errors import InvalidInputError
from .output import console


def cmd_serve(args: argparse.Namespace) -> int:
    from ..server import serve

    names = ("host", "port", "max_configs", "default_max_running", "default_max_configs")
    options: dict[str, Any] = {k: getattr(args, k) for k in names if hasattr(args, k)}
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


def cmd_store(args: argparse.Namespace) -> int:
    """Check, back up, restore or prune the embedded store file (SQLite's integrity check and online backup
    API; the retention rule of batch records)."""
    from ..domain.home import Home
    from ..schedulers.local import worker_pid
    from ..store import maintenance

    home = Home.open(args.home)
    if args.action == "prune":
        return prune(home.db_path, args.older_than, args.keep, args.vacuum)
    if args.action == "check":
        report = maintenance.check(home.db_path)
    elif args.action == "backup":
        report = maintenance.backup(home.db_path, Path(args.file).expanduser())
    else:
        if worker_pid(home) is not None:
            raise InvalidInputError("restore: the local worker is running; stop it (and the server) first")
        kept = maintenance.restore(Path(args.file).expanduser(), home.db_path)
        console.print(
            f"restored {home.db_path} from {args.file}" + (f"; the old file is {kept}" if kept else ""), soft_wrap=True
        )
        report = maintenance.check(home.db_path)
    for problem in report.problems:
        console.print(f"[red]damaged:[/] {report.path}: {problem}", soft_wrap=True)
    if not report.problems:
        counts = ", ".join(f"{count} {table}" for table, count in report.counts.items())
        console.print(f"ok: {report.path} (schema version {report.schema_version}; {counts})", soft_wrap=True)
    return 1 if report.problems else 0


def prune(path: Path, older_than_days: float, keep: int, vacuum: bool) -> int:
    """The retention rule of batch records (docs/design.md section 14.3): jobs stay, old batch rows go."""
    import time

    from ..store.retention import prune_batches
    from ..store.sqlite import Store

    if not older_than_days >= 0:  # also refuses NaN
        raise InvalidInputError(f"--older-than: must be a number of days, 0 or more, got {older_than_days}")
    if keep < 0:
        raise InvalidInputError(f"--keep: must be 0 or more, got {keep}")
    store = Store(path)
    try:
        report = prune_batches(store, older_than=time.time() - older_than_days * 86400, keep=keep, vacuum=vacuum)
    finally:
        store.close()
    console.print(
        f"pruned {report.removed} batch record(s) older than {older_than_days:g} day(s), kept {report.kept} "
        f"(jobs are kept); {path}: {report.size_before / 1e6:.1f} MB -> {report.size_after / 1e6:.1f} MB"
        + ("" if vacuum else " (--vacuum gives the freed space back to the disk)"),
        soft_wrap=True,
    )
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from ..domain.home import Home
    from ..schedulers.local import stop_worker, worker_pid

    home = Home.open(args.home)
    if args.action == "stop":
        console.print("stopped" if stop_worker(home) else "no worker running")
        return 0
    pid = worker_pid(home)
    console.print(f"local worker of {home.root}: " + (f"running (pid {pid})" if pid else "not running"))
    return 0


def add_commands(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the dsHPC HTTP API over the embedded store")
    serve.add_argument("--host", default=argparse.SUPPRESS, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=argparse.SUPPRESS, help="port (default 8001)")
    serve.add_argument("--methods", action="append", default=[], metavar="DIR", help="register these methods first")
    serve.add_argument("--max-configs", type=int, default=argparse.SUPPRESS, help="configs per call (default 10000)")
    serve.add_argument("--max-body-mb", type=float, default=argparse.SUPPRESS, help="request size (default 64)")
    for kind, metavar, what in (("running", "N", "jobs in progress at once"), ("configs", "M", "configs per call")):
        serve.add_argument(f"--default-max-{kind}", type=int, metavar=metavar, default=argparse.SUPPRESS,
                           help=f"a user's {what} unless set for them (default: no limit)")  # fmt: skip
    # The global options, accepted after ``serve`` too (SUPPRESS keeps a value given before it).
    serve.add_argument("--home", default=argparse.SUPPRESS, help="store directory")
    serve.add_argument("--api-key-env", metavar="VAR", default=argparse.SUPPRESS, help="env var holding the API key")
    serve.add_argument("--scheduler", choices=["local", "slurm"], default=argparse.SUPPRESS, help="where jobs run")
    serve.set_defaults(run=cmd_serve)

    store = commands.add_parser("store", help="check, back up, restore or prune the embedded store file")
    store_actions = store.add_subparsers(dest="action", required=True)
    store_actions.add_parser("check", help="SQLite's integrity check, read-only (exit 1 when damaged)")
    store_actions.add_parser("backup", help="copy the store to a new file, consistently").add_argument("file")
    store_actions.add_parser("restore", help="put a checked backup in place (the old file is kept)").add_argument(
        "file"
    )
    pruning = store_actions.add_parser("prune", help="delete old batch records (never jobs): a retention rule")
    pruning.add_argument("--older-than", type=float, required=True, metavar="DAYS", help="created before this")
    pruning.add_argument("--keep", type=int, default=20, help="the most recent batches kept anyway (default 20)")
    pruning.add_argument("--vacuum", action="store_true", help="then give the freed space back to the disk")
    store.set_defaults(run=cmd_store)

    worker = commands.add_parser("worker", help="the local worker of the embedded store")
    worker.add_argument("action", choices=["status", "stop"])
    worker.set_defaults(run=cmd_worker)
