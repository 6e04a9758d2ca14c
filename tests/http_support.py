"""Real uvicorn servers for the tests: in a thread of the test process (fast to start) or in a subprocess
(for signals and the seed-compatibility script), always on 127.0.0.1, on a socket bound before the server
starts, so there is no race for a port."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from support import stop_gracefully, wait_until

from dshpc_jupyter.backends.base import Backend
from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.front.connection import Connection
from dshpc_jupyter.server import create_app, run_server
from dshpc_jupyter.service.factory import open_engine


def listening_socket() -> socket.socket:
    return socket.create_server(("127.0.0.1", 0), backlog=128)


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextmanager
def thread_server(home: Path, backend: Backend | None = None, *, app: Any = None, **options: Any) -> Iterator[str]:
    """A uvicorn server over an engine on ``home`` (or over ``backend``, with the ``app`` made for it), in a
    thread; its URL. Stopped (gracefully) at exit, and the backend closed."""
    backend = backend if backend is not None else EmbeddedBackend(open_engine(home))
    app = app if app is not None else create_app(backend, **options)
    sock = listening_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=asyncio.run, args=(run_server(server, backend, sock),), daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=30, what="the server to start")
        assert server.started, "the server thread died during startup"
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


#: The two backends the behavioural tests run on: the engine in this process, and the HTTP client of a server.
BACKENDS = ["embedded", "http"]


def connection_of(kind: str, home: Path, stack: ExitStack, wrap: Callable[[Any], Any] = lambda b: b) -> Connection:
    """A connection of ``kind`` (one of ``BACKENDS``) on ``home``, closed (and its server stopped) with ``stack``;
    ``wrap`` may wrap the backend (e.g. in a ``CountingBackend``)."""
    if kind == "embedded":
        backend: Any = EmbeddedBackend(open_engine(home))
    else:
        backend = HttpBackend(stack.enter_context(thread_server(home)))
    conn = Connection(wrap(backend))
    stack.callback(conn.close)
    return conn


SERVE_SCRIPT = """
import socket, sys, json
from dshpc_jupyter.server import serve
options = json.loads(sys.argv[2])
serve(sock=socket.socket(fileno=int(sys.argv[1])), log_level="warning", **options)
"""


@contextmanager
def subprocess_server(home: Path, **options: Any) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``serve()`` in its own process (as ``dshpc-jupyter serve`` runs it); its URL and the process."""
    import json

    sock = listening_socket()
    options = {"home": str(home), **options}
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_SCRIPT, str(sock.fileno()), json.dumps(options)],
        pass_fds=[sock.fileno()],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = url_of(sock)
    sock.close()
    try:
        wait_until(lambda: healthy(url) or process.poll() is not None, timeout=60, what="the server to answer")
        assert process.poll() is None, f"the server exited with {process.returncode}"
        yield url, process
    finally:
        stop_gracefully(process)


def healthy(url: str) -> bool:
    """True once the server at ``url`` answers /health."""
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
