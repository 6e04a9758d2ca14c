"""Who a request comes from: its credential (``X-API-Key`` or ``Authorization: Bearer``) and the caller it
stands for, the server's single key (an admin) or a user's token (:mod:`..service.users`).

The single key is compared in constant time; a user's token is looked up by its public id and its secret
compared in constant time against the stored salted hash, so neither leaks through timing.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable

import anyio.to_thread

from ..domain.errors import AuthenticationError
from ..service.identity import Caller
from ..service.users import API_KEY_USER, Team

API_KEY_HEADER = "X-API-Key"
_KEY = API_KEY_HEADER.lower().encode("latin-1")
_AUTHORIZATION = b"authorization"

#: A token in, the caller out (None: not a valid credential).
Authenticate = Callable[[str], Awaitable[Caller | None]]


class CredentialError(AuthenticationError):
    """A request whose credential headers cannot be read (400 for two credentials, 401 for none)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status


def credential(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The one token a request carries, from ``X-API-Key`` or ``Authorization: Bearer``: given once, by one of
    them (CredentialError 400 for two, 401 for none)."""
    found: list[str] = []
    for name, value in headers:
        if name == _KEY:
            found.append(value.decode("latin-1"))
        elif name == _AUTHORIZATION:
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise CredentialError(401, "Authorization header: expected 'Bearer <token>'")
            found.append(token.strip())
    if len(found) > 1:
        raise CredentialError(
            400, f"{API_KEY_HEADER} / Authorization headers: a credential given more than once; send one"
        )
    if not found:
        raise CredentialError(
            401, f"Missing {API_KEY_HEADER} header (or Authorization: Bearer): this server requires a token"
        )
    return found[0]


def authenticator(api_key: str | None, team: Team | None) -> Authenticate | None:
    """How this server authenticates: None when it is open (no key, no users when it started)."""
    if api_key is None and (team is None or not team.has_users()):
        return None
    key = None if api_key is None else api_key.encode("utf-8")

    async def authenticate(token: str) -> Caller | None:
        if key is not None and hmac.compare_digest(token.encode("utf-8", "surrogateescape"), key):
            return Caller(name=API_KEY_USER, admin=True)
        if team is None:
            return None
        return await anyio.to_thread.run_sync(team.authenticate, token)

    return authenticate
