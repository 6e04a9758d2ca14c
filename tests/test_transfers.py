"""Large transfers against a real server on 127.0.0.1 (docs/design.md section 8.3): a 512 MiB upload through
the client with the server's peak RSS measured (2 GiB marked slow), a connection cut halfway and resumed
sending only what was missing, ``Range`` downloads, and the refusals of bad transfers, each leaving nothing
staged and nothing stored changed."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import subprocess_server, thread_server

from dshpc_jupyter.backends.http import HttpBackend
from dshpc_jupyter.domain.hashing import sha256_bytes, sha256_file
from dshpc_jupyter.front.connection import Connection

PEAK_RSS_LIMIT = 150 << 20


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` bytes, mostly holes, with a few distinct marks so its hash means something; never
    held in memory."""
    with path.open("wb") as out:
        out.truncate(size)
        for offset in range(0, size, max(1, size // 16)):
            out.seek(offset)
            out.write(offset.to_bytes(8, "big") + b"mark")
    return path


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/PID/status")


def stored_files(home: Path) -> set[str]:
    return {p.name for p in (home / "files").rglob("*") if p.is_file()}


def staged(home: Path) -> list[Path]:
    return [p for p in (home / "tmp").rglob("*") if p.is_file()]


def upload_big(tmp_path: Path, size: int) -> None:
    home = tmp_path / "home"
    source = sparse_file(tmp_path / "big.bin", size)
    expected = sha256_file(source)
    with subprocess_server(home) as (url, process), Connection(HttpBackend(url)) as conn:
        info = conn.upload_file(source)
        rss = peak_rss(process.pid)
    assert (info.file_hash, info.file_size, info.filename) == (expected, size, "big.bin")
    assert sha256_file(home / "files" / expected[:2] / expected) == expected
    assert rss < PEAK_RSS_LIMIT, f"server peak RSS {rss >> 20} MiB"
    assert not staged(home)


def test_a_512_mib_upload_streams_through_a_server_in_constant_memory(tmp_path: Path) -> None:
    upload_big(tmp_path, 512 << 20)


@pytest.mark.slow
def test_a_2_gib_upload_streams_through_a_server_in_constant_memory(tmp_path: Path) -> None:
    upload_big(tmp_path, 2 << 30)


class CutOnce(httpx.AsyncBaseTransport):
    """Real HTTP, except that the first streamed upload request breaks after ``cut_at`` bytes, as a dropped
    connection does; counts every body byte sent."""

    def __init__(self, cut_at: int) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.cut_at = cut_at
        self.cut = False
        self.sent = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            request.stream = Counted(self, request.stream)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Counted(httpx.AsyncByteStream):
    """A request body passed on block by block, counted, and broken once at the transport's ``cut_at``."""

    def __init__(self, transport: CutOnce, stream: Any) -> None:
        self.transport = transport
        self.stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        t = self.transport
        async for block in self.stream:
            if not t.cut and t.sent + len(block) > t.cut_at:
                t.cut = True
                raise httpx.WriteError("connection cut by the test")
            t.sent += len(block)
            yield block


class Bars:
    """A progress factory that records what it was asked to show."""

    def __init__(self) -> None:
        self.made: list[tuple[str, int]] = []
        self.moved = 0
        self.closed = False

    def make(self, description: str, total: int) -> Bars:
        self.made.append((description, total))
        return self

    def update(self, n: int) -> None:
        self.moved += n

    def close(self) -> None:
        self.closed = True


def test_a_cut_connection_resumes_sending_only_what_was_missing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    size = 40 << 20
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(size))
    transport = CutOnce(cut_at=size // 2)
    bars = Bars()
    with (
        thread_server(home, max_body_bytes=24 << 20) as url,
        Connection(HttpBackend(url, transport=transport, progress=bars.make)) as conn,
    ):
        info = conn.upload_file(source)
    assert transport.cut and info.file_hash == sha256_file(source)
    assert bars.made == [("upload data.bin", size)] and bars.moved >= size and bars.closed
    assert transport.sent < size + (2 << 20), f"sent {transport.sent} bytes for {size}: resent what was there"
    assert (home / "files" / info.file_hash[:2] / info.file_hash).read_bytes() == source.read_bytes()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, Path, bytes, str]]:
    home = tmp_path / "home"
    data = bytes(range(256)) * 40
    options = {"max_body_bytes": 1 << 20, "sessions_dir": home / "tmp" / "chunked"}
    with thread_server(home, **options) as url, httpx.Client(base_url=url, timeout=30) as client:
        file_hash = client.post("/files/upload", json={"file_hash": sha256_bytes(data), "content": _b64(data)})
        assert file_hash.status_code == 201
        yield client, home, data, sha256_bytes(data)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def test_range_downloads(served: tuple[httpx.Client, Path, bytes, str]) -> None:
    client, _, data, file_hash = served
    path = f"/files/{file_hash}/content"
    whole = client.get(path)
    assert (whole.status_code, whole.content, whole.headers["accept-ranges"]) == (200, data, "bytes")
    for header, start, end in [("bytes=0-9", 0, 9), ("bytes=100-", 100, len(data) - 1), ("bytes=-5", len(data) - 5,
                               len(data) - 1), (f"bytes=10-{len(data) * 2}", 10, len(data) - 1)]:  # fmt: skip
        part = client.get(path, headers={"Range": header})
        assert part.status_code == 206 and part.content == data[start : end + 1], header
        assert part.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"
    assert client.get(path, headers={"Range": "bytes=0-1,5-6"}).content == data, "several ranges: the whole file"
    past = client.get(path, headers={"Range": f"bytes={len(data)}-"})
    assert past.status_code == 416 and "past the end" in past.json()["detail"]
    assert client.get(f"/files/{'0' * 64}/content").status_code == 404


def test_bad_streamed_uploads_are_refused_and_leave_nothing(served: tuple[httpx.Client, Path, bytes, str]) -> None:
    client, home, _, _ = served
    before = stored_files(home)
    data = b"fresh bytes " * 1000
    path = f"/files/stream/{sha256_bytes(data)}"
    wrong_offset = client.put(path, params={"offset": 5, "total_size": len(data)}, content=data[5:])
    assert wrong_offset.status_code == 409 and "holds 0 bytes" in wrong_offset.json()["detail"]
    past_total = client.put(path, params={"offset": 0, "total_size": 10}, content=data)
    assert past_total.status_code == 422 and "passes total_size" in past_total.json()["detail"]
    mismatch = client.put(f"/files/stream/{'ab' * 32}", params={"offset": 0, "total_size": len(data)}, content=data)
    assert mismatch.status_code == 422 and "does not match the content" in mismatch.json()["detail"]
    too_big = client.put(path, params={"offset": 0, "total_size": 3 << 20}, content=b"\0" * (2 << 20))
    assert too_big.status_code == 413
    assert client.get(path).json()["received"] <= 1 << 20, "at most the pieces before the limit stay staged"
    client.put(path, params={"offset": 0, "total_size": 0}, content=b"")  # a wrong total ends nothing stored
    malformed = client.put("/files/stream/nothex", params={"offset": 0, "total_size": 1}, content=b"x")
    assert malformed.status_code == 422 and "file_hash" in malformed.json()["detail"]
    assert stored_files(home) == before
    resumed = client.get(path).json()["received"]
    done = client.put(path, params={"offset": resumed, "total_size": len(data)}, content=data[resumed:])
    assert done.status_code == 201 and done.json()["file"]["file_hash"] == sha256_bytes(data)
    assert not staged(home)


def test_the_later_dshpc_chunked_routes(served: tuple[httpx.Client, Path, bytes, str]) -> None:
    client, home, _, _ = served
    data = os.urandom(2500)
    init = client.post("/files/upload-chunked/init", json={
        "file_hash": sha256_bytes(data), "filename": "c.bin", "content_type": "application/x-test",
        "total_size": len(data), "chunk_size": 1000, "metadata": {"from": "dsHPC"},
    })  # fmt: skip
    assert init.status_code == 200 and set(init.json()) == {"session_id", "file_hash", "message"}
    session = init.json()["session_id"]
    base = f"/files/upload-chunked/{session}"
    for number in (2, 0):
        piece = data[number * 1000 : number * 1000 + 1000]
        sent = client.post(f"{base}/chunk", json={"chunk_number": number, "chunk_data": _b64(piece)})
        assert sent.status_code == 200
    assert sent.json() == {"session_id": session, "chunk_number": 0, "chunks_received": 2, "total_chunks": 3,
                           "message": "Chunk 0 stored successfully"}  # fmt: skip
    missing = client.post(f"{base}/finalize", json={"total_chunks": 3})
    assert missing.status_code == 422 and "chunks missing: 1" in missing.json()["detail"]
    status = client.get(f"{base}/status").json()
    assert (status["chunks_received"], status["total_size"], status["status"]) == ([0, 2], 2500, "active")
    client.post(f"{base}/chunk", json={"chunk_number": 1, "chunk_data": _b64(data[1000:2000])})
    final = client.post(f"{base}/finalize", json={"total_chunks": 3})
    assert final.status_code == 200
    assert final.json()["file_hash"] == sha256_bytes(data) and final.json()["metadata"] == {"from": "dsHPC"}
    assert client.get(f"/files/{sha256_bytes(data)}/content").content == data
    assert client.get(f"{base}/status").status_code == 404, "a finalized session is gone"
    assert not staged(home)


def test_bad_chunked_uploads_are_refused_and_leave_nothing(served: tuple[httpx.Client, Path, bytes, str]) -> None:
    client, home, _, _ = served
    before = stored_files(home)
    unknown = client.post(f"/files/upload-chunked/{'0' * 8}-0000-0000-0000-{'0' * 12}/chunk",
                          json={"chunk_number": 0, "chunk_data": ""})  # fmt: skip
    assert unknown.status_code == 404 and "not found" in unknown.json()["detail"]
    assert client.post("/files/upload-chunked/../../etc/chunk", json={}).status_code in (404, 422)
    data = b"z" * 300
    init = {"file_hash": sha256_bytes(b"other"), "total_size": len(data), "chunk_size": 100}
    session = client.post("/files/upload-chunked/init", json=init).json()["session_id"]
    base = f"/files/upload-chunked/{session}"
    out_of_range = client.post(f"{base}/chunk", json={"chunk_number": 3, "chunk_data": _b64(data[:100])})
    assert out_of_range.status_code == 422 and "0 to 2" in out_of_range.json()["detail"]
    too_big = client.post(f"{base}/chunk", json={"chunk_number": 0, "chunk_data": _b64(data[:101])})
    assert too_big.status_code == 413 and "chunk_size 100" in too_big.json()["detail"]
    bad_base64 = client.post(f"{base}/chunk", json={"chunk_number": 0, "chunk_data": "!!"})
    assert bad_base64.status_code == 422 and "chunk_data" in bad_base64.json()["detail"]
    for number in range(3):
        client.post(
            f"{base}/chunk", json={"chunk_number": number, "chunk_data": _b64(data[number * 100 : number * 100 + 100])}
        )
    wrong_count = client.post(f"{base}/finalize", json={"total_chunks": 4})
    assert wrong_count.status_code == 422 and "total_chunks" in wrong_count.json()["detail"]
    wrong_hash = client.post(f"{base}/finalize", json={"total_chunks": 3})
    assert wrong_hash.status_code == 422 and "does not match the content" in wrong_hash.json()["detail"]
    assert client.get(f"{base}/status").status_code == 404
    malformed = client.post("/files/upload-chunked/init", json={**init, "file_hash": "xyz"})
    assert malformed.status_code == 422 and "file_hash" in malformed.json()["detail"]
    cancelled = client.post("/files/upload-chunked/init", json=init).json()["session_id"]
    assert client.delete(f"/files/upload-chunked/{cancelled}").status_code == 200
    assert client.get(f"/files/upload-chunked/{cancelled}/status").status_code == 404
    assert stored_files(home) == before and not staged(home)


def test_abandoned_sessions_are_removed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with thread_server(home, session_ttl=0.0) as url, httpx.Client(base_url=url, timeout=30) as client:
        init = {"file_hash": "ab" * 32, "total_size": 10, "chunk_size": 10}
        first = client.post("/files/upload-chunked/init", json=init).json()["session_id"]
        client.post("/files/upload-chunked/init", json=init)
        assert client.get(f"/files/upload-chunked/{first}/status").status_code == 404
