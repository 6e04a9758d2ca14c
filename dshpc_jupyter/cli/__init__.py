"""``dshpc-jupyter``: the command line for the same service the notebook uses.

Every command works on the embedded store (``--home`` or ``$DSHPC_HOME``) or, with ``--url`` (or
``$DSHPC_URL``), on a remote dsHPC server. Each module of this folder adds one group of commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from ..domain.errors import DshpcError
from . import admin, catalog, jobs, pipelines, run, users
from .output import console

COMMAND_GROUPS = (run, catalog, jobs, pipelines, admin, users)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dshpc-jupyter", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--home", help="store directory (default: $DSHPC_HOME or the per-user data directory)")
    parser.add_argument("--url", help="a dsHPC server to use instead of the embedded store (default: $DSHPC_URL)")
    parser.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the server's API key")
    parser.add_argument("--scheduler", choices=["local", "slurm"], help="where new jobs run (default: local)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_commands(commands)
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
