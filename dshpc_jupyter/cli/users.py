"""The commands on a server's users (docs/design.md section 11): they work on the store under ``--home``, the
one the server serves, so whoever can write that store manages its users; ``whoami`` asks the service."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from ..domain.errors import InvalidInputError
from ..service.users import Quotas, Team
from .output import connection_for, console


@contextmanager
def _team(args: argparse.Namespace) -> Iterator[Team]:
    from ..domain.home import Home
    from ..store.sqlite import Store

    if getattr(args, "url", None):
        raise InvalidInputError("--url: users are managed on the server's store: give its --home instead")
    store = Store(Home.open(args.home).db_path)
    try:
        yield Team(store)
    finally:
        store.close()


def _show_token(name: str, token: str) -> None:
    console.print(f"token of {name} (shown once; it is stored only as a salted hash):", soft_wrap=True)
    console.print(token, soft_wrap=True, markup=False)


def cmd_users(args: argparse.Namespace) -> int:
    actor = f"cli:{getpass.getuser()}"
    quotas = Quotas(getattr(args, "max_running", None), getattr(args, "max_configs", None))
    with _team(args) as team:
        if args.action == "add":
            _show_token(args.name, team.add(args.name, admin=args.admin, quotas=quotas, actor=actor))
        elif args.action == "rotate":
            _show_token(args.name, team.rotate(args.name, actor=actor))
        elif args.action == "revoke":
            team.revoke(args.name, actor=actor)
            console.print(f"revoked the token of {args.name}")
        elif args.action == "set":
            team.change(args.name, admin=args.admin, quotas=quotas, actor=actor)
            console.print(f"updated {args.name}")
        else:
            table = Table("name", "role", "active", "max running", "max configs", "created")
            for user in team.members():
                table.add_row(
                    user.name, "admin" if user.admin else "user", "yes" if user.active else "revoked",
                    _limit(user.max_running), _limit(user.max_configs),
                    f"{datetime.fromtimestamp(user.created_at, UTC):%Y-%m-%d %H:%M}",
                )  # fmt: skip
            console.print(table)
    return 0


def _limit(value: int | None) -> str:
    return "default" if value is None else str(value)


def cmd_whoami(args: argparse.Namespace) -> int:
    with connection_for(args) as connection:
        me = connection.whoami()
    console.print(f"{me.name or 'local user'} ({me.role})", soft_wrap=True)
    return 0


def _quota_options(parser: Any) -> None:
    parser.add_argument("--max-running", type=int, metavar="N", help="jobs in progress at once (more wait)")
    parser.add_argument("--max-configs", type=int, metavar="M", help="configs per call")


def add_commands(commands: Any) -> None:
    users = commands.add_parser("users", help="the users of a server's store: tokens, roles, quotas")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user and print their token (once)")
    add.add_argument("name")
    add.add_argument("--admin", action="store_true", help="may register methods, manage users, cancel any job")
    _quota_options(add)
    actions.add_parser("list", help="users, roles and quotas (never tokens)")
    actions.add_parser("revoke", help="stop a user's token").add_argument("name")
    actions.add_parser("rotate", help="a new token for a user (the old one stops)").add_argument("name")
    change = actions.add_parser("set", help="change a user's role or quotas")
    change.add_argument("name")
    change.add_argument("--admin", action=argparse.BooleanOptionalAction, default=None, help="make or unmake admin")
    _quota_options(change)
    users.set_defaults(run=cmd_users)

    whoami = commands.add_parser("whoami", help="who the service takes you for")
    whoami.set_defaults(run=cmd_whoami)
