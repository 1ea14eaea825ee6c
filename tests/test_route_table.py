"""The gateway's route table agrees with the services it forwards to.

Each service's OpenAPI document is built in-process. Every row the gateway forwards must
name an operation its owner really serves (a guessed path would be allowed by the policy
and then answer 404), and every public operation of a service must be reachable through
the gateway, routed to that service by the row FastAPI actually picks.
"""

from __future__ import annotations

import importlib
import re
from functools import cache

import pytest
from fastapi import FastAPI
from starlette.routing import compile_path

from lpr_gateway.access.routes import FORWARDED_ROUTES, ROUTE_TABLE, Owner, RouteRule
from lprctl.stack import SERVICES

PARAMETER = re.compile(r"\{[^}]+\}")
SAMPLE = "00000000-0000-4000-8000-000000000000"
Operation = tuple[str, str]


@cache
def app_of(name: str) -> FastAPI:
    package = next(spec.package for spec in SERVICES if spec.name == name)
    app: FastAPI = importlib.import_module(f"{package}.app").create_app()
    return app


@cache
def public_operations(owner: Owner) -> frozenset[Operation]:
    """(method, path template) of every public operation in the service's OpenAPI document."""
    paths = app_of(owner.value).openapi()["paths"]
    return frozenset(
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/v1/")
        for method in operations
    )


def _shape(path: str) -> str:
    return PARAMETER.sub("{}", path)


def _serves(rule: RouteRule, operation: Operation) -> bool:
    method, path = operation
    if method != rule.method:
        return False
    if rule.path.endswith("/{rest:path}"):
        return path.startswith(rule.path.removesuffix("{rest:path}"))
    return _shape(path) == _shape(rule.path)


FORWARDED = list(FORWARDED_ROUTES)


@pytest.mark.parametrize("rule", FORWARDED, ids=[f"{r.method} {r.path}" for r in FORWARDED])
def test_every_forwarded_row_names_an_operation_of_its_owner(
    rule: RouteRule, service_env: dict[str, str]
) -> None:
    served = [op for op in public_operations(rule.owner) if _serves(rule, op)]
    assert served, f"{rule.owner.value}-svc has no {rule.method} {rule.path}"


def _concrete(path: str) -> str:
    return PARAMETER.sub(SAMPLE, path)


def _gateway_rule(method: str, path: str) -> RouteRule | None:
    """The row the gateway picks for a request: the first in table order whose path matches.

    The gateway registers its routes in table order (forwarded rows after its own), and
    FastAPI takes the first route whose compiled path and method match, as here.
    """
    for rule in ROUTE_TABLE:
        regex, _, _ = compile_path(rule.path)
        if rule.method == method and regex.match(path):
            return rule
    return None


@pytest.mark.parametrize("owner", [Owner.RECOGNITION, Owner.HOTLIST, Owner.AUDIT])
def test_every_public_operation_of_a_service_is_routed_to_it(
    owner: Owner, service_env: dict[str, str]
) -> None:
    wrong = []
    for method, path in sorted(public_operations(owner)):
        rule = _gateway_rule(method, _concrete(path))
        if rule is None or rule.owner is not owner:
            wrong.append(f"{method} {path} -> {rule.owner.value if rule else 'no row'}")
    assert wrong == []
    assert public_operations(owner), f"{owner.value}-svc documents no public operation"
