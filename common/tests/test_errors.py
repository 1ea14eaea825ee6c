"""One problem-details shape for domain errors, validation errors and unknown routes."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from pydantic import BaseModel, Field

from lpr_common.errors import (
    PROBLEM_MEDIA_TYPE,
    InvalidInput,
    PolicyDenied,
    install_problem_handlers,
)


class ReadIn(BaseModel):
    plate: str = Field(min_length=1, max_length=10)
    latitude: float = Field(ge=-90, le=90)


def build_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.post("/reads")
    async def post_read(body: ReadIn) -> dict[str, str]:
        if body.plate == "TEST":
            raise InvalidInput.field("plate", "test plates are not accepted")
        return {"plate": body.plate}

    @app.get("/denied")
    async def denied() -> None:
        raise PolicyDenied("purpose not allowed", rule="IACP-A.1")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return app


async def request(method: str, path: str, **kwargs: object) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)  # type: ignore[arg-type]


async def test_validation_error_names_each_bad_field() -> None:
    response = await request("POST", "/reads", json={"plate": "", "latitude": 200})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["status"] == 422
    assert body["type"].endswith("/invalid-input")
    assert {e["field"] for e in body["errors"]} == {"plate", "latitude"}


async def test_domain_error_renders_field_and_reason() -> None:
    response = await request("POST", "/reads", json={"plate": "TEST", "latitude": 1})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"field": "plate", "reason": "test plates are not accepted"}
    ]


async def test_policy_denial_names_its_rule() -> None:
    response = await request("GET", "/denied")
    assert response.status_code == 403
    assert response.json()["rule"] == "IACP-A.1"


async def test_unknown_route_and_crash_keep_the_shape_without_leaking() -> None:
    missing = await request("GET", "/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM_MEDIA_TYPE
    crashed = await request("GET", "/boom")
    assert crashed.status_code == 500
    assert "secret internals" not in crashed.text
