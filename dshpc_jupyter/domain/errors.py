"""Exceptions shared by every backend, so callers handle one family whichever backend they hold.

The HTTP server maps them to status codes (``status_code``); the client raises them back from ``detail``.
"""

from __future__ import annotations

import errno


class DshpcError(Exception):
    """Base of every error this package raises on purpose. ``str(error)`` is the message for a user."""

    status_code = 400


class InvalidInputError(DshpcError, ValueError):
    """The caller sent something malformed; the message names the field and the problem."""

    status_code = 422


class NotFoundError(DshpcError, LookupError):
    """A file, method, job or batch that the store does not know."""

    status_code = 404


class ConflictError(DshpcError):
    """The thing already exists (an upload of a file the store holds)."""

    status_code = 409


class BackendError(DshpcError):
    """The service could not be reached, or failed in a way that is not the caller's mistake."""

    def __init__(self, message: str, status_code: int = 503) -> None:
        super().__init__(message)
        self.status_code = status_code


class MethodSpecError(InvalidInputError):
    """A method directory or its ``method.json`` is not usable; the message names the field."""


class InvalidParametersError(InvalidInputError):
    """A call's parameters do not fit the method's spec; the message names the parameter."""


class StoreVersionError(DshpcError):
    """The store was written by a newer version of this package."""

    status_code = 500


class SchedulerError(DshpcError):
    """The scheduler refused or failed an operation (after retries, where retrying makes sense)."""

    status_code = 503


class AuthenticationError(DshpcError, PermissionError):
    """The service wants an API key (``X-API-Key``) and none, or a wrong one, was given."""

    status_code = 401


class ForbiddenError(AuthenticationError):
    """The caller is known but their role does not allow this (an admin's route, another user's record)."""

    status_code = 403


class LimitExceededError(InvalidInputError):
    """A request over one of the service's limits (body size, configs per call); split it and send again."""

    status_code = 413


class StoreBusyError(BackendError):
    """Another process held the store's write lock past the wait (``$DSHPC_BUSY_TIMEOUT``): nothing was written;
    send the request again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, 503)
        self.retry_after = retry_after


class StoreDamagedError(DshpcError):
    """The store file is empty, truncated, not a database or has a corrupted page: refused, never re-created;
    ``dshpc-jupyter store check | backup | restore`` are the way back."""

    status_code = 503


class DiskFullError(DshpcError, OSError):
    """A write needed space the disk holding the home does not have; the message names the disk."""

    status_code = 507


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def disk_full(exc: BaseException, where: object) -> DiskFullError | None:
    """The DiskFullError an OSError means when it is "no space left" (or over quota), naming the disk of
    ``where``; None for any other error."""
    if isinstance(exc, DiskFullError):
        return exc
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        return DiskFullError(f"no space left on the disk holding {where}: free some space there and try again")
    return None
