"""HTTP throughput: 10,000 all-cached configs through the server vs in-process, measured in the same run.

One home is prepared with 10,000 completed jobs (100 files x 100 parameter values). Then, best of ``--repeat``:
- in-process: ``Engine.simulate_jobs`` on that home (what bench/engine.py calls "all cached");
- HTTP: ``HttpBackend.simulate_jobs`` (the client a notebook uses: JSON out, validated models back) against a
  real uvicorn server running in a separate process on 127.0.0.1, over an engine on the same home.
The two are timed alternately, call by call, so both see the same load on a shared machine. Every call
records a batch, as a real one does. Jobs are never run: the engines here have a scheduler that
queues and does nothing, so the figures are the service's own cost.

Run: ``python bench/http.py [--configs 10000] [--repeat 5]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named http.py: keep its directory off the import path, or it would shadow the standard library's
# http package (which httpx and starlette import).
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import importlib.util
import json
import socket
import statistics
import subprocess
import tempfile
import time
from types import ModuleType

import httpx
import uvicorn

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.domain import status as st
from dshpc_jupyter.domain.home import Home
from dshpc_jupyter.examples import methods_dir
from dshpc_jupyter.server import create_app, run_server
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.store.sqlite import JobUpdate, Store

METHOD = "Example Python Method"


def _load_timing() -> ModuleType:
    """bench/timing.py, loaded by path: this folder is kept off the import path (see above)."""
    spec = importlib.util.spec_from_file_location("bench_timing", Path(__file__).with_name("timing.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


QueueOnly = _load_timing().QueueOnly


def open_engine(root: Path) -> Engine:
    home = Home.open(root)
    return Engine(home, Store(home.db_path), QueueOnly())


def prepare(root: Path, files: int, values: int) -> list[dict[str, object]]:
    """A home holding ``files x values`` completed jobs; the configs that find them."""
    engine = open_engine(root)
    engine.register_method(methods_dir() / "example_python")
    hashes = [engine.upload_file(f"input {i}\n".encode()).file_hash for i in range(files)]
    configs: list[dict[str, object]] = [
        {"file_hash": h, "method_name": METHOD, "parameters": {"prefix": f"p{v}"}}
        for v in range(values)
        for h in hashes
    ]
    job_ids = [r.job_id for r in engine.simulate_jobs(configs).results if r.job_id]
    output = json.dumps({"result": "x" * 40, "lines": 1})
    engine.store.apply_updates(
        [JobUpdate(j, st.COMPLETED, exit_code=0, output=output, finished_at=time.time()) for j in job_ids]
    )
    engine.close()
    return configs


def serve_child(root: Path, fd: int, max_configs: int) -> None:
    """The server process: uvicorn over an engine (queue-only scheduler) on the prepared home."""
    backend = EmbeddedBackend(open_engine(root))
    app = create_app(backend, max_configs=max_configs)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    asyncio.run(run_server(server, backend, socket.socket(fileno=fd)))


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


async def measure(url: str, root: Path, configs: list[dict[str, object]], repeat: int) -> dict[str, list[float]]:
    """Wall times of both paths, alternating (in-process, then HTTP) so that both see the same machine load."""
    engine = open_engine(root)
    backend = HttpBackend(url)
    times: dict[str, list[float]] = {"in-process": [], "http": []}
    try:
        first = await backend.simulate_jobs(configs)
        assert first.completed_jobs == len(configs), first.model_dump(exclude={"results"})
        for _ in range(repeat):
            start = time.perf_counter()
            engine.simulate_jobs(configs)
            middle = time.perf_counter()
            await backend.simulate_jobs(configs)
            times["in-process"].append(middle - start)
            times["http"].append(time.perf_counter() - middle)
    finally:
        await backend.aclose()
        engine.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--serve", nargs=2, metavar=("HOME", "FD"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(Path(args.serve[0]), int(args.serve[1]), max(args.configs, 10_000))
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        configs = prepare(root, args.files, args.configs // args.files)
        n = len(configs)
        sock = socket.create_server(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        command = [sys.executable, __file__, "--configs", str(n), "--serve", str(root), str(sock.fileno())]
        process = subprocess.Popen(command, pass_fds=[sock.fileno()])
        sock.close()
        try:
            wait_healthy(url, process)
            times = asyncio.run(measure(url, root, configs, args.repeat))
        finally:
            process.terminate()
            process.wait(timeout=30)

    in_best, in_median = min(times["in-process"]), statistics.median(times["in-process"])
    http_best, http_median = min(times["http"]), statistics.median(times["http"])
    in_rate, http_rate_ = n / in_best, n / http_best
    print(f"{n} all-cached configs, best of {args.repeat} (median)")
    for label, best, median, rate in (
        ("in-process Engine.simulate_jobs", in_best, in_median, in_rate),
        ("HTTP, HttpBackend -> uvicorn   ", http_best, http_median, http_rate_),
    ):
        print(f"  {label}: {best * 1e3:7.1f} ms ({median * 1e3:.1f})  {rate:9,.0f} configs/s")
    print(f"  HTTP / in-process: {http_rate_ / in_rate:.2f}  (targets: >= 0.33, and > 5,000 configs/s over HTTP)")


if __name__ == "__main__":
    main()
