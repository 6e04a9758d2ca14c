"""The server's front door, as plain ASGI middleware: authentication (:mod:`.auth`) and the request-body limit.

Both run before routing and before the body is read, so a caller without the key never gets a body parsed
(or a 422 that would hint at the API), and no request can make the server buffer more than the limit.
"""

from __future__ import annotations

import json
from collections.abc import Collection

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..service.identity import set_caller
from .auth import API_KEY_HEADER, Authenticate, CredentialError, credential

__all__ = ["API_KEY_HEADER", "DEFAULT_BODY_TIMEOUT", "Guard", "send_error"]


class _ClientGoneError(Exception):
    """The client disconnected before its body arrived: there is no one to answer."""


async def send_error(send: Send, status: int, detail: str) -> None:
    """A JSON ``{"detail": ...}`` answer, the shape of every error the API gives."""
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


#: Seconds a request's body may take to arrive in full; a client that stalls longer gets 408.
DEFAULT_BODY_TIMEOUT = 10.0


class Guard:
    """Authenticates every path but ``open_paths`` (one credential, checked by ``authenticate``; the caller is
    set for the request), then buffers the body up to ``max_body_bytes`` (413 beyond) within ``body_timeout``
    seconds (408 after) and hands it to the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Authenticate | None,
        max_body_bytes: int,
        open_paths: Collection[str] = (),
        streamed: tuple[str, ...] = (),
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self.app = app
        #: Path prefixes whose body is not buffered here: their route streams it and counts it to the limit.
        self._streamed = streamed
        self._authenticate = authenticate
        self._max = max_body_bytes
        self._open = frozenset(open_paths)
        self._body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self._authenticate is not None and scope["path"] not in self._open:
            try:
                token = credential(scope["headers"])
            except CredentialError as exc:
                await send_error(send, exc.status_code, str(exc))
                return
            caller = await self._authenticate(token)
            if caller is None:
                await send_error(send, 401, f"Invalid API key or token (in {API_KEY_HEADER} or Authorization)")
                return
            set_caller(caller)
        declared = headers.get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await send_error(send, 400, "Content-Length header: not a number")
                return
            if int(declared) > self._max:
                await send_error(send, 413, self._too_large(int(declared)))
                return
        if self._streamed and scope["path"].startswith(self._streamed):
            await self.app(scope, receive, send)
            return
        try:
            with anyio.fail_after(self._body_timeout):
                body = await self._read_body(receive)
        except _ClientGoneError:
            return
        except TimeoutError:
            await send_error(send, 408, f"request body: did not arrive within {self._body_timeout:g} s")
            return
        if body is None:
            await send_error(send, 413, self._too_large(None))
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self, size: int | None) -> str:
        what = f"{size} bytes" if size is not None else "more than that"
        return (
            f"request body: {what} is over the server's limit of {self._max} bytes "
            "(max_body_bytes in GET /services/status); split the request"
        )

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None when it goes over the limit (chunked uploads have no Content-Length)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGoneError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the buffered body once, then the real channel (for disconnect notices)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
