"""What authentication costs a request: the same small call (``GET /job/{id}``, what a poller of one job
sends) through the server's ASGI app with no authentication, with the single API key, and with a user's token
(found by its public id, its secret hashed with its salt and compared, the caller set for the request and the
owner's view applied), measured in the same run.

The requests go through httpx's ASGI transport, not a socket: on the machines here every loopback request
costs a constant ~45 ms (delayed ACKs), which would hide what is measured. The three apps are over one home
and timed in turn, round by round, so they see the same load.
Run: ``python bench/auth.py [--requests 500] [--repeat 5]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's http package (which httpx imports): this folder goes off
# the import path first, as in bench/data.py.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import statistics
import tempfile
import time

import httpx

from dshpc_jupyter.backends.embedded import EmbeddedBackend
from dshpc_jupyter.backends.team import TeamBackend
from dshpc_jupyter.examples import data_files, methods_dir
from dshpc_jupyter.server import create_app
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.service.users import Team

KEY = "bench-key"


async def timed(client: httpx.AsyncClient, job_id: str, requests: int) -> float:
    """Seconds per request, over ``requests`` sequential calls."""
    began = time.perf_counter()
    for _ in range(requests):
        answer = await client.get(f"/job/{job_id}")
        assert answer.status_code == 200, answer.text
    return (time.perf_counter() - began) / requests


def prepare(home: Path) -> tuple[str, str]:
    """A home with one completed job and the user alice: (job id, alice's token)."""
    engine = open_engine(home)
    try:
        engine.register_method(methods_dir())
        poem = next(engine.upload_file(p).file_hash for p in data_files() if p.name == "poem.txt")
        job_id = engine.simulate_jobs([{"file_hash": poem, "method_name": "Word Count (bash)"}]).results[0].job_id
        assert job_id is not None
        deadline = time.monotonic() + 60
        while engine.job_statuses([job_id])[0].status != "CD":  # a finished job: nothing for the engine to poll
            if time.monotonic() > deadline:
                sys.exit("the job did not finish within 60 s")
            time.sleep(0.1)
        return job_id, Team(engine.store).add("alice")
    finally:
        engine.close()


async def run(home: Path, job_id: str, token: str, requests: int, repeat: int) -> dict[str, list[float]]:
    team_engine = open_engine(home)
    backends = [EmbeddedBackend(open_engine(home)), EmbeddedBackend(open_engine(home)),
                TeamBackend(team_engine, Team(team_engine.store))]  # fmt: skip
    apps = {
        "no authentication": (create_app(backends[0]), {}),
        "the single API key": (create_app(backends[1], api_key=KEY), {"X-API-Key": KEY}),
        "a user's token": (create_app(backends[2], api_key=KEY), {"Authorization": f"Bearer {token}"}),
    }
    clients = {
        name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench", headers=headers)
        for name, (app, headers) in apps.items()
    }
    times: dict[str, list[float]] = {name: [] for name in clients}
    try:
        for client in clients.values():
            await timed(client, job_id, 50)  # warm up: thread pools, SQLite connections, caches
        for _ in range(repeat):
            for name, client in clients.items():
                times[name].append(await timed(client, job_id, requests))
    finally:
        for client in clients.values():
            await client.aclose()
        for backend in backends:
            await backend.aclose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="dshpc-bench-auth-")) / "home"
    job_id, token = prepare(home)
    times = asyncio.run(run(home, job_id, token, args.requests, args.repeat))
    base = min(times["no authentication"])
    print(f"{args.requests} x GET /job/ID through the ASGI app, best and median of {args.repeat}:")
    print(f"{'case':<22} {'best':>9} {'median':>9} {'req/s':>7} {'vs none':>8}")
    for name, values in times.items():
        best = min(values)
        print(f"{name:<22} {best * 1e3:7.3f}ms {statistics.median(values) * 1e3:7.3f}ms {1 / best:7.0f} "
              f"{best / base:7.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
