"""A server for a team in the tests: a real uvicorn server on 127.0.0.1 over a store with users."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from http_support import thread_server

from dshpc_jupyter.backends.team import TeamBackend
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.service.users import Quotas, Team

SERVER_KEY = "the-single-server-key"


@dataclass
class TeamServer:
    url: str
    tokens: dict[str, str]
    hashes: dict[str, str]
    home: Path

    def client(self, who: str | None) -> httpx.Client:
        """A client as ``who`` (a user's name, ``key`` for the server's single key, None for no credential)."""
        headers = {}
        if who == "key":
            headers["X-API-Key"] = SERVER_KEY
        elif who is not None:
            headers["Authorization"] = f"Bearer {self.tokens[who]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def team_server(home: Path, *, slots: int = 2, quotas: dict[str, Quotas] | None = None, **options: Any
                ) -> Iterator[TeamServer]:  # fmt: skip
    """A server whose store has the admin ``root`` and the users ``alice`` and ``bob`` (``quotas`` per name),
    the example methods and data, and the single key ``SERVER_KEY``."""
    engine = open_engine(home, slots=slots)
    engine.register_method(methods_dir())
    hashes = {path.name: engine.upload_file(path).file_hash for path in data_files()}
    team = Team(engine.store)
    quotas = quotas or {}
    tokens = {
        "root": team.add("root", admin=True, actor="test"),
        "alice": team.add("alice", quotas=quotas.get("alice", Quotas()), actor="test"),
        "bob": team.add("bob", quotas=quotas.get("bob", Quotas()), actor="test"),
    }
    with thread_server(home, TeamBackend(engine, team), api_key=SERVER_KEY, **options) as url:
        yield TeamServer(url, tokens, hashes, home)
