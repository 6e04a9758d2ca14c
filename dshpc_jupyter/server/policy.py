"""Who may call what: one table of route -> rule, the only place a route's access is decided, from which the
API docs' table is generated (docs/design.md section 11.2; ``tests/test_policy.py`` checks both).

Roles: ``anyone`` (no credential), ``user`` (any valid token; what a user may touch of others' records is the
``note``, enforced by :mod:`..backends.team`) and ``admin``. A route without a rule is refused (403) on a
server with authentication, so a new route is closed until its rule is written here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Request
from starlette.routing import BaseRoute, Route

from ..domain.errors import ForbiddenError
from ..service.identity import current_caller

Role = Literal["anyone", "user", "admin"]


@dataclass(frozen=True, slots=True)
class Rule:
    role: Role
    note: str = ""


_OWN = "users: their own; admins: anyone's"
RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/health"): Rule("anyone"),
    ("GET", "/openapi.json"): Rule("user"),
    ("GET", "/docs"): Rule("user"),
    ("GET", "/docs/oauth2-redirect"): Rule("user"),
    ("GET", "/redoc"): Rule("user"),
    ("GET", "/services/status"): Rule("user", "`limits.max_configs`: the caller's quota where it is tighter than"
                                              " the server's"),
    ("GET", "/whoami"): Rule("user", "the caller's name, role and quotas"),
    ("POST", "/simulate-job"): Rule("user", "the job is the caller's when new; cached answers are shared"),
    ("POST", "/simulate-jobs"): Rule("user", "the batch is the caller's; `batch_id` only of the caller's own batch"
                                             " (admins: any); at most the caller's `max_configs` configs"),
    ("POST", "/files/upload"): Rule("user", "content is shared by hash; the uploader is recorded"),
    ("POST", "/files/check-hashes"): Rule("user"),
    ("GET", "/files"): Rule("user"),
    ("GET", "/files/{file_hash}"): Rule("user"),
    ("GET", "/files/{file_hash}/content"): Rule("user"),
    ("PUT", "/files/stream/{file_hash}"): Rule("user", "the uploader is recorded"),
    ("GET", "/files/stream/{file_hash}"): Rule("user"),
    ("POST", "/files/upload-chunked/init"): Rule("user"),
    ("POST", "/files/upload-chunked/{session_id}/chunk"): Rule("user"),
    ("POST", "/files/upload-chunked/{session_id}/finalize"): Rule("user", "sessions by their random id"),
    ("GET", "/files/upload-chunked/{session_id}/status"): Rule("user"),
    ("DELETE", "/files/upload-chunked/{session_id}"): Rule("user"),
    ("GET", "/methods"): Rule("user"),
    ("POST", "/methods"): Rule("admin", "registering a method is running code on the server (audited)"),
    ("GET", "/methods/by-name/{name:path}"): Rule("user"),
    ("GET", "/methods/versions/{name:path}"): Rule("user"),
    ("GET", "/job/{job_id}"): Rule("user", "by id: a job id reaches a user only in an answer to their own config"),
    ("GET", "/jobs"): Rule("user", "`scope=mine` (default): the caller's jobs; `scope=all`: admins"),
    ("POST", "/jobs/batch"): Rule("user", "by id, as `GET /job/{job_id}`"),
    ("POST", "/jobs/cancel"): Rule("user", _OWN + " (audited)"),
    ("GET", "/batches"): Rule("user", "`scope=mine` (default): the caller's batches; `scope=all`: admins"),
    ("GET", "/batches/{batch_id}"): Rule("user", _OWN + "; others' batches are not found (404)"),
    ("POST", "/batches/{batch_id}/cancel"): Rule("user", _OWN + " (audited)"),
    ("GET", "/users"): Rule("admin", "names, roles and quotas; never tokens"),
    ("GET", "/users/usage"): Rule("user", "jobs running, pending and in total: users their own, admins everyone's"),
    ("GET", "/audit"): Rule("admin", "registrations, cancels, forgets and user changes, with who and when"),
    ("GET", "/jobs/changes"): Rule("user", "admins only see every job's changes; a user is answered 404, so their"
                                           " client polls their jobs by id"),
    ("POST", "/jobs/forget"): Rule("user", _OWN + " (audited)"),
    ("DELETE", "/job/{job_id}"): Rule("user", _OWN + " (audited)"),
    ("GET", "/job/{job_id}/logs"): Rule("user", _OWN + "; others' logs are not found (404)"),
    ("POST", "/pipelines"): Rule(
        "user", "the pipeline and its steps' new jobs are the caller's; a step's job is shared by content like any job"
    ),
    ("GET", "/pipelines/{pipeline_id}"): Rule(
        "user", "users: their own; admins: anyone's; others' pipelines are not found (404)"
    ),
    ("POST", "/pipelines/{pipeline_id}/cancel"): Rule("user", "users: their own; admins: anyone's (audited)"),
    ("POST", "/query-job"): Rule("user", "the later dsHPC's single-job route, as `POST /simulate-job`"),
    ("POST", "/submit-meta-job"): Rule("user", "the later dsHPC's chain: a pipeline"),
    ("GET", "/meta-job/{meta_job_hash}"): Rule("user", "as `GET /pipelines/{pipeline_id}`"),
    ("POST", "/pipeline/submit"): Rule("user", "the later dsHPC's DAG: a pipeline"),
    ("GET", "/pipeline/{pipeline_hash}"): Rule("user", "as `GET /pipelines/{pipeline_id}`"),
    ("DELETE", "/pipeline/{pipeline_hash}"): Rule("user", "as `POST /pipelines/{pipeline_id}/cancel`"),
}  # fmt: skip


def rule_for(method: str, path: str) -> Rule | None:
    return RULES.get((method, path))


def allowed(rule: Rule | None, *, admin: bool, authenticated: bool) -> bool:
    """Whether a caller gets past a rule (what a note adds is checked where the records are)."""
    if rule is None:
        return False
    if rule.role == "anyone":
        return True
    return authenticated and (rule.role == "user" or admin)


def enforcer(enabled: bool) -> Any:
    """The app-wide dependency that applies the table to every API route (the docs routes are behind the
    guard's authentication alone: their rule is ``user``)."""

    async def enforce(request: Request) -> None:
        if not enabled:
            return
        route = request.scope.get("route")
        path = getattr(route, "path", request.url.path)
        rule = rule_for(request.method, path)
        caller = current_caller()
        if rule is None:
            raise ForbiddenError(f"{request.method} {path}: no access rule for this route (server/policy.py)")
        if not allowed(rule, admin=caller.admin, authenticated=caller.name is not None):
            raise ForbiddenError(f"{request.method} {path}: for admins only; you are {caller.name!r}, a user")

    return enforce


def routes_of(routes: Iterable[BaseRoute]) -> Iterator[tuple[str, str]]:
    """(method, path) of every route of an app, through included routers (how the table test sees them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from routes_of(inner.routes)
        elif isinstance(route, Route):  # FastAPI's routes and the docs' routes alike
            methods = route.methods or set()
            for method in sorted(methods):
                if method != "HEAD" or methods == {"HEAD"}:  # HEAD comes with GET and is answered by it
                    yield method, route.path


def markdown_table() -> str:
    """The rules as the Markdown table of docs/design.md section 11.2."""
    lines = ["| route | who | what else |", "|---|---|---|"]
    for (method, path), rule in RULES.items():
        lines.append(f"| `{method} {path}` | {rule.role} | {rule.note} |")
    return "\n".join(lines)
