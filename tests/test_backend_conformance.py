"""The ``Backend`` contract is declared once (backends/base.py) and every implementation keeps to it: the
embedded engine and the HTTP client have each operation with exactly the protocol's signature, and nothing
public the protocol lacks; the blocking ``Connection`` has each as a sync twin of the same signature."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dshpc_jupyter.backends.base import Backend
from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.front.blocking import Connection
from dshpc_jupyter.service.factory import open_engine

OPERATIONS = {
    "services_status", "whoami", "register_method", "list_methods", "method_versions", "upload_file", "check_hashes",
    "list_files", "get_file", "read_range", "read_bytes", "download", "staged_size", "append_staged",
    "simulate_job", "simulate_jobs", "job_statuses", "job_changes", "get_job", "list_jobs", "cancel", "forget",
    "batches", "batch", "cancel_batch", "submit_pipeline", "pipeline", "cancel_pipeline", "aclose", "read_log",
    "jobs_page", "files_page", "methods_page", "batches_page", "batch_page",
}  # fmt: skip
#: Operations that give a stream of values (async generators; a ``Connection`` twin is a plain iterator).
STREAMS = {"logs"}
IMPLEMENTATIONS = [EmbeddedBackend, HttpBackend]
#: The Connection's name for an operation, where it differs (a blocking ``close`` closes the backend).
SYNC_NAMES = {"aclose": "close"}


def operations(kind: type) -> dict[str, Callable[..., Any]]:
    """The public coroutine functions a class defines or inherits."""
    return {
        name: member
        for name, member in inspect.getmembers(kind, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


def streams(kind: type) -> dict[str, Callable[..., Any]]:
    """The stream operations a class has (each returns an async generator, or an iterator in ``Connection``)."""
    return {name: getattr(kind, name) for name in STREAMS if callable(getattr(kind, name, None))}


def parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(signature(function).parameters.values())


def signature(function: Callable[..., Any]) -> inspect.Signature:
    """With annotations evaluated, so ``str | None`` here and there compare as the same type."""
    return inspect.signature(function, eval_str=True)


def test_the_protocol_declares_every_operation() -> None:
    assert set(operations(Backend)) == OPERATIONS
    assert set(streams(Backend)) == STREAMS
    assert "location" in Backend.__annotations__


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda kind: kind.__name__)
def test_each_backend_has_every_operation_with_the_protocols_signature(implementation: type) -> None:
    declared, implemented = operations(Backend), operations(implementation)
    assert set(implemented) == set(declared), "an operation missing from the backend, or not in the protocol"
    for name, function in declared.items():
        assert signature(implemented[name]) == signature(function), f"{implementation.__name__}.{name}"
    for name, function in streams(Backend).items():
        assert signature(getattr(implementation, name)) == signature(function), f"{implementation.__name__}.{name}"


def test_the_connection_has_a_sync_twin_of_every_operation() -> None:
    for name, function in operations(Backend).items():
        twin = getattr(Connection, SYNC_NAMES.get(name, name), None)
        assert twin is not None, f"Connection lacks {name}"
        assert not inspect.iscoroutinefunction(twin), f"Connection.{name} must block, not be awaited"
        assert signature(twin) == signature(function), f"Connection.{name}"
    for name, function in streams(Backend).items():
        twin = getattr(Connection, name)
        assert inspect.isgeneratorfunction(twin), f"Connection.{name} must be a plain iterator"
        assert parameters(twin) == parameters(function), f"Connection.{name}"


def test_instances_are_backends_with_a_location(tmp_path: Path) -> None:
    remote = HttpBackend("http://127.0.0.1:1/")
    embedded = EmbeddedBackend(open_engine(tmp_path / "home"))
    try:
        assert isinstance(remote, Backend) and remote.location == "http://127.0.0.1:1"
        assert isinstance(embedded, Backend) and embedded.location == str(tmp_path / "home")
    finally:
        embedded.engine.close()


def test_a_drifted_signature_is_caught() -> None:
    """The check above can fail: a backend whose ``simulate_jobs`` lacks ``append_to`` does not conform."""

    class Drifted(EmbeddedBackend):
        async def simulate_jobs(self, configs: Any, *, dry_run: bool = False) -> Any:  # type: ignore[override]
            raise NotImplementedError

    assert signature(Drifted.simulate_jobs) != signature(Backend.simulate_jobs)
