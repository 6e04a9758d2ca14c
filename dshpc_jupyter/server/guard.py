"""The server's front door, as plain ASGI middleware: the API-key check and the request-body limit.

Both run before routing and before the body is read, so a caller without the key never gets a body parsed
(or a 422 that would hint at the API), and no request can make the server buffer more than the limit.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Collection

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_KEY_HEADER = "X-API-Key"
_HEADER = API_KEY_HEADER.lower().encode("latin-1")


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


def bearer_token(header: bytes | None) -> bytes | None:
    """The key of an ``Authorization: Bearer <key>`` header (what the later dsHPC's R client sends), or None."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    return token.strip() or None if scheme.lower() == b"bearer" else None


class Guard:
    """Checks ``X-API-Key`` (constant-time; exactly one; else ``Authorization: Bearer``) on every path but
    ``open_paths``, then buffers the body up to ``max_body_bytes`` (413 beyond) within ``body_timeout`` seconds
    (408 after) and hands it to the app."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_key: str | None,
        max_body_bytes: int,
        open_paths: Collection[str] = (),
        streamed: tuple[str, ...] = (),
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        self.app = app
        #: Path prefixes whose body is not buffered here: their route streams it and counts it to the limit.
        self._streamed = streamed
        self._key = api_key.encode("utf-8") if api_key is not None else None
        self._max = max_body_bytes
        self._open = frozenset(open_paths)
        self._body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self._key is not None and scope["path"] not in self._open:
            given = headers.get(_HEADER)
            if sum(name == _HEADER for name, _ in scope["headers"]) > 1:
                await send_error(send, 400, f"{API_KEY_HEADER} header: given more than once; send it once")
                return
            where = f"the {API_KEY_HEADER} header"
            if given is None:
                given, where = bearer_token(headers.get(b"authorization")), "the Authorization header"
            if given is None:
                await send_error(send, 401, f"Missing {API_KEY_HEADER} header: this server requires an API key")
                return
            if not hmac.compare_digest(given, self._key):
                await send_error(send, 401, f"Invalid API key in {where}")
                return
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
