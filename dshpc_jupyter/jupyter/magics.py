"""IPython magics: ``%load_ext dshpc_jupyter`` registers ``%dshpc_connect``, ``%%dshpc_batch``, ``%%dshpc_method``,
``%dshpc_form``, ``%dshpc_methods``, ``%dshpc_files``, ``%dshpc_jobs`` and ``%dshpc_batches``.

A mistake in a cell (bad YAML, an unknown option or variable, a malformed config, a service that says no) is
raised as IPython's ``UsageError``: one line in the cell, no traceback, and the cell counts as failed so "run
all" stops there. Each magic's ``%name?`` help has examples.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from ..domain.batch_names import check_batch_name
from ..domain.errors import DshpcError
from ..domain.hashing import sha256_file
from ..domain.retries import RESUBMIT_MODES
from ..front import connection as connections
from ..front.batch import DEFAULT_POLL, Batch, batches
from ..front.pipeline import Pipeline
from ..front.pipeline_sweep import is_pipeline_document
from ..front.sweep import did_you_mean, expand, parse_text
from .display import show
from .method_cell import parse_cell, register_cell
from .pipeline_display import show_pipeline

if TYPE_CHECKING:
    import pandas as pd

    from .form import JobForm


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Turn the errors a user can fix into one ``UsageError`` line (bugs keep their traceback)."""
    try:
        yield
    except UsageError:
        raise
    except (DshpcError, ValueError, OSError, ImportError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(message) from None


def _parse(function: Callable[..., Any], line: str) -> Any:
    """The magic's arguments; a mistyped option gets the closest real one suggested."""
    try:
        return parse_argstring(function, line)
    except UsageError as exc:
        message = str(exc)
        if "unrecognized arguments:" not in message:
            raise
        options = [o for action in function.parser._actions for o in action.option_strings]  # type: ignore[attr-defined]
        unknown = [word for word in message.split("unrecognized arguments:", 1)[1].split() if word.startswith("-")]
        hint = did_you_mean(unknown[0].split("=", 1)[0], options) if unknown else ""
        raise UsageError(f"{message.strip()}{hint}") from None


def _unquoted(text: str | None) -> str | None:
    """An option's value without the quotes that grouped its words (IPython's splitting keeps them)."""
    if text is not None and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _check_out_and_poll(args: Any) -> None:
    if args.out is not None and not args.out.isidentifier():
        raise UsageError(f"--out: {args.out!r} is not a valid variable name")
    if args.poll is not None and args.poll <= 0:
        raise UsageError(f"--poll: must be a positive number of seconds, got {args.poll}")


def _hash_and_check(connection: connections.Connection, missing: list[str]) -> Callable[[Sequence[Path]], list[str]]:
    """For a dry run: hash local files without uploading them, noting those the service lacks."""

    def hash_only(paths: Sequence[Path]) -> list[str]:
        hashes = [sha256_file(p) for p in paths]
        missing.extend(dict.fromkeys(connection.check_hashes(hashes).missing_hashes))
        return hashes

    return hash_only


@magics_class
class DshpcMagics(Magics):
    """The dsHPC magics. ``%load_ext dshpc_jupyter`` registers them."""

    @property
    def namespace(self) -> dict[str, Any]:
        """The user's variables (where ``--out`` binds and ``--from`` looks)."""
        assert self.shell is not None, "magics are used from a shell"
        return self.shell.user_ns  # type: ignore[no-any-return]

    @magic_arguments()
    @argument("--url", help="A dsHPC server (e.g. http://127.0.0.1:8001); without it, the embedded engine.")
    @argument("--api-key-env", metavar="VAR", help="The environment variable that holds the server's API key.")
    @argument("--token-env", metavar="VAR", help="The environment variable that holds your user token.")
    @argument("--home", help="The embedded engine's home directory (default: $DSHPC_HOME or the user data dir).")
    @argument("--scheduler", help="Where the embedded engine runs jobs: local (default) or slurm.")
    @line_magic
    def dshpc_connect(self, line: str) -> None:
        """Choose the dsHPC service that the other magics and ``dshpc_jupyter.batches()`` use.

        Examples::

            %dshpc_connect                                   # the embedded engine, store in $DSHPC_HOME
            %dshpc_connect --home ~/dshpc-project            # the embedded engine, another home
            %dshpc_connect --scheduler slurm                 # embedded store, jobs on Slurm
            %dshpc_connect --url http://127.0.0.1:8001 --api-key-env DSHPC_API_KEY
            %dshpc_connect --url http://127.0.0.1:8001 --token-env DSHPC_TOKEN    # a server's user
        """
        args = _parse(self.dshpc_connect, line)
        with _one_line_errors():
            if args.api_key_env and args.token_env:
                raise UsageError("--token-env: give --api-key-env or --token-env, not both")
            api_key = None
            for option, variable in (("--api-key-env", args.api_key_env), ("--token-env", args.token_env)):
                if variable:
                    api_key = os.environ.get(variable)
                    if not api_key:
                        raise UsageError(f"{option}: the environment variable {variable!r} is not set")
            if args.url and (args.home or args.scheduler):
                raise UsageError("--url: a server has its own home and scheduler; drop --home/--scheduler")
            connection = connections.connect(args.url, api_key=api_key, home=args.home, scheduler=args.scheduler)
        kind = "server" if args.url else f"embedded engine, {args.scheduler or 'local'} scheduler"
        print(f"Connected to {connection.location} ({kind})")

    @magic_arguments()
    @argument("--out", metavar="NAME", help="Bind the Batch to this variable (e.g. --out b; then b.df, b.wait()).")
    @argument("--wait", action="store_true", help="Block until every job has ended.")
    @argument("--timeout", type=float, metavar="S", help="With --wait (implied): stop waiting after S seconds.")
    @argument("--poll", type=float, default=DEFAULT_POLL, metavar="S", help="Seconds between status polls.")
    @argument("--concurrency", type=int, metavar="N", help="At most N jobs of this batch in progress at once.")
    @argument("--from", dest="source", metavar="VAR", help="Take the configs from a variable: a list, a DataFrame "
              "(method_name, file_hash and parameter columns) or a sweep mapping.")  # fmt: skip
    @argument("--dry-run", action="store_true", help="Show what would happen to each config; submit nothing.")
    @argument("--priority", type=int, default=0, metavar="N", help="New jobs start by priority (higher first; "
              "default 0); equal priorities take turns batch by batch.")  # fmt: skip
    @argument("--name", metavar="TEXT", help="Record the batch under this name (Batch.load(name) finds it again).")
    @argument("--base", metavar="DIR", help="The folder relative paths and globs in 'files' are taken from (default: "
              "the current folder); e.g. --base {dshpc_jupyter.examples.data_dir()}.")  # fmt: skip
    @argument("--retry", type=int, metavar="N", help="Retry each new job up to N times after a time limit, out of "
              "memory, a lost runner, a preemption or a boot failure (more memory or time each time).")  # fmt: skip
    @argument("--resubmit", choices=RESUBMIT_MODES, default="failed", help="Which failed jobs run again: 'failed' "
              "(all, the default), 'retriable' (those the retry policy would retry) or 'never'.")  # fmt: skip
    @argument("--rerun", action="store_true", help="Run every config again, even when a completed job is cached.")
    @line_cell_magic
    def dshpc_batch(self, line: str, cell: str | None = None) -> None:
        """Submit a batch of jobs; the cell returns at once with a live table (or waits, with --wait).

        The body is YAML or JSON: a sweep, a list of configs, the dsHPC request ``{"jobs": [...]}``, or a pipeline
        (``steps:``, each step a sweep whose inputs may be ``{$ref: step, output: name}`` or ``{$gather: step}``).
        Files in a sweep are hashes, paths or globs (hashed, uploaded only when missing). Identical jobs are
        never run twice: running the cell again attaches to the same jobs, or serves them from cache.

        Examples::

            %%dshpc_batch --out b --wait
            method: Threshold Filter
            files: ["data/*.csv"]
            parameters: {column: value}
            grid: {threshold: [0.1, 0.5, 0.9]}

            %%dshpc_batch --out b
            methods: [Example Python Method, Word Count (bash)]
            files: [notes.txt, 5f2b...e9]

            %%dshpc_batch --dry-run
            {"jobs": [{"file_hash": "5f2b...e9", "method_name": "Word Count (bash)", "parameters": {"unit": "lines"}}]}

            %dshpc_batch --from configs --out again     # configs: a list of dicts or a DataFrame
        """
        args = _parse(self.dshpc_batch, line)
        with _one_line_errors():
            document = self._document(args.source, cell)
            _check_out_and_poll(args)
            if args.timeout is not None and args.timeout < 0:
                raise UsageError(f"--timeout: must be zero or more seconds, got {args.timeout}")
            name = check_batch_name(_unquoted(args.name))  # before any file is hashed or uploaded
            connection = connections.current()
            if is_pipeline_document(document):
                self._pipeline(document, args)
                return
            missing: list[str] = []
            upload = _hash_and_check(connection, missing) if args.dry_run else connection.upload_files
            expansion = expand(document, upload=upload, base_dir=args.base)
            batch = Batch.submit(
                expansion.configs, connection=connection, poll=args.poll, concurrency=args.concurrency,
                dry_run=args.dry_run, retry=args.retry, resubmit=args.resubmit, force=args.rerun,
                priority=args.priority, name=name,
            )  # fmt: skip
        if args.out:
            self.namespace[args.out] = batch
            batch.variable = args.out
        notes = expansion.notes(uploaded=not args.dry_run) + batch.method_hints()
        if missing:
            notes.append(
                f"{len(missing)} local file(s) not on the service yet: submitting uploads them; until then their "
                "configs show 'File ... not found'"
            )
        show(batch, wait=args.wait or args.timeout is not None, timeout=args.timeout, notes=notes)

    def _pipeline(self, document: Any, args: Any) -> None:
        """A ``steps:`` document: submitted as a pipeline and shown as its graph (docs/design.md section 10.4)."""
        if args.dry_run:
            raise UsageError("--dry-run: not available for a pipeline (its later steps depend on outputs)")
        pipeline = Pipeline.submit(document, connection=connections.current(), base=args.base)
        if args.out:
            self.namespace[args.out] = pipeline
        show_pipeline(pipeline, wait=args.wait or args.timeout is not None, timeout=args.timeout)

    def _document(self, source: str | None, cell: str | None) -> Any:
        body = (cell or "").strip()
        if source is None:
            if cell is None:
                raise UsageError("give the batch in the cell body (%%dshpc_batch) or in a variable (--from VAR)")
            return parse_text(cell, first_line=2)
        if body:
            raise UsageError("--from: give the configs either in a variable or in the cell body, not both")
        if source not in self.namespace:
            raise UsageError(f"--from: no variable named {source!r}")
        return self.namespace[source]

    @magic_arguments()
    @cell_magic
    def dshpc_method(self, line: str, cell: str) -> None:
        """Register the cell as a method version: a YAML header between two ``---`` lines with the fields of
        method.json (name, description, parameters, version, resources; command defaults to python3), then the
        script, run as a method's script file is: ``command script input_file params_file``. The version is
        content-hashed: running the cell again unchanged registers nothing new, so its jobs stay cached.

        Examples::

            %%dshpc_method
            ---
            name: Line Lengths
            parameters:
              - {name: minimum, type: integer, default: 0}
            ---
            import json, sys
            params = json.load(open(sys.argv[2]))
            lengths = [len(line) for line in open(sys.argv[1]) if len(line) >= params["minimum"]]
            print(json.dumps({"lines": len(lengths), "longest": max(lengths, default=0)}))
        """
        _parse(self.dshpc_method, line)
        connection = connections.current()
        with _one_line_errors():
            method_cell = parse_cell(cell)
            name = method_cell.spec.name
            known = {m.function_hash for m in connection.list_methods(latest_only=False) if m.name == name}
            method = register_cell(connection, method_cell)
        known_text = "unchanged (already registered)" if method.function_hash in known else "registered"
        print(
            f"method {method.name!r} version {method.version}: {known_text}; function_hash {method.function_hash[:12]}"
        )

    @magic_arguments()
    @argument("--out", metavar="NAME", help="Bind each submitted Batch to this variable (also form.batch).")
    @argument("--poll", type=float, default=DEFAULT_POLL, metavar="S", help="Seconds between status polls.")
    @line_magic
    def dshpc_form(self, line: str) -> JobForm:
        """A form to build jobs by clicking: choose a method, set its parameters (one value, or a sweep of a
        list or a range), pick files from the service or upload them, Add (the configs expand as a grid and a
        preview says how many are cached, in progress, new or invalid), then Submit: the live batch display
        appears under the form, with a Cancel button. Submitting again never runs a job twice.

        The form is returned: drive it from code as well (``form.method.value = ...``, ``form.add_button.click()``,
        ``form.pending``, ``form.batch``, ``form.summary()``).

        Examples::

            %dshpc_form
            %dshpc_form --out b               # each submitted Batch is bound to b: b.df, b.wait()
            form = %dshpc_form --out b        # keep the form; show it with `form` on the cell's last line
        """
        from .form import JobForm

        args = _parse(self.dshpc_form, line)
        with _one_line_errors():
            _check_out_and_poll(args)
            return JobForm(connections.current(), out=args.out, namespace=self.namespace, poll=args.poll)

    @magic_arguments()
    @argument("--all", action="store_true", help="Every registered version, not only the latest of each name.")
    @line_magic
    def dshpc_methods(self, line: str) -> pd.DataFrame:
        """The service's methods and their parameters, as a table (a DataFrame).

        Examples::

            %dshpc_methods
            %dshpc_methods --all          # every version
            methods = %dshpc_methods      # keep the DataFrame
        """
        import pandas as pd

        args = _parse(self.dshpc_methods, line)
        with _one_line_errors():
            methods = connections.current().list_methods(latest_only=not args.all)
        rows = [
            {
                "name": m.name,
                "version": m.version,
                "parameters": "; ".join(
                    f"{p.name}: {p.type}" + (" (required)" if p.required else f" = {p.default!r}")
                    + (f" in {p.choices}" if p.choices else "")
                    for p in m.parameters
                ),
                "description": m.description,
                "function_hash": m.function_hash,
                "latest": m.latest,
                "registered_at": m.registered_at,
            }
            for m in methods
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=["name", "version", "parameters", "description", "function_hash",
                                           "latest", "registered_at"])  # fmt: skip

    @magic_arguments()
    @line_magic
    def dshpc_files(self, line: str) -> pd.DataFrame:
        """The files on the service (name, hash, size, type, upload date), as a DataFrame.

        Examples::

            %dshpc_files
            files = %dshpc_files
            files[files.filename.str.endswith(".csv")].file_hash.tolist()
        """
        import pandas as pd

        _parse(self.dshpc_files, line)
        with _one_line_errors():
            files = connections.current().list_files()
        columns = ["filename", "file_hash", "file_size", "content_type", "upload_date"]
        return pd.DataFrame([f.model_dump(include=set(columns)) for f in files], columns=columns)

    @magic_arguments()
    @argument("--status", help="Only jobs with this status code (CD, PD, R, F, CA, TO, ...).")
    @argument("--limit", type=int, default=100, help="At most this many, newest first (default 100).")
    @line_magic
    def dshpc_jobs(self, line: str) -> pd.DataFrame:
        """The service's most recent jobs, as a DataFrame.

        Examples::

            %dshpc_jobs
            %dshpc_jobs --status F            # failures, with their error text
            %dshpc_jobs --status R --limit 10
        """
        import pandas as pd

        args = _parse(self.dshpc_jobs, line)
        with _one_line_errors():
            if args.limit < 1:
                raise UsageError(f"--limit: must be at least 1, got {args.limit}")
            jobs = connections.current().list_jobs(status=args.status, limit=args.limit)
        columns = ["job_id", "method_name", "file_hash", "parameters", "status", "error", "exit_code", "created_at",
                   "started_at", "finished_at", "scheduler"]  # fmt: skip
        if any(job.owner is not None for job in jobs):  # a server for a team: who submitted each
            columns.insert(1, "owner")
        return pd.DataFrame([j.model_dump(include=set(columns)) for j in jobs], columns=columns)

    @magic_arguments()
    @argument("--limit", type=int, default=20, help="At most this many, newest first (default 20).")
    @line_magic
    def dshpc_batches(self, line: str) -> pd.DataFrame:
        """The service's recent batches, newest first, with their names; reopen one with ``Batch.load(batch_id)``
        (or ``Batch.load(name)``).

        Examples::

            %dshpc_batches
            from dshpc_jupyter import Batch
            b = Batch.load(_.batch_id[0])     # the newest batch, live again after a kernel restart
        """
        args = _parse(self.dshpc_batches, line)
        with _one_line_errors():
            if args.limit < 1:
                raise UsageError(f"--limit: must be at least 1, got {args.limit}")
            return batches(args.limit)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dshpc_jupyter``; a Batch alone on a cell's last line (``Batch.load(id)``) then shows as its
    live table."""
    ipython.register_magics(DshpcMagics)
    ipython.display_formatter.ipython_display_formatter.for_type(Batch, show)
