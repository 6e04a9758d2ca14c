"""Options are typed per backend: ``connect(**options)`` (and ``open_engine``) refuse an unknown option by name,
listing the valid ones, and an option of another backend by naming the backend chosen, before anything is
opened; the options dataclasses cannot drift from the constructors they configure."""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import pytest

import dshpc_jupyter
from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.backends.http import HttpBackend, HttpOptions
from dshpc_jupyter.domain.errors import InvalidInputError
from dshpc_jupyter.front.backend_choice import connect_async
from dshpc_jupyter.schedulers.local import LocalOptions, LocalScheduler
from dshpc_jupyter.schedulers.slurm import SlurmOptions, SlurmScheduler
from dshpc_jupyter.service.factory import open_engine

URL = "http://127.0.0.1:1"  # nothing is sent: building a backend makes no request


@pytest.fixture(autouse=True)
def no_service_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DSHPC_URL", raising=False)


def refused(match: str, **arguments: Any) -> str:
    with pytest.raises(InvalidInputError, match=match) as raised:
        connect_async(**arguments)
    return str(raised.value)


def test_an_unknown_option_is_refused_naming_it_and_listing_the_valid_ones(tmp_path: Path) -> None:
    home = tmp_path / "home"
    message = refused(r"^slot: unknown option \(valid options: ", home=home, slot=2)
    for valid in ("slots", "idle_timeout", "partition", "pack", "timeout", "retries", "max_configs"):
        assert valid in message
    assert not home.exists(), "nothing is opened for a refused option"
    refused(r"^slot, colour: unknown options ", url=URL, slot=2, colour="red")


def test_a_scheduler_option_with_a_url_is_refused_naming_the_http_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    message = refused(r"^slots: does not apply to the HTTP backend at http://127\.0\.0\.1:1 ", url=URL, slots=2)
    assert "its options: timeout, retries, max_configs" in message
    refused(r"^pack, partition: does not apply to the HTTP backend", url=URL, pack=2, partition="debug")
    monkeypatch.setenv("DSHPC_URL", URL)  # a URL from the environment chooses the HTTP backend just the same
    refused(r"^slots: does not apply to the HTTP backend at", slots=2)


def test_an_option_of_another_backend_is_refused_naming_the_scheduler(tmp_path: Path) -> None:
    home = tmp_path / "home"
    message = refused(r"^timeout: does not apply to the embedded engine's local scheduler ", home=home, timeout=5)
    assert "its options: slots, idle_timeout" in message
    refused(r"^pack: does not apply to the embedded engine's local scheduler", home=home, pack=2)
    refused(r"^slots: does not apply to the embedded engine's slurm scheduler", home=home, scheduler="slurm", slots=2)
    refused(r"^scheduler: unknown scheduler 'cloud' \(expected one of: local, slurm\)", home=home, scheduler="cloud")
    assert not home.exists()


def test_open_engine_checks_its_keywords_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"^slot: unknown option \(valid options: "):
        open_engine(tmp_path / "home", slot=1)
    with pytest.raises(InvalidInputError, match=r"^partition: does not apply to the embedded engine's local"):
        open_engine(tmp_path / "home", partition="debug")


def test_valid_options_reach_the_backend_they_configure(tmp_path: Path) -> None:
    remote = connect_async(URL, timeout=3.0, retries=0, max_configs=7)
    assert isinstance(remote, HttpBackend) and (remote.retries, remote.max_configs) == (0, 7)
    local = connect_async(home=tmp_path / "a", slots=3, idle_timeout=2.5)
    slurm = connect_async(home=tmp_path / "b", scheduler="slurm", partition="debug", pack=2, sbatch_args=["-q"])
    try:
        assert isinstance(local, EmbeddedBackend) and isinstance(local.engine.scheduler, LocalScheduler)
        assert (local.engine.scheduler.slots, local.engine.scheduler.idle_timeout) == (3, 2.5)
        assert isinstance(slurm, EmbeddedBackend) and isinstance(slurm.engine.scheduler, SlurmScheduler)
        scheduler = slurm.engine.scheduler
        assert (scheduler.partition, scheduler.pack, scheduler.sbatch_args) == ("debug", 2, ["-q"])
        assert sorted(slurm.engine.schedulers) == ["local", "slurm"]
    finally:
        local.engine.close()
        slurm.engine.close()


def test_connect_refuses_too_and_keeps_the_current_connection(tmp_path: Path) -> None:
    from dshpc_jupyter.front import connection

    before = connection._current
    with pytest.raises(InvalidInputError, match=r"^slots: does not apply to the HTTP backend"):
        dshpc_jupyter.connect(URL, slots=2)
    assert connection._current is before


def test_http_options_check_their_values() -> None:
    with pytest.raises(InvalidInputError, match=r"^max_configs: must be at least 1"):
        HttpOptions(max_configs=0)
    with pytest.raises(InvalidInputError, match=r"^max_configs: must be at least 1"):
        connect_async(URL, max_configs=0)


@pytest.mark.parametrize(
    ("options", "constructor"), [(LocalOptions, LocalScheduler), (SlurmOptions, SlurmScheduler)], ids=["local", "slurm"]
)
def test_each_scheduler_takes_its_options_type_and_no_keyword(options: type, constructor: type) -> None:
    """A scheduler is configured by one options object: no keyword of its own can drift from the options."""
    parameters = inspect.signature(constructor, eval_str=True).parameters
    assert list(parameters) == ["self", "home", "ledger", "options"] or list(parameters) == [
        "home",
        "ledger",
        "options",
    ]
    assert parameters["options"].annotation == options | None
    assert all(f.default is not MISSING for f in fields(options)), "every option has a default"


def test_a_home_or_scheduler_with_a_url_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server has its own home and scheduler: giving either with a URL is a mistake, never silently ignored."""
    refused(r"^home: does not apply to the HTTP backend at http://127\.0\.0\.1:1 ", url=URL, home=tmp_path)
    refused(r"^scheduler: does not apply to the HTTP backend at http://127\.0\.0\.1:1 ", url=URL, scheduler="local")
    monkeypatch.setenv("DSHPC_URL", URL)
    refused(r"^scheduler: does not apply to the HTTP backend", scheduler="slurm")
    assert isinstance(connect_async(), HttpBackend)
