"""Users and tokens on a real store file: tokens never stored in clear, a bad user change named by its field,
the ``users`` commands (each audited with who ran them), and a store from before users upgraded in place."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from store_versions import downgrade_to_2, seeded_store

from dshpc_jupyter import cli
from dshpc_jupyter.domain.errors import ConflictError, InvalidInputError, NotFoundError
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.service.users import Quotas, Team
from dshpc_jupyter.store.schema import MIGRATIONS, SCHEMA_VERSION
from dshpc_jupyter.store.sqlite import Store
from dshpc_jupyter.store.team import TeamStore

TOKEN = re.compile(r"dshpc_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def stored_bytes(home: Path) -> bytes:
    """Every byte of the store: the database file and its write-ahead log."""
    return b"".join(path.read_bytes() for path in sorted(home.glob("store.sqlite*")) if path.is_file())


def test_tokens_are_stored_only_as_salted_hashes(home: Path) -> None:
    home.mkdir(parents=True)
    store = Store(home / "store.sqlite")
    try:
        team = Team(store)
        tokens = [team.add("alice"), team.add("bob", admin=True), team.rotate("alice")]
        assert all(TOKEN.fullmatch(token) for token in tokens)
        assert team.authenticate(tokens[0]) is None, "rotated away"
        alice, bob = team.authenticate(tokens[2]), team.authenticate(tokens[1])
        assert alice is not None and (alice.name, alice.admin) == ("alice", False)
        assert bob is not None and (bob.name, bob.admin) == ("bob", True)
        for wrong in ("", "dshpc_", tokens[1][:-1] + "x", tokens[1].upper(), tokens[1] + "x"):
            assert team.authenticate(wrong) is None, wrong
        rows = {row.name: row for row in TeamStore(store).users()}
        assert rows["alice"].token_salt != rows["bob"].token_salt, "a salt per token"
        for token in tokens[1:]:
            secret = token.split("_", 2)[2]  # the secret itself may hold "_"
            assert hashlib.sha256(secret.encode()).digest() not in {r.token_hash for r in rows.values()}
    finally:
        store.close()
    data = stored_bytes(home)
    for token in tokens:
        secret = token.split("_", 2)[2]  # the secret itself may hold "_"
        assert token.encode() not in data and secret.encode() not in data, "a token or its secret in clear"


def test_a_bad_user_change_names_its_field(home: Path) -> None:
    home.mkdir(parents=True)
    store = Store(home / "store.sqlite")
    try:
        team = Team(store)
        team.add("alice")
        with pytest.raises(InvalidInputError, match=r"^name: 'no spaces' must be 1-64 letters"):
            team.add("no spaces")
        with pytest.raises(InvalidInputError, match=r"^name: '\(api-key\)' must be"):
            team.add("(api-key)")
        with pytest.raises(ConflictError, match=r"^name: user 'alice' exists already"):
            team.add("alice")
        with pytest.raises(InvalidInputError, match=r"^max_running: 0 is not between 1 and 1000000"):
            team.add("carol", quotas=Quotas(max_running=0))
        with pytest.raises(NotFoundError, match=r"^name: no user 'carol'"):
            team.rotate("carol")
        with pytest.raises(InvalidInputError, match=r"^users set: give --admin"):
            team.change("alice")
        assert [user.name for user in team.members()] == ["alice"], "nothing of the refused changes was kept"
    finally:
        store.close()


@pytest.fixture
def run(home: Path, capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = cli.main(["--home", str(home), *args])
        return code, capsys.readouterr().out

    return run


def test_the_users_commands_print_a_token_once_and_are_audited(run: Any, home: Path) -> None:
    code, out = run("users", "add", "alice", "--max-running", "2")
    assert code == 0 and "shown once" in out
    (token,) = TOKEN.findall(out)
    code, out = run("users", "add", "root", "--admin")
    assert code == 0
    code, out = run("users", "list")
    assert code == 0 and token not in out
    assert re.search(r"alice\s+│\s+user\s+│\s+yes\s+│\s+2\s+│\s+default", out), out
    code, out = run("users", "rotate", "alice")
    (new,) = TOKEN.findall(out)
    assert new != token
    assert run("users", "set", "alice", "--admin", "--max-configs", "50")[0] == 0
    assert run("users", "revoke", "alice") == (0, "revoked the token of alice\n")
    code, out = run("users", "add", "alice")
    assert code == 2 and "name: user 'alice' exists already" in out
    code, out = run("users", "set", "nobody", "--max-running", "3")
    assert code == 2 and "name: no user 'nobody'" in out

    store = Store(home / "store.sqlite")
    try:
        team = Team(store)
        assert team.authenticate(new) is None, "revoked"
        (alice,) = [user for user in team.members() if user.name == "alice"]
        assert (alice.admin, alice.active, alice.max_running, alice.max_configs) == (True, False, 2, 50)
        entries = TeamStore(store).audit_entries(100)
    finally:
        store.close()
    assert [(action, target) for _, _, action, target, _ in reversed(entries)] == [
        ("user.add", "alice"), ("user.add", "root"), ("user.rotate", "alice"), ("user.set", "alice"),
        ("user.revoke", "alice"),
    ]  # fmt: skip
    assert {actor for _, actor, *_ in entries} == {f"cli:{__import__('getpass').getuser()}"}
    assert entries[1][4] == {"admin": 1, "max_configs": 50}


def test_whoami_on_the_embedded_engine_is_the_local_user(run: Any) -> None:
    assert run("whoami") == (0, "local user (admin)\n")


def test_a_store_from_before_users_is_upgraded_and_the_embedded_engine_keeps_working(home: Path) -> None:
    first = seeded_store(home)
    with sqlite3.connect(home / "store.sqlite") as conn:  # back to version 2, as the package before users left it
        downgrade_to_2(conn)
    assert 6 in [step for step, _ in MIGRATIONS]

    engine = open_engine(home)
    try:
        with sqlite3.connect(home / "store.sqlite") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            assert conn.execute("SELECT owner FROM jobs").fetchall() == [(None,)], "made before users: no owner"
            assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
        again = engine.simulate_jobs([first.config])
        assert again.results[0].outcome == "cached" and again.results[0].job_id == first.job.job_id
        assert [b.batch_id for b in engine.batches()] == [again.batch_id, first.batch_id], "the local user sees all"
    finally:
        engine.close()
