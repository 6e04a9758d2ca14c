"""The package's errors from a server's error answers: the status code picks the class, the ``detail`` is the
message (docs/design.md section 4.3)."""

from __future__ import annotations

import httpx
from pydantic_core import to_json

from ..domain.errors import (
    AuthenticationError,
    BackendError,
    ConflictError,
    DiskFullError,
    DshpcError,
    ForbiddenError,
    InvalidInputError,
    LimitExceededError,
    NotFoundError,
    SchedulerError,
)

_STATUS_ERRORS: dict[int, type[DshpcError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: LimitExceededError,
    422: InvalidInputError,
    503: SchedulerError,
    507: DiskFullError,
}


def _detail(response: httpx.Response) -> str:
    """The server's ``detail`` (a string here; the list FastAPI gives elsewhere is shown as JSON)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("detail") is not None:
        detail = body["detail"]
        return detail if isinstance(detail, str) else to_json(detail).decode()[:1000]
    return response.text.strip()[:500] or response.reason_phrase


def error_from_response(response: httpx.Response) -> DshpcError:
    """The :mod:`.errors` exception for an error answer, carrying the server's ``detail``."""
    detail = _detail(response)
    kind = _STATUS_ERRORS.get(response.status_code)
    if kind is None:
        return BackendError(f"{response.request.method} {response.request.url.path}: {detail}", response.status_code)
    return kind(detail)
