"""Users of a shared server: their tokens, roles and quotas, and the audit trail of what changes them.

A token is ``dshpc_<token_id>_<secret>``: ``token_id`` (8 random bytes, hex) is stored in clear to find the
user in one indexed lookup; ``secret`` (32 random bytes) is stored only as SHA-256 over a per-token random salt
and the secret, and compared with ``hmac.compare_digest``. Why not scrypt or PBKDF2: they slow down guessing of
low-entropy passwords; a 256-bit random secret cannot be guessed however fast the hash, so a slow hash would
only make every request slower. The salt still keeps two stores' hashes of one token apart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..domain.errors import ConflictError, InvalidInputError, NotFoundError
from ..domain.models import MethodInfo
from ..store.sqlite import Store
from ..store.team import TeamStore, UserRow
from .identity import Caller, current_caller

TOKEN_PREFIX = "dshpc_"  # noqa: S105 (the public prefix of every token, not a secret)
#: The caller that the server's single ``--api-key-env`` key stands for: an admin no user can be named.
API_KEY_USER = "(api-key)"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_TOKEN = re.compile(r"dshpc_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per-user limits; None is the server's default (see ``Team``)."""

    max_running: int | None = None
    max_configs: int | None = None


@dataclass(frozen=True, slots=True)
class UserInfo:
    """What ``users list`` and ``GET /users`` show: never the token."""

    name: str
    admin: bool
    active: bool
    max_running: int | None
    max_configs: int | None
    created_at: float


def _digest(salt: bytes, secret: str) -> bytes:
    return hashlib.sha256(salt + secret.encode("ascii")).digest()


def _new_token() -> tuple[str, str, bytes, bytes]:
    """(token, token_id, salt, hash): the token is shown once and never stored."""
    token_id, secret, salt = secrets.token_hex(8), secrets.token_urlsafe(32), secrets.token_bytes(16)
    return f"{TOKEN_PREFIX}{token_id}_{secret}", token_id, salt, _digest(salt, secret)


def _check_quota(field: str, value: int | None) -> None:
    if value is not None and not 1 <= value <= 1_000_000:
        raise InvalidInputError(f"{field}: {value} is not between 1 and 1000000")


class Team:
    """The users of one store. Every change is audited with the caller (``current_caller``) as the actor, or
    ``actor`` when given (the CLI names the operating-system user)."""

    def __init__(self, store: Store, *, defaults: Quotas = Quotas()) -> None:
        self.table = TeamStore(store)
        self.defaults = defaults

    # --- tokens ----------------------------------------------------------------------------------------

    def authenticate(self, token: str) -> Caller | None:
        """The user a token belongs to, or None (malformed, unknown, revoked or wrong: all the same answer)."""
        match = _TOKEN.fullmatch(token)
        if match is None:
            return None
        row = self.table.user_by_token_id(match[1])
        if row is None or row.token_salt is None or row.token_hash is None:
            return None
        if not hmac.compare_digest(_digest(row.token_salt, match[2]), row.token_hash):
            return None
        return Caller(name=row.name, admin=row.admin, max_running=self._quotas(row).max_running)

    # --- users -----------------------------------------------------------------------------------------

    def add(self, name: str, *, admin: bool = False, quotas: Quotas = Quotas(), actor: str | None = None) -> str:
        """Create a user; their token (shown this once)."""
        if not _NAME.fullmatch(name):
            raise InvalidInputError(
                f"name: {name!r} must be 1-64 letters, digits or '_.@-', starting with a letter or digit"
            )
        _check_quota("max_running", quotas.max_running)
        _check_quota("max_configs", quotas.max_configs)
        token, token_id, salt, digest = _new_token()
        row = UserRow(name, admin, token_id, salt, digest, quotas.max_running, quotas.max_configs, time.time(), None)
        if not self.table.add_user(row):
            raise ConflictError(f"name: user {name!r} exists already (rotate its token with `users rotate`)")
        self._audit(actor, "user.add", name, {"admin": admin, "max_running": quotas.max_running,
                                              "max_configs": quotas.max_configs})  # fmt: skip
        return token

    def rotate(self, name: str, *, actor: str | None = None) -> str:
        """A new token for ``name`` (the old one stops working; a revoked user is active again)."""
        token, token_id, salt, digest = _new_token()
        self._update(name, token_id=token_id, token_salt=salt, token_hash=digest, revoked_at=None)
        self._audit(actor, "user.rotate", name, None)
        return token

    def revoke(self, name: str, *, actor: str | None = None) -> None:
        """The user's token stops working; their jobs and batches stay (and stay theirs)."""
        self._update(name, token_id=None, token_salt=None, token_hash=None, revoked_at=time.time())
        self._audit(actor, "user.revoke", name, None)

    def change(
        self, name: str, *, admin: bool | None = None, quotas: Quotas = Quotas(), actor: str | None = None
    ) -> None:
        """Change a user's role or quotas (what is None stays as it is)."""
        _check_quota("max_running", quotas.max_running)
        _check_quota("max_configs", quotas.max_configs)
        values: dict[str, Any] = {"admin": None if admin is None else int(admin), "max_running": quotas.max_running,
                                  "max_configs": quotas.max_configs}  # fmt: skip
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            raise InvalidInputError("users set: give --admin/--no-admin, --max-running or --max-configs")
        self._update(name, **values)
        self._audit(actor, "user.set", name, values)

    def members(self) -> list[UserInfo]:
        return [
            UserInfo(r.name, r.admin, r.revoked_at is None, r.max_running, r.max_configs, r.created_at)
            for r in self.table.users()
        ]

    def has_users(self) -> bool:
        return self.table.has_users()

    def quotas(self, name: str | None) -> Quotas:
        """A user's quotas with the defaults filled in (the local user and the API key have the defaults)."""
        return self._quotas(None if name is None else self.table.user(name))

    def _quotas(self, row: UserRow | None) -> Quotas:
        if row is None:
            return self.defaults
        return Quotas(
            row.max_running if row.max_running is not None else self.defaults.max_running,
            row.max_configs if row.max_configs is not None else self.defaults.max_configs,
        )

    def audit(self, action: str, target: str | None, detail: dict[str, Any] | None = None) -> None:
        """Record an action of the current caller."""
        self._audit(None, action, target, detail)

    def registered(self, methods: Sequence[MethodInfo], *, actor: str | None = None) -> None:
        """Record a registration: each name with the ``function_hash`` it now has."""
        versions = {m.name: m.function_hash for m in methods}
        self._audit(actor, "method.register", ", ".join(versions), {"versions": versions})

    def _audit(self, actor: str | None, action: str, target: str | None, detail: dict[str, Any] | None) -> None:
        self.table.audit(actor if actor is not None else current_caller().name, action, target, detail)

    def _update(self, name: str, **values: Any) -> None:
        if not self.table.update_user(name, **values):
            raise NotFoundError(f"name: no user {name!r} (see `users list`)")
