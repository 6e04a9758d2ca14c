"""Method archives: what the client packs unpacks to the same method (same function_hash), and the server's
extraction refuses bombs, oversize and truncated archives before writing anything unbounded."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from support import write_method

from dshpc_jupyter.domain.archive import extract_archive, pack_directory
from dshpc_jupyter.domain.errors import InvalidInputError, LimitExceededError
from dshpc_jupyter.domain.methods import find_method_dirs, load_method
from dshpc_jupyter.examples import methods_dir


def test_a_packed_directory_of_methods_unpacks_to_the_same_methods(tmp_path: Path) -> None:
    source = methods_dir()
    directories = find_method_dirs(source)
    extract_archive(pack_directory(source, directories), tmp_path / "out")
    unpacked = {m.spec.name: m.function_hash for m in map(load_method, find_method_dirs(tmp_path / "out"))}
    assert unpacked == {m.spec.name: m.function_hash for m in map(load_method, directories)}


def test_links_are_packed_as_the_files_they_point_to_and_caches_are_left_out(tmp_path: Path) -> None:
    directory = write_method(tmp_path / "src", "Linked", "import helper\n")
    (tmp_path / "shared.py").write_text("VALUE = 1\n", encoding="utf-8")
    (directory / "helper.py").symlink_to(tmp_path / "shared.py")
    (directory / "__pycache__").mkdir()
    (directory / "__pycache__" / "x.pyc").write_bytes(b"cache")
    with tarfile.open(fileobj=io.BytesIO(pack_directory(directory, [directory])), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["helper.py", "main.py", "method.json"]
    assert all(m.isreg() for m in members.values())
    extract_archive(pack_directory(directory, [directory]), tmp_path / "out")
    assert (tmp_path / "out" / "helper.py").read_text(encoding="utf-8") == "VALUE = 1\n"
    assert load_method(tmp_path / "out").function_hash == load_method(directory).function_hash


def test_a_decompression_bomb_is_stopped_at_the_limit(tmp_path: Path) -> None:
    bomb = io.BytesIO()
    with tarfile.open(fileobj=bomb, mode="w:gz") as tar:
        info = tarfile.TarInfo("zeros")
        info.size = 8 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    assert len(bomb.getvalue()) < 64 << 10
    with pytest.raises(LimitExceededError, match="more than 1048576 bytes"):
        extract_archive(bomb.getvalue(), tmp_path / "out", max_bytes=1 << 20)
    assert not (tmp_path / "out").exists()


def test_too_many_members_truncated_and_non_tar_archives_are_refused(tmp_path: Path) -> None:
    many = io.BytesIO()
    with tarfile.open(fileobj=many, mode="w:gz") as tar:
        for index in range(20):
            tar.addfile(tarfile.TarInfo(f"f{index}"), io.BytesIO(b""))
    with pytest.raises(LimitExceededError, match="more than 10 members"):
        extract_archive(many.getvalue(), tmp_path / "a", max_members=10)
    with pytest.raises(InvalidInputError, match="truncated"):
        extract_archive(many.getvalue()[:-20], tmp_path / "b")
    with pytest.raises(InvalidInputError, match="not a valid tar archive"):
        extract_archive(gzip.compress(json.dumps({"not": "a tar"}).encode() * 50), tmp_path / "c")
