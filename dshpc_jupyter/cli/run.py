"""The commands that run work: the demo, the examples folder and ``submit``."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from ..domain import status as st
from ..domain.retries import RESUBMIT_MODES
from ..examples import data_dir, data_files, methods_dir
from ..front.batch import Batch
from ..front.sweep import load_file
from .output import POLL_S, connection_for, console, follow, print_submitted
from .pipelines import pipeline_document, submit_pipeline


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
    with connection_for(args) as connection:
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
        print_submitted(batch, followed=True)
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
    document = pipeline_document(args.file)
    with connection_for(args) as connection:
        if document is not None:
            return submit_pipeline(args, connection, document)
        # a sweep's local files are uploaded when missing (for a dry run too: a dry run submits no job)
        expansion = load_file(args.file, upload=connection.upload_files)
        for note in expansion.notes():
            console.print(note)
        batch = Batch.submit(
            expansion.configs, connection=connection, poll=POLL_S, dry_run=args.dry_run, retry=args.retry,
            resubmit=args.resubmit, force=args.rerun, priority=args.priority, name=args.name,
        )  # fmt: skip
        followed = args.wait and not args.dry_run
        if followed:
            follow(batch, args.timeout)
        else:
            batch.stop()  # the jobs go on; the tables show what the service answered
        if batch.batch_id:
            console.print(f"batch {batch.batch_id}" + (f" named {batch.name!r}" if batch.name else ""))
        print_submitted(batch, followed=followed)
    return 0


def add_commands(commands: Any) -> None:
    demo = commands.add_parser("demo", help="register the examples, run a mixed batch, print results")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the batch (default 300)")
    demo.set_defaults(run=cmd_demo)

    examples = commands.add_parser("examples", help="copy the example methods and data into a folder")
    examples.add_argument("folder", nargs="?", default="examples", help="where to (default: ./examples)")
    examples.set_defaults(run=cmd_examples)

    submit = commands.add_parser("submit", help="submit a batch from a YAML or JSON file")
    submit.add_argument(
        "file", help="the seed's request ({jobs: [...]}), a list of configs, a sweep, or a pipeline (steps:)"
    )
    submit.add_argument("--wait", action="store_true", help="wait until every job has ended")
    submit.add_argument("--dry-run", action="store_true", help="say what would happen; submit nothing")
    submit.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    submit.add_argument("--retry", type=int, metavar="N", help="retry each new job up to N times after a time limit, "
                        "out of memory, a lost runner, a preemption or a boot failure")  # fmt: skip
    submit.add_argument("--resubmit", choices=RESUBMIT_MODES, default="failed",
                        help="which failed jobs run again: failed (default), retriable or never")  # fmt: skip
    submit.add_argument("--rerun", action="store_true", help="run every config again, even when cached")
    submit.add_argument("--priority", type=int, default=0, help="new jobs start by priority (higher first; default 0)")
    submit.add_argument("--name", help="record the batch under this name ('batches show NAME' finds it)")
    submit.set_defaults(run=cmd_submit)
