"""The wire models of a server for a team (docs/design.md section 11): who the caller is, the users, their
usage and the audit trail. Apart from :mod:`.models` because they exist only where there are users."""

from __future__ import annotations

from typing import Any, Literal

from .models import Model


class WhoAmI(Model):
    """``GET /whoami``: the caller as the service sees them. ``name`` None is the embedded engine's local user
    (or an open server's anonymous caller), who owns nothing and may do everything."""

    name: str | None
    role: Literal["admin", "user"]
    auth_required: bool = False
    max_running: int | None = None
    max_configs: int | None = None


class UserRecord(Model):
    """A user as ``GET /users`` lists it: never the token."""

    name: str
    role: Literal["admin", "user"]
    active: bool
    max_running: int | None = None
    max_configs: int | None = None
    created_at: float


class Usage(Model):
    """One user's jobs: started and not finished, waiting to start, and ever submitted."""

    running: int = 0
    pending: int = 0
    total: int = 0


class AuditEntry(Model):
    """One audited action: when (epoch seconds), who, what, on what, and its details."""

    at: float
    actor: str | None
    action: str
    target: str | None = None
    detail: dict[str, Any] | None = None
