"""File uploads: content addressing, idempotence, hash verification, clear errors."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from dshpc_jupyter.domain.errors import ConflictError, InvalidInputError
from dshpc_jupyter.service.engine import Engine
from dshpc_jupyter.service.factory import open_engine


@pytest.fixture
def bare(home: Path) -> Iterator[Engine]:
    engine = open_engine(home)
    yield engine
    engine.close()


def _stored_files(engine: Engine) -> list[Path]:
    return sorted(p for p in engine.home.files_dir.rglob("*") if p.is_file())


def test_upload_is_content_addressed_and_stored_once(bare: Engine, tmp_path: Path) -> None:
    content = b"alpha\nbeta\n"
    digest = hashlib.sha256(content).hexdigest()
    (tmp_path / "notes.txt").write_bytes(content)

    first = bare.upload_file(tmp_path / "notes.txt", metadata={"source": "test"})
    assert (first.file_hash, first.file_size, first.filename) == (digest, len(content), "notes.txt")
    assert first.content_type == "text/plain" and first.metadata == {"source": "test"}
    again = bare.upload_file(content, file_hash=digest)
    same_path = bare.upload_file(str(tmp_path / "notes.txt"))
    assert again == first == same_path, "the stored record is returned"
    assert _stored_files(bare) == [bare.home.file_path(digest)]
    assert bare.home.file_path(digest).read_bytes() == content
    assert [f.file_hash for f in bare.list_files()] == [digest]
    assert list(bare.home.tmp_dir.iterdir()) == [], "no staging leftovers"

    with pytest.raises(ConflictError, match=f"File '{digest}' already exists"):
        bare.upload_file(content, exist_ok=False)


def test_upload_verifies_the_given_hash(bare: Engine) -> None:
    actual = hashlib.sha256(b"data").hexdigest()
    with pytest.raises(InvalidInputError) as caught:
        bare.upload_file(b"data", file_hash="a" * 64)
    assert str(caught.value) == f"file_hash: does not match the content, whose SHA-256 is {actual}"
    for bad in ("abc", actual + "0", "g" * 64):
        with pytest.raises(InvalidInputError, match="file_hash: must be 64 hexadecimal characters"):
            bare.upload_file(b"data", file_hash=bad)
    assert bare.list_files() == [] and _stored_files(bare) == []
    assert list(bare.home.tmp_dir.iterdir()) == []


def test_upload_of_a_missing_path_names_it(bare: Engine, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"path: '.*nowhere\.txt' is not a readable file"):
        bare.upload_file(tmp_path / "nowhere.txt")
    with pytest.raises(InvalidInputError, match="is not a readable file"):
        bare.upload_file(tmp_path)


def test_empty_file_and_check_hashes(bare: Engine) -> None:
    empty = bare.upload_file(b"")
    assert empty.file_hash == hashlib.sha256(b"").hexdigest() and empty.file_size == 0
    missing = "1" * 64
    check = bare.check_hashes([missing, empty.file_hash, "not-a-hash"])
    assert check.existing_hashes == [empty.file_hash]
    assert check.missing_hashes == [missing, "not-a-hash"]


def test_hashes_compare_case_insensitively(engine: Engine) -> None:
    content = b"case matters not"
    upper = hashlib.sha256(content).hexdigest().upper()
    info = engine.upload_file(content, file_hash=upper)
    assert info.file_hash == upper.lower()
    answer = engine.check_hashes([upper, "F" * 64])
    assert (answer.existing_hashes, answer.missing_hashes) == ([upper], ["F" * 64])
