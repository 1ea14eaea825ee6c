"""Every operation in the gateway's OpenAPI document is in the route table and guarded."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from lpr_common.context import internal_context
from lpr_gateway.access.guard import guard
from lpr_gateway.access.routes import ROUTE_TABLE, Owner, rule_for
from lpr_gateway.app import create_app
from lpr_gateway.settings import Settings

# Liveness and readiness answer load balancers; they carry no data.
UNGUARDED_BY_DESIGN = {("GET", "/healthz"), ("GET", "/readyz")}


def _calls(dependant: Dependant) -> set[object]:
    found: set[object] = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


@dataclass(frozen=True)
class Served:
    """One operation as the app serves it: after include-level prefixes and dependencies."""

    method: str
    path_format: str
    route_path: str
    dependant: Dependant


def served_operations(app: FastAPI) -> dict[tuple[str, str], Served]:
    """Every API operation of the app, with the dependencies it really runs.

    FastAPI >= 0.160 keeps included routers as branches (``effective_route_contexts``)
    instead of copying their routes; both shapes are walked.
    """
    found: dict[tuple[str, str], Served] = {}
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for context in contexts():
                original = context.original_route
                if isinstance(original, APIRoute) and context.dependant is not None:
                    for method in context.methods:
                        found[(method, context.path_format)] = Served(
                            method, context.path_format, original.path, context.dependant
                        )
        elif isinstance(route, APIRoute):
            for method in route.methods or ():
                found[(method, route.path_format)] = Served(
                    method, route.path_format, route.path, route.dependant
                )
    return found


def unguarded_operations(app: FastAPI) -> list[str]:
    """Operations of the OpenAPI document not decided by the policy guard."""
    served = served_operations(app)
    problems = []
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            key = (method.upper(), path)
            if key in UNGUARDED_BY_DESIGN:
                continue
            operation = served[key]
            calls = _calls(operation.dependant)
            if path.startswith("/internal/"):
                if internal_context not in calls:
                    problems.append(f"{key}: internal route without the service-context check")
                continue
            # The guard looks rows up by the route's own template: an include-level
            # prefix would make the lookup miss (and deny everything on that router).
            if rule_for(key[0], operation.route_path) is None:
                problems.append(f"{key}: no row in the route table")
            if guard not in calls:
                problems.append(f"{key}: not guarded by the policy dependency")
    return problems


def test_every_openapi_operation_is_in_the_route_table_and_guarded(
    service_env: dict[str, str],
) -> None:
    assert unguarded_operations(create_app(Settings())) == []


def test_the_walk_catches_a_forgotten_route(service_env: dict[str, str]) -> None:
    app = create_app(Settings())

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        """Leak something."""
        return {}

    # Moved in front of the catch-all, as a careless include_router would place it.
    app.router.routes.insert(0, app.router.routes.pop())
    assert unguarded_operations(app) == [
        "('GET', '/v1/forgotten'): no row in the route table",
        "('GET', '/v1/forgotten'): not guarded by the policy dependency",
    ]


def test_every_route_table_row_is_served_and_every_prefix_documented(
    service_env: dict[str, str],
) -> None:
    app = create_app(Settings())
    served = {(s.method, s.route_path) for s in served_operations(app).values()}
    missing = [(r.method, r.path) for r in ROUTE_TABLE if (r.method, r.path) not in served]
    assert missing == []
    documented = set(app.openapi()["paths"])
    # docs/internal-api.md: each forwarded prefix has at least one documented operation.
    for prefix in (
        "/v1/reads",
        "/v1/retention",
        "/v1/legal-holds",
        "/v1/hotlists",
        "/v1/alerts",
        "/v1/dispositions",
        "/v1/shift-checks",
        "/v1/audit",
        "/v1/dissemination",
        "/v1/reports",
    ):
        assert any(p == prefix or p.startswith(prefix + "/") for p in documented), prefix
    assert {r.owner for r in ROUTE_TABLE} == set(Owner)
