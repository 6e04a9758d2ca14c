"""Schema-driven fuzzing: schemathesis generates requests for every operation of /openapi.json, valid ones
(positive) and ones that break the schema (negative: wrong types, missing fields, bad values), and sends them
to a real uvicorn server with an API key. No request may get a 5xx, and every answer must match the schema
the server documents for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from http_support import thread_server
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from support import shutdown_home

from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.service.factory import open_engine

KEY = "fuzz-key"
EXAMPLES = 50
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module, with the examples in its store so that lookups can also succeed."""
    home = tmp_path_factory.mktemp("fuzz") / "home"
    engine = open_engine(home)
    engine.register_method(methods_dir())
    for path in data_files():
        engine.upload_file(path)
    engine.close()
    try:
        with thread_server(home, api_key=KEY, max_configs=200) as url:
            yield url
    finally:
        shutdown_home(home)


def operations(url: str) -> list[Any]:
    """Every operation of the server's schema (a part schemathesis cannot read fails the test)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", headers={"X-API-Key": KEY})
    found = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        found.append(result.ok())
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_no_request_gets_a_server_error(fuzz_url: str, mode: GenerationMode) -> None:
    """Each operation in turn (schemathesis's pytest plugin predates this pytest, so the loop is ours)."""
    tested = []
    for operation in operations(fuzz_url):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            case.call_and_validate(base_url=fuzz_url, headers={"X-API-Key": KEY}, checks=CHECKS, timeout=60)

        try:
            check()
        except Unsatisfiable:  # nothing to break: an operation without parameters or body (GET /health)
            assert mode is GenerationMode.NEGATIVE
            continue
        tested.append(operation.label)
    assert "POST /simulate-jobs" in tested and len(tested) >= 15
