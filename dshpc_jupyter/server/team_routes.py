"""The routes of a server for a team (docs/design.md section 11): who the caller is, the users, their usage
and the audit trail. Who may call each is in :mod:`.policy`; the records come from :mod:`..backends.team`."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Query
from fastapi.responses import Response

from ..backends.team import TeamBackend
from ..domain.team import AuditEntry, Usage, UserRecord, WhoAmI
from ..service.identity import current_caller
from .wire import respond


def team_routes(backend: TeamBackend | None, auth: bool, responses: dict[int | str, dict[str, Any]]) -> APIRouter:
    """The team's routes; without users (``backend`` None) only ``/whoami``, which then names no one."""
    router = APIRouter(tags=["users"], responses=responses)

    @router.get("/whoami", response_model=WhoAmI)
    async def whoami() -> Response:
        """The caller's name, role and quotas (the server's single API key is the admin ``(api-key)``)."""
        caller = current_caller()
        quotas = await anyio.to_thread.run_sync(backend.team.quotas, caller.name) if backend is not None else None
        return await respond(WhoAmI, WhoAmI(
            name=caller.name, role="admin" if caller.admin else "user", auth_required=auth,
            max_running=quotas.max_running if quotas else None, max_configs=quotas.max_configs if quotas else None,
        ))  # fmt: skip

    if backend is None:
        return router

    @router.get("/users", response_model=list[UserRecord])
    async def list_users() -> Response:
        return await respond(list[UserRecord], await backend.users())

    @router.get("/users/usage", response_model=dict[str, Usage])
    async def usage() -> Response:
        """Per user: jobs running, pending and in total (a user sees their own line)."""
        return await respond(dict[str, Usage], await backend.usage())

    @router.get("/audit", response_model=list[AuditEntry])
    async def audit(
        limit: int = Query(100, ge=1, le=100_000),
        action: str | None = Query(None, description="Only this action (user.add, jobs.cancel, ...)."),
    ) -> Response:
        """Registrations, cancels, forgets and user changes, newest first, with who and when."""
        return await respond(list[AuditEntry], await backend.audit(limit, action))

    return router
