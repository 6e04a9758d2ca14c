"""The route x role table: every route of the real app has a rule in server/policy.py, and a real server on
127.0.0.1 answers each route, for each role, as its rule says (refused with 401 without a token, 403 for a
user on an admin's route, never refused for a role the rule lets in). The docs' table is the rule table."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from fastapi.responses import Response
from http_support import thread_server
from team_support import SERVER_KEY, TeamServer, team_server

from dshpc_jupyter.backends.team import TeamBackend
from dshpc_jupyter.server import create_app
from dshpc_jupyter.server.policy import RULES, markdown_table, routes_of
from dshpc_jupyter.service.factory import open_engine
from dshpc_jupyter.service.users import Team

DESIGN = Path(__file__).resolve().parents[1] / "docs" / "design.md"
ROLES = (None, "alice", "root", "key")  # no token, a user, an admin, the server's single key (an admin)


def app_routes(home: Path) -> list[tuple[str, str]]:
    engine = open_engine(home)
    try:
        return list(routes_of(create_app(TeamBackend(engine, Team(engine.store)), api_key=SERVER_KEY).routes))
    finally:
        engine.close()


def test_every_route_of_the_app_has_a_rule(tmp_path: Path) -> None:
    routes = app_routes(tmp_path / "home")
    missing = [f"{method} {path}" for method, path in routes if (method, path) not in RULES]
    assert not missing, f"routes without a rule in dshpc_jupyter/server/policy.py RULES: {missing}"
    stale = [f"{method} {path}" for method, path in RULES if (method, path) not in routes]
    assert not stale, f"rules for routes the app does not have: {stale}"


def expected_refusal(role: str, who: str | None) -> int | None:
    if role == "anyone":
        return None
    if who is None:
        return 401
    return 403 if role == "admin" and who == "alice" else None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> TeamServer:
    with team_server(tmp_path_factory.mktemp("policy") / "home") as running:
        yield running  # type: ignore[misc]


@pytest.mark.parametrize("who", ROLES, ids=lambda who: who or "nobody")
def test_each_route_answers_each_role_as_its_rule_says(server: TeamServer, who: str | None, tmp_path: Path) -> None:
    wrong: list[str] = []
    with server.client(who) as client:
        for method, path in app_routes(tmp_path / "home"):
            concrete = re.sub(r"\{[^}]+\}", "no-such-thing", path)
            answer = client.request(method, concrete, content=b"")
            refusal = expected_refusal(RULES[method, path].role, who)
            refused = answer.status_code in (401, 403) and "detail" in answer.json()
            if refusal is None and refused:
                wrong.append(f"{method} {path}: refused {answer.status_code} {answer.json()['detail']}")
            elif refusal is not None and answer.status_code != refusal:
                wrong.append(f"{method} {path}: {answer.status_code}, expected {refusal}")
            assert answer.status_code < 500, f"{method} {path}: {answer.status_code} {answer.text}"
    assert not wrong, "\n".join(wrong)


def test_a_route_without_a_rule_is_refused(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "home")
    backend = TeamBackend(engine, Team(engine.store))
    app = create_app(backend, api_key=SERVER_KEY)

    @app.get("/unruled")
    async def unruled() -> Response:
        return Response(b"{}")

    with thread_server(tmp_path / "home", backend, app=app) as url:
        answer = httpx.get(f"{url}/unruled", headers={"X-API-Key": SERVER_KEY}, timeout=30)
    assert answer.status_code == 403
    assert answer.json()["detail"] == "GET /unruled: no access rule for this route (server/policy.py)"


def test_the_design_documents_the_rule_table() -> None:
    assert markdown_table() in DESIGN.read_text(encoding="utf-8"), (
        "docs/design.md section 11.2 is out of date: paste server.policy.markdown_table() there"
    )
