"""Every service starts, migrates, answers its probes and publishes an OpenAPI document."""

from __future__ import annotations

import importlib

import pytest
from fastapi import FastAPI

from lprctl.pytest_plugin import app_client
from lprctl.stack import SERVICES

SERVICE_NAMES = [spec.name for spec in SERVICES]


def build(name: str) -> FastAPI:
    package = next(spec.package for spec in SERVICES if spec.name == name)
    module = importlib.import_module(f"{package}.app")
    app: FastAPI = module.create_app()
    return app


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_service_is_alive_and_documents_its_api(
    name: str, service_env: dict[str, str]
) -> None:
    async with app_client(build(name)) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"status": "alive", "service": name, "checks": {}}
        openapi = (await client.get("/openapi.json")).json()
        assert openapi["info"]["title"].startswith("LPR")
        assert "/readyz" in openapi["paths"]


@pytest.mark.parametrize("name", SERVICE_NAMES)
async def test_readiness_checks_database_and_names_missing_peers(
    name: str, service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No peer service runs in this test: point them at a closed port to prove that
    # readiness names each unreachable peer while the database check passes.
    for peer in SERVICE_NAMES:
        monkeypatch.setenv(f"LPR_{peer.upper()}_URL", "http://127.0.0.1:9")
    async with app_client(build(name)) as client:
        response = await client.get("/readyz")
    checks = response.json()["checks"]
    assert checks["database"] == "ok"
    peers = {key for key in checks if key != "database"}
    if peers:
        assert response.status_code == 503
        assert all(checks[peer].startswith("unreachable") for peer in peers)
    else:
        assert response.status_code == 200


async def test_readiness_fails_when_the_database_is_down(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:9/none")
    async with app_client(build("audit")) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("database unavailable")
