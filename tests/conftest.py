"""Fixtures: every test gets its own home directory (real SQLite file, real local worker), cleaned up after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import SLURM_TEST_ENV, hold_the_slot, shutdown_home

from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.schedulers.sandbox import bubblewrap
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test touches the user's data directory or a configured remote service."""
    monkeypatch.setenv("DSHPC_HOME", str(tmp_path_factory.mktemp("default-home")))
    monkeypatch.delenv("DSHPC_URL", raising=False)
    monkeypatch.delenv("DSHPC_API_KEY", raising=False)
    monkeypatch.setenv("DSHPC_WORKER_IDLE_TIMEOUT", "20")
    # Test methods leave witnesses (a log of their runs) in the tests' temporary directories: a shared scratch
    # space for the sandbox. As root with no working bubblewrap, "nobody" cannot reach pytest's private
    # directories, so the suite runs its jobs unconfined there ("off"); tests/test_hardening_sandbox.py sets
    # the mode it checks itself.
    monkeypatch.setenv("DSHPC_SANDBOX_WRITABLE", str(tmp_path_factory.getbasetemp()))
    if os.geteuid() == 0 and bubblewrap() is None:
        monkeypatch.setenv("DSHPC_SANDBOX", "off")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    yield path
    if path.exists():
        shutdown_home(path)


@pytest.fixture
def engine(home: Path) -> Iterator[Engine]:
    """An engine on a fresh home with the example methods registered and the example data uploaded."""
    engine = open_engine(home)
    engine.register_method(methods_dir())
    for path in data_files():
        engine.upload_file(path)
    yield engine
    engine.close()


@pytest.fixture
def example_hashes(engine: Engine) -> dict[str, str]:
    """file name -> file_hash of the example data."""
    return {f.filename or "": f.file_hash for f in engine.list_files()}


@pytest.fixture
def queued_engine(home: Path) -> Iterator[Engine]:
    """Like ``engine``, but its worker has one slot, held by a long job: every job submitted stays pending
    (``PD``) until the test ends, so in-progress states are stable without faking the scheduler."""
    engine = open_engine(home, slots=1)
    engine.register_method(methods_dir())
    for path in data_files():
        engine.upload_file(path)
    hold_the_slot(engine)
    yield engine
    engine.close()


SLURM_SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "local-slurm.sh"


@pytest.fixture(scope="session")
def local_slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real single-node Slurm (scripts/local-slurm.sh) for the session; yields its slurm.conf.

    A cluster already running is restarted with the tests' settings, and with the defaults afterwards."""
    import os
    import shutil
    import subprocess

    missing = [b for b in ("slurmctld", "slurmd", "sbatch", "squeue", "munged") if shutil.which(b) is None]
    if missing:
        pytest.skip(f"Slurm is not installed here (missing {', '.join(missing)}): "
                    "apt-get install slurmctld slurmd slurm-client munge")  # fmt: skip
    if os.geteuid() != 0:
        pytest.skip("the local Slurm cluster needs root: slurmd starts jobs as their users")
    was_running = subprocess.run([str(SLURM_SCRIPT), "status"], capture_output=True).returncode == 0
    env = {**os.environ, **SLURM_TEST_ENV}
    subprocess.run([str(SLURM_SCRIPT), "start"], env=env, check=True, capture_output=True)
    conf = subprocess.run([str(SLURM_SCRIPT), "env"], check=True, capture_output=True, text=True).stdout
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf.strip().split("=", 1)[1]
    try:
        yield Path(os.environ["SLURM_CONF"])
    finally:
        subprocess.run([str(SLURM_SCRIPT), "start" if was_running else "stop"], capture_output=True)
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
