"""The catalogue commands: methods and files."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from .output import connection_for, console


def cmd_methods(args: argparse.Namespace) -> int:
    with connection_for(args) as connection:
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
    with connection_for(args) as connection:
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


def add_commands(commands: Any) -> None:
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
