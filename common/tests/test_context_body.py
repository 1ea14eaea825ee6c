"""The signed context is bound to the body: minted for one body, refused with another.

Captured inside the cluster, a context for a search was good for 120 s for any other
search body on the same path (another plate, a time range beyond the caller's lookback,
another purpose), and one for a camera read for any other read. Each body kind reaches
the verifier its own way (JSON parsed before the dependencies, multipart streamed to the
form parser, a body the route reads after them, an express lane), so each is tested.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, FastAPI, File, Form, Request, Response, UploadFile
from pydantic import BaseModel

from lpr_common.body_digest import (
    EMPTY_BODY_SHA256,
    SCOPE_KEY,
    body_sha256,
    digesting,
    received_body_sha256,
)
from lpr_common.context import (
    CONTEXT_HEADER,
    ContextDep,
    ContextSigner,
    ContextVerifier,
    RequestContext,
    service_context_auth,
    verified_context,
)
from lpr_common.errors import Unauthenticated, install_problem_handlers
from lpr_common.lanes import add_lanes, json_body, json_response
from lpr_common.service import context_keys, create_service_app
from lpr_common.settings import LprSettings

SEARCH = "/v1/reads/search"
READS = "/v1/reads"
KEY = Ed25519PrivateKey.generate()
SEARCH_A = {"purpose": "stolen_vehicle", "plate": "ABC123", "time_range": {"days": 7}}
SEARCH_B = {"purpose": "stolen_vehicle", "plate": "XYZ999", "time_range": {"days": 900}}


def context(method: str, path: str, body: bytes | None, **fields: Any) -> RequestContext:
    """An officer's context, bound to ``body`` (``None``: to no body at all)."""
    return RequestContext.model_validate(
        {
            "subject_kind": "user",
            "subject_id": "officer-1",
            "agency": "CA0010000",
            "roles": ["officer"],
            "method": method,
            "path": path,
            "body_sha256": body_sha256(body) if body is not None else None,
            "issued_at": datetime.now(UTC),
            **fields,
        }
    )


def header(method: str, path: str, body: bytes | None, **fields: Any) -> dict[str, str]:
    return {CONTEXT_HEADER: ContextSigner(KEY).sign(context(method, path, body, **fields))}


def verifier(*, require_body_digest: bool = False) -> ContextVerifier:
    return ContextVerifier(
        KEY.public_key(),
        max_age=timedelta(seconds=60),
        require_body_digest=require_body_digest,
    )


def json_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode()


# -- the verifier ---------------------------------------------------------------------


def test_a_context_stating_its_body_is_valid_for_that_body_only() -> None:
    signed = header("POST", SEARCH, json_bytes(SEARCH_A))[CONTEXT_HEADER]
    check = verifier()
    verified = check.verify(
        signed, method="POST", path=SEARCH, body_sha256=body_sha256(json_bytes(SEARCH_A))
    )
    assert verified.body_sha256 == body_sha256(json_bytes(SEARCH_A))
    with pytest.raises(Unauthenticated, match="another body"):
        check.verify(
            signed, method="POST", path=SEARCH, body_sha256=body_sha256(json_bytes(SEARCH_B))
        )
    with pytest.raises(Unauthenticated, match="another body"):
        check.verify(signed, method="POST", path=SEARCH, body_sha256=EMPTY_BODY_SHA256)


def test_a_context_without_a_body_digest_is_refused_where_one_is_required() -> None:
    signed = header("POST", SEARCH, None)[CONTEXT_HEADER]
    # Outside production (tests mint contexts before they know the body): checked if set.
    assert verifier().verify(signed, method="POST", path=SEARCH, body_sha256=EMPTY_BODY_SHA256)
    with pytest.raises(Unauthenticated, match="not bound to a request body"):
        verifier(require_body_digest=True).verify(
            signed, method="POST", path=SEARCH, body_sha256=EMPTY_BODY_SHA256
        )


def test_only_production_requires_the_body_digest(tmp_path: Path) -> None:
    development = LprSettings(data_dir=tmp_path, environment="test")
    # Outside production the gateway's key pair is made here; production needs it provisioned.
    assert not context_keys(development, "recognition")[1].require_body_digest
    production = LprSettings(
        data_dir=tmp_path, environment="production", database_url="postgresql://lpr@db/lpr"
    )
    assert context_keys(production, "recognition")[1].require_body_digest


def test_a_malformed_body_digest_is_not_a_context() -> None:
    with pytest.raises(ValueError, match="body_sha256"):
        context("POST", SEARCH, None, body_sha256="not-a-digest")


async def test_service_contexts_state_the_body_they_sign() -> None:
    seen: list[RequestContext] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(
            verifier().verify(
                request.headers[CONTEXT_HEADER],
                method=request.method,
                path=request.url.path,
                body_sha256=body_sha256(request.content),
            )
        )
        return httpx.Response(201)

    auth = service_context_auth(ContextSigner(KEY), "recognition")
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(record), base_url="http://audit", auth=auth
    ) as client:
        await client.post("/internal/v1/events", json={"events": []})
        await client.get("/internal/v1/retention-settings")
    assert [c.body_sha256 for c in seen] == [
        body_sha256(b'{"events":[]}'),
        EMPTY_BODY_SHA256,
    ]


# -- each body kind, through a service app --------------------------------------------


class Search(BaseModel):
    plate: str


class LaneAnswer(BaseModel):
    plate: str
    bound: str | None


def service_app() -> FastAPI:
    """A service app as :func:`create_service_app` builds it, with one route per body kind."""
    router = APIRouter()

    @router.post(SEARCH)
    async def search(body: dict[str, Any], context: ContextDep) -> dict[str, Any]:
        return {"plate": body["plate"], "bound": context.body_sha256}

    @router.post(READS)
    async def post_read(
        request: Request,
        context: ContextDep,
        image: Annotated[UploadFile, File()],
        metadata: Annotated[str, Form()],
    ) -> dict[str, Any]:
        data = await image.read()
        # Hashed on its way to the form parser, not read again.
        assert request.scope[SCOPE_KEY].hexdigest == context.body_sha256
        return {"image_bytes": len(data), "metadata": json.loads(metadata)}

    @router.post("/v1/legal-holds")
    async def form(context: ContextDep, reason: Annotated[str, Form()]) -> dict[str, str]:
        return {"reason": reason}

    @router.post("/v1/raw")
    async def raw(request: Request, context: ContextDep) -> dict[str, int]:
        # No body parameter: the dependency runs first and must leave the body readable.
        return {"bytes": len(await request.body())}

    @router.get("/v1/hits")
    async def hits(context: ContextDep) -> dict[str, str]:
        return {"subject": context.subject_id}

    app = create_service_app(
        name="recognition",
        title="test",
        description="test",
        settings=LprSettings(),
        routers=[router],
    )
    app.state.context_verifier = verifier()

    async def lane(request: Request) -> Response:
        verified = await verified_context(request)
        body = await json_body(request, Search)
        return json_response(LaneAnswer(plate=body.plate, bound=verified.body_sha256))

    add_lanes(app, {("POST", "/v1/lane/search"): lane})
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=service_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        yield http


def refused_for_another_body(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "signed request context was minted for another body"


@pytest.mark.parametrize("path", [SEARCH, "/v1/lane/search"], ids=["routed", "express-lane"])
async def test_a_json_search_body_is_bound(client: httpx.AsyncClient, path: str) -> None:
    body_a, body_b = json_bytes(SEARCH_A), json_bytes(SEARCH_B)
    headers = {**header("POST", path, body_a), "Content-Type": "application/json"}
    accepted = await client.post(path, content=body_a, headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json() == {"plate": "ABC123", "bound": body_sha256(body_a)}
    refused_for_another_body(await client.post(path, content=body_b, headers=headers))
    # One byte more (a space) is another body too: the digest is of the bytes, not the JSON.
    refused_for_another_body(await client.post(path, content=body_a + b" ", headers=headers))


def multipart(metadata: dict[str, Any], image: bytes) -> tuple[bytes, str]:
    """A multipart body as a camera sends it, and its content type."""
    request = httpx.Request(
        "POST",
        "http://svc/v1/reads",
        files={"image": ("read.jpg", image, "image/jpeg")},
        data={"metadata": json.dumps(metadata)},
    )
    return request.read(), request.headers["content-type"]


async def test_a_multipart_camera_read_is_bound(client: httpx.AsyncClient) -> None:
    # Large enough to stream in many ASGI messages to the form parser.
    image = bytes(range(256)) * 12_000
    body_a, content_type = multipart({"camera_read_id": "r-1", "plate": "ABC123"}, image)
    body_b = body_a.replace(b"ABC123", b"XYZ999")
    assert len(body_a) == len(body_b)
    headers = {**header("POST", READS, body_a), "Content-Type": content_type}

    async def streamed(body: bytes) -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    accepted = await client.post(READS, content=streamed(body_a), headers=headers)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["image_bytes"] == len(image)
    refused_for_another_body(await client.post(READS, content=streamed(body_b), headers=headers))


async def test_a_form_body_is_bound(client: httpx.AsyncClient) -> None:
    path = "/v1/legal-holds"
    headers = {
        **header("POST", path, b"reason=case+PD-1"),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    accepted = await client.post(path, content=b"reason=case+PD-1", headers=headers)
    assert accepted.json() == {"reason": "case PD-1"}
    refused_for_another_body(await client.post(path, content=b"reason=case+PD-2", headers=headers))


async def test_a_body_the_route_reads_after_the_check_is_bound_and_left_readable(
    client: httpx.AsyncClient,
) -> None:
    body = b"x" * 200_000
    accepted = await client.post("/v1/raw", content=body, headers=header("POST", "/v1/raw", body))
    assert accepted.json() == {"bytes": len(body)}
    refused_for_another_body(
        await client.post("/v1/raw", content=body[:-1], headers=header("POST", "/v1/raw", body))
    )


async def test_a_request_without_a_body_is_bound_to_the_empty_body(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/v1/hits", headers=header("GET", "/v1/hits", b""))).status_code == 200
    refused_for_another_body(
        await client.get("/v1/hits", headers=header("GET", "/v1/hits", b"plate=ABC123"))
    )


async def test_a_context_without_the_field_is_still_accepted_outside_production(
    client: httpx.AsyncClient,
) -> None:
    # The tests' helpers mint contexts before they know the body; production refuses them.
    headers = {**header("POST", SEARCH, None), "Content-Type": "application/json"}
    accepted = await client.post(SEARCH, content=json_bytes(SEARCH_B), headers=headers)
    assert accepted.status_code == 200, accepted.text


# -- the digest itself ----------------------------------------------------------------


def messages(*chunks: bytes) -> list[dict[str, Any]]:
    return [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]


def http_scope(*, with_context: bool = True) -> dict[str, Any]:
    headers = [(b"x-lpr-context", b"x.y")] if with_context else []
    return {"type": "http", "method": "POST", "path": "/", "headers": headers}


async def drain(scope: dict[str, Any], chunks: list[dict[str, Any]]) -> None:
    queue = list(chunks)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    wrapped = digesting(scope, receive)
    assert digesting(scope, wrapped) is wrapped  # wrapping twice hashes once
    while queue:
        await wrapped()


@pytest.mark.parametrize(
    "chunks",
    [[b"abc"], [b"a", b"bc"], [b"", b"abc", b""], [b""]],
    ids=["one", "two", "empty-ends", "none"],
)
async def test_the_digest_is_of_the_whole_body_however_it_arrives(chunks: list[bytes]) -> None:
    scope = http_scope()
    await drain(scope, messages(*chunks))
    assert scope[SCOPE_KEY].hexdigest == body_sha256(b"".join(chunks))


async def test_requests_without_a_context_are_not_hashed() -> None:
    scope = http_scope(with_context=False)
    await drain(scope, messages(b"abc"))
    assert SCOPE_KEY not in scope


async def test_a_body_partly_read_before_the_check_is_refused_not_guessed() -> None:
    scope = http_scope()
    queue = messages(b"a", b"bc")

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    wrapped = digesting(scope, receive)
    await wrapped()
    with pytest.raises(RuntimeError, match="partly read"):
        await received_body_sha256(Request(scope, wrapped))


async def test_an_app_without_the_middleware_hashes_the_body_its_route_reads() -> None:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.context_verifier = verifier()

    @app.post("/v1/echo")
    async def echo(request: Request, context: ContextDep) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        ok = await client.post("/v1/echo", content=b"A", headers=header("POST", "/v1/echo", b"A"))
        assert ok.json() == {"bytes": 1}
        refused_for_another_body(
            await client.post("/v1/echo", content=b"B", headers=header("POST", "/v1/echo", b"A"))
        )
