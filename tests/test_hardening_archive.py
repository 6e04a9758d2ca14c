"""Fault injection: crafted method archives sent to a real server (issue 14, item 1).

The archives are made by GNU tar itself (``tar --sparse`` over a file that is one big hole), so the server sees
exactly what an attacker would send: a few hundred bytes standing for gigabytes.
"""

from __future__ import annotations

import base64
import io
import resource
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import httpx
import pytest
from http_support import thread_server

from dshpc_jupyter.domain.archive import extract_archive
from dshpc_jupyter.domain.errors import InvalidInputError, LimitExceededError

pytestmark = pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar makes the sparse archives")


def _sparse_archive(tmp_path: Path, hole_bytes: int) -> bytes:
    """A method directory whose ``main.py`` is a ``hole_bytes`` hole, packed with ``tar --sparse -z``."""
    method = tmp_path / f"sparse-{hole_bytes}"
    method.mkdir()
    (method / "method.json").write_text('{"name": "Sparse", "command": "python3", "script_path": "main.py"}')
    with (method / "main.py").open("wb") as handle:
        handle.truncate(hole_bytes)
    archive = tmp_path / f"sparse-{hole_bytes}.tgz"
    subprocess.run(["tar", "--sparse", "-czf", str(archive), "-C", str(method), "."], check=True)
    return archive.read_bytes()


def _uploads_left() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("dshpc-method-upload-*"))


@pytest.mark.parametrize("hole_bytes", [1 << 30, 6 << 30], ids=["1GiB", "6GiB"])
def test_a_sparse_member_is_refused_without_being_unpacked(tmp_path: Path, home: Path, hole_bytes: int) -> None:
    archive = _sparse_archive(tmp_path, hole_bytes)
    assert len(archive) < 2048
    before_uploads = set(_uploads_left())
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with thread_server(home) as url:
        answer = httpx.post(f"{url}/methods", json={"archive": base64.b64encode(archive).decode()}, timeout=60)
        assert answer.status_code == 422, answer.text
        assert "'./main.py' is a sparse file" in answer.json()["detail"]
        assert httpx.get(f"{url}/methods", timeout=10).json() == []
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 64 << 10, f"the server grew by {grown_kib} KiB unpacking a refused archive"
    assert set(_uploads_left()) == before_uploads


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_an_oversize_member_is_refused_before_any_of_it_is_written(tmp_path: Path) -> None:
    archive = _tar_gz({"small.txt": b"x" * 100, "big.bin": b"\0" * (3 << 20)})
    with pytest.raises(LimitExceededError, match="more than 1048576 bytes"):
        extract_archive(archive, tmp_path, max_bytes=1 << 20)
    assert (tmp_path / "small.txt").read_bytes() == b"x" * 100
    assert not (tmp_path / "big.bin").exists()


def test_many_small_members_are_counted_together(tmp_path: Path) -> None:
    archive = _tar_gz({f"part{i}.txt": b"y" * 300_000 for i in range(5)})
    with pytest.raises(LimitExceededError, match="more than 1048576 bytes"):
        extract_archive(archive, tmp_path, max_bytes=1 << 20)
    assert sum(path.stat().st_size for path in tmp_path.iterdir()) <= 1 << 20


def test_a_huge_pax_header_is_stopped_by_the_inflation_cap(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.txt")
        info.pax_headers = {"comment": "z" * (8 << 20)}
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(LimitExceededError, match="unpacks to more than"):
        extract_archive(buffer.getvalue(), tmp_path, max_bytes=1 << 20, max_members=10)


def test_a_tar_cut_in_the_middle_of_a_member_is_refused(tmp_path: Path) -> None:
    import gzip

    raw = gzip.decompress(_tar_gz({"a.txt": b"a" * 5000}))
    with pytest.raises(InvalidInputError, match="archive: not a valid tar archive"):
        extract_archive(gzip.compress(raw[:1500]), tmp_path)
