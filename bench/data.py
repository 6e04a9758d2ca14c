"""Large transfers over loopback: a 1 GiB upload and download through our routes vs a bare baseline, measured in
the same run, and our server's peak memory.

- ours: ``Connection.upload_file`` (hashes the file, then ``PUT /files/stream`` segments of raw bytes; the server
  appends and verifies the SHA-256) and ``Connection.download`` (``GET /files/{hash}/content``, streamed to disk
  and checked against the hash), against ``dshpc-jupyter serve`` in its own process;
- baseline: the same bytes through a plain httpx streaming request to a bare Starlette endpoint in its own
  process that only writes the body to disk (upload), and a bare ``FileResponse`` of the same file (download).
Each is run ``--repeat`` times alternately; the best of each is reported. The server's peak RSS is VmHWM from
``/proc/PID/status`` after every transfer. Targets: upload >= 50% of the baseline's throughput, download >= 70%,
peak RSS < 150 MB.

Run: ``python bench/data.py [--size-mib 1024] [--repeat 3]``
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's http package (which httpx imports): keep this directory off
# the import path.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator

import httpx

from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.front.blocking import Connection

OURS = """
import socket, sys, json
from dshpc_jupyter.server import serve
serve(sock=socket.socket(fileno=int(sys.argv[1])), log_level="warning", home=sys.argv[2])
"""
BARE = """
import socket, sys, uvicorn
from pathlib import Path
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route
target, served = Path(sys.argv[2]), Path(sys.argv[3])
async def put(request):
    with target.open("wb") as out:
        async for chunk in request.stream():
            out.write(chunk)
    return Response(status_code=201)
async def get(request):
    return FileResponse(served)
app = Starlette(routes=[Route("/upload", put, methods=["PUT"]), Route("/file", get)])
server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
server.run(sockets=[socket.socket(fileno=int(sys.argv[1]))])
"""


def start(script: str, *args: str) -> tuple[str, subprocess.Popen[bytes]]:
    sock = socket.create_server(("127.0.0.1", 0))
    process = subprocess.Popen([sys.executable, "-c", script, str(sock.fileno()), *args], pass_fds=[sock.fileno()])
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=1)
            return url, process
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"server {args} did not start")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def blocks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as stream:
        yield from iter(lambda: stream.read(1 << 20), b"")


def timed(action: Callable[[], object]) -> float:
    start_at = time.perf_counter()
    action()
    return time.perf_counter() - start_at


def one_round(client: httpx.Client, url: str, source: Path, root: Path, times: dict[str, list[float]]) -> None:
    """Each transfer once, ours and the baseline's one after the other."""
    with Connection(HttpBackend(url)) as conn:
        times["upload bare"].append(timed(lambda: client.put("/upload", content=blocks(source))))
        stored: list[str] = []
        times["upload ours"].append(timed(lambda: stored.append(conn.upload_file(source).file_hash)))

        def bare_download() -> None:
            with client.stream("GET", "/file") as response, (root / "bare-down.bin").open("wb") as out:
                for block in response.iter_bytes(1 << 20):
                    out.write(block)

        times["download bare"].append(timed(bare_download))
        target = root / "ours-down.bin"
        times["download ours"].append(timed(lambda: conn.download(stored[0], target)))
        target.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib << 20
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        root = Path(tmp)
        source = root / "data.bin"
        with source.open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        bare_url, bare = start(BARE, str(root / "bare-upload.bin"), str(source))
        times: dict[str, list[float]] = {"upload ours": [], "upload bare": [], "download ours": [], "download bare": []}
        peaks: list[float] = []
        try:
            with httpx.Client(base_url=bare_url, timeout=600) as client:
                for attempt in range(args.repeat):
                    url, ours = start(OURS, str(root / f"home-{attempt}"))
                    try:
                        one_round(client, url, source, root, times)
                        peaks.append(peak_rss_mb(ours.pid))
                    finally:
                        ours.terminate()
                        ours.wait(timeout=60)
        finally:
            bare.terminate()
            bare.wait(timeout=60)
        best = {name: min(values) for name, values in times.items()}
        mib = args.size_mib
        report = {name: f"{best[name]:.2f} s, {mib / best[name]:.0f} MiB/s" for name in best}
        print(json.dumps(report, indent=2))
        upload, download = best["upload bare"] / best["upload ours"], best["download bare"] / best["download ours"]
        print(f"upload:   ours / baseline throughput = {upload:.2f} (target >= 0.50)")
        print(f"download: ours / baseline throughput = {download:.2f} (target >= 0.70)")
        print(f"server peak RSS: {max(peaks):.0f} MB (target < 150 MB), size {size} bytes")


if __name__ == "__main__":
    main()
