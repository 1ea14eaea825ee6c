"""Express lanes answer exactly as the routed operation would.

Two apps with the same route and the same errors: one serves it through FastAPI's
routing, the other through a lane. Every answer (status, headers a caller reads, body)
must be the same, for good input and for each kind of refusal.
"""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from lpr_common.errors import InvalidInput, NotFound, install_problem_handlers
from lpr_common.lanes import add_lanes, headers_of, json_body, json_response
from lpr_common.nul import NUL_REASON, RefuseNul


class Ask(BaseModel):
    plate: str = Field(min_length=2)
    limit: int = Field(default=10, ge=1, le=100)


class Answer(BaseModel):
    plate: str
    limit: int
    caller: str


async def caller_of(request: Request) -> str:
    name = request.headers.get("x-caller")
    if not name:
        raise InvalidInput.field("x-caller", "required")
    return name


async def ask(body: Ask, caller: Annotated[str, Depends(caller_of)], response: Response) -> Answer:
    if body.plate == "GONE":
        raise NotFound("no such plate")
    if body.plate == "BOOM":
        raise RuntimeError("unexpected")
    response.headers["X-Result-Count"] = "1"
    return Answer(plate=body.plate, limit=body.limit, caller=caller)


async def ask_lane(request: Request) -> Response:
    caller = await caller_of(request)
    body = await json_body(request, Ask)
    response = Response()
    answer = await ask(body, caller, response)
    return json_response(answer, headers=headers_of(response))


def build(with_lane: bool) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RefuseNul)  # as every service app has it
    app.post("/ask")(ask)

    @app.get("/other")
    async def other() -> dict[str, str]:
        return {"routed": "yes"}

    if with_lane:
        add_lanes(app, {("POST", "/ask"): ask_lane})
    return app


CASES = [
    ({"plate": "ABC123"}, {"x-caller": "officer"}),
    ({"plate": "ABC123", "limit": 5}, {"x-caller": "officer"}),
    ({"plate": "A"}, {"x-caller": "officer"}),
    ({"plate": "ABC123", "limit": 0}, {"x-caller": "officer"}),
    ({"limit": 5}, {"x-caller": "officer"}),
    ({"plate": 12}, {"x-caller": "officer"}),
    ({"plate": "GONE"}, {"x-caller": "officer"}),
    ({"plate": "ABC123"}, {}),
    ({"plate": "AB\x00C123"}, {"x-caller": "officer"}),
    (None, {"x-caller": "officer"}),
    (b"{not json", {"x-caller": "officer"}),
    # Valid JSON that does not say so: FastAPI refuses it; so must a lane.
    (b'{"plate": "ABC123"}', {"x-caller": "officer", "content-type": "text/plain"}),
    (b'{"plate": "ABC123"}', {"x-caller": "officer", "content-type": ""}),
    (
        b'{"plate": "ABC123"}',
        {"x-caller": "officer", "content-type": "application/x-www-form-urlencoded"},
    ),
    (
        b'{"plate": "ABC123"}',
        {"x-caller": "officer", "content-type": "application/merge-patch+json"},
    ),
    (
        b'{"plate": "ABC123"}',
        {"x-caller": "officer", "content-type": "application/json; charset=utf-8"},
    ),
]


async def send(app: FastAPI, body: object, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        if isinstance(body, bytes):
            return await client.post(
                "/ask", content=body, headers={"content-type": "application/json", **headers}
            )
        if body is None:
            return await client.post("/ask", headers=headers)
        return await client.post("/ask", json=body, headers=headers)


@pytest.mark.parametrize(("body", "headers"), CASES)
async def test_a_lane_answers_as_the_route_does(body: object, headers: dict[str, str]) -> None:
    routed = await send(build(with_lane=False), body, headers)
    laned = await send(build(with_lane=True), body, headers)
    assert laned.status_code == routed.status_code
    assert laned.headers.get("content-type") == routed.headers.get("content-type")
    assert laned.headers.get("x-result-count") == routed.headers.get("x-result-count")
    assert laned.json() == routed.json()
    if "\x00" in str(body):
        assert routed.status_code == 422
        assert routed.json()["errors"] == [{"field": "plate", "reason": NUL_REASON}]


async def test_an_unexpected_error_is_still_a_500_problem() -> None:
    response = await send(build(with_lane=True), {"plate": "BOOM"}, {"x-caller": "officer"})
    assert response.status_code == 500
    assert response.json()["type"].endswith("internal")


async def test_other_paths_are_routed_as_before() -> None:
    transport = httpx.ASGITransport(app=build(with_lane=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/other")).json() == {"routed": "yes"}
        assert (await client.get("/ask")).status_code == 405
