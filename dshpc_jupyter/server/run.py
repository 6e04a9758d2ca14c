"""Running the API: ``dshpc-jupyter serve``, uvicorn on 127.0.0.1 unless told otherwise, with a graceful stop."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import signal
import socket
import threading
from collections.abc import Iterable

import anyio
import uvicorn

from ..backends.base import Backend
from ..backends.team import TeamBackend
from ..service.factory import open_engine
from ..service.users import Quotas, Team
from .app import DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONFIGS, create_app
from .chunked import DEFAULT_SESSION_TTL_S

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001

log = logging.getLogger(__name__)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    home: str | os.PathLike[str] | None = None,
    *,
    methods: Iterable[str | os.PathLike[str]] = (),
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    api_key: str | None = None,
    scheduler: str = "local",
    max_configs: int = DEFAULT_MAX_CONFIGS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    sock: socket.socket | None = None,
    log_level: str = "info",
    session_ttl: float = DEFAULT_SESSION_TTL_S,
    default_max_running: int | None = None,
    default_max_configs: int | None = None,
) -> None:
    """Run the API until SIGINT/SIGTERM: the store under ``home``, ``methods`` registered first.

    ``sock`` serves on an already-bound listening socket (socket activation, tests) instead of host:port. On a
    signal, uvicorn stops accepting, lets requests in flight finish, and then the engine is closed; jobs
    keep running under their scheduler (the local worker is a separate process) and are picked up again by
    the next server on the same home.

    The store's users (``dshpc-jupyter users add``) sign in with their tokens, and ``api_key`` as an admin;
    users without quotas of their own get ``default_max_running`` and ``default_max_configs`` (None: no limit).
    """
    engine = open_engine(home, scheduler)
    backend = TeamBackend(engine, Team(engine.store, defaults=Quotas(default_max_running, default_max_configs)))
    try:
        for path in methods:
            registered = engine.register_method(path)
            for method in registered:
                log.info("registered method %r (%s)", method.name, method.function_hash[:12])
            backend.team.registered(registered, actor="serve --methods")
        app = create_app(
            backend, api_key=api_key, max_body_bytes=max_body_bytes, max_configs=max_configs,
            sessions_dir=engine.home.tmp_dir / "chunked", session_ttl=session_ttl,
        )  # fmt: skip
    except BaseException:
        engine.close()
        raise
    if api_key is None and not backend.team.has_users() and sock is None and not _is_loopback(host):
        log.warning("serving on %s without an API key: anyone who can reach it can run registered methods", host)
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=60, lifespan="off"
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again for the handler it found
    # installed: make that a no-op, so the engine is closed and serve() returns instead of the process dying.
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _after_shutdown) for sig in _STOP_SIGNALS} if main_thread else {}
    try:
        asyncio.run(run_server(uvicorn.Server(config), backend, sock))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _after_shutdown(signum: int, frame: object) -> None:
    """The stop signal, raised again by uvicorn once it has stopped: nothing left to do."""


async def run_server(server: uvicorn.Server, backend: Backend, sock: socket.socket | None = None) -> None:
    """Serve until told to stop (a signal, or ``server.should_exit``), then close the backend: requests in
    flight have finished by then, so nothing is cut halfway."""
    try:
        async with anyio.create_task_group() as tasks:
            if isinstance(backend, TeamBackend):  # jobs waiting for a quota are released even when no one asks
                tasks.start_soon(backend.keep_releasing)
            await server.serve(sockets=[sock] if sock is not None else None)
            tasks.cancel_scope.cancel()
    finally:
        await backend.aclose()
