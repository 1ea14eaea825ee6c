"""Express lanes: the few hottest operations, served without FastAPI's routing.

Every request FastAPI routes walks its middleware, matches the path against each
included router in turn, and solves its dependencies inside an exit stack. On the search
path (a search crosses the gateway, recognition-svc and audit-svc) that machinery cost
more CPU than the work itself. A lane maps one ``(method, path)`` to a handler that
resolves its own few dependencies (the same dependency functions) and calls the same
endpoint code.

The route stays registered with FastAPI: it documents the operation in OpenAPI and
serves any request a lane does not take. Errors are rendered by the app's own exception
handlers, so an answer through a lane is the answer the routed path gives.

Lanes sit outside the app's middleware, so they take the body's digest themselves
(:func:`~lpr_common.body_digest.digesting`) for the signed context's body check.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from lpr_common.body_digest import digesting
from lpr_common.db import get_session
from lpr_common.nul import refuse, screen

LaneHandler = Callable[[Request], Awaitable[Response]]
Model = TypeVar("Model", bound=BaseModel)


class ExpressLanes:
    """ASGI middleware: requests for a lane's ``(method, path)`` go straight to its handler."""

    def __init__(
        self,
        app: ASGIApp,
        lanes: Mapping[tuple[str, str], LaneHandler],
        *,
        refuse_nul: bool = True,
    ) -> None:
        self.app = app
        self._lanes = dict(lanes)
        self._refuse_nul = refuse_nul

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a lane's request, pass anything else on."""
        if scope["type"] == "http":
            handler = self._lanes.get((scope["method"], scope["path"]))
            if handler is not None:
                # Before the screen reads the body: the digest is taken as it streams.
                receive = digesting(scope, receive)
                if self._refuse_nul:
                    # Lanes sit outside the app's middleware: screen as RefuseNul does.
                    field, receive = await screen(scope, receive)
                    if field is not None:
                        await refuse(field, scope, receive, send)
                        return
                request = Request(scope, receive)
                try:
                    response = await handler(request)
                except Exception as error:
                    response = await _render(request, error)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _render(request: Request, error: Exception) -> Response:
    """The app's own answer for ``error`` (unexpected errors go on to the 500 handler)."""
    app: FastAPI = request.app
    for kind in type(error).__mro__:
        if kind is Exception:
            break
        handler: Any = app.exception_handlers.get(kind)
        if handler is not None:
            response: Response = await handler(request, error)
            return response
    raise error


def add_lanes(
    app: FastAPI, lanes: Mapping[tuple[str, str], LaneHandler], *, refuse_nul: bool = True
) -> None:
    """Serve ``lanes`` ahead of the app's routing (call before the app starts).

    ``refuse_nul``: as :func:`~lpr_common.service.create_service_app`'s.
    """
    app.add_middleware(ExpressLanes, lanes=lanes, refuse_nul=refuse_nul)


async def json_body(request: Request, model: type[Model]) -> Model:
    """The request's JSON body as ``model``; refused as FastAPI refuses a bad body (422).

    Raises:
        RequestValidationError: the body is not JSON or not a valid ``model``.
    """
    body = await request.body()
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    try:
        if not declares_json(request.headers.get("content-type")):
            # FastAPI validates such a body as the raw bytes it is (and refuses it).
            return model.model_validate(body, from_attributes=True)
        return model.model_validate_json(body)
    except ValidationError as error:
        if any(detail["type"] == "json_invalid" for detail in error.errors()):
            raise _not_json(body) from error
        raise RequestValidationError(
            [{**detail, "loc": ("body", *detail["loc"])} for detail in error.errors()]
        ) from error


def declares_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse a body of ``content_type`` as JSON (strict by default).

    ``application/json`` or any ``application/*+json``; no Content-Type at all is not.
    """
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _not_json(body: bytes) -> RequestValidationError:
    """FastAPI's refusal of a body that is not JSON: where the decoder stopped."""
    try:
        json.loads(body)
        position = 0
    except ValueError as error:
        position = getattr(error, "pos", 0)
    return RequestValidationError(
        [{"type": "json_invalid", "loc": ("body", position), "msg": "JSON decode error"}]
    )


def json_response(
    model: BaseModel, *, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """``model`` as a JSON answer (what FastAPI sends for a returned model)."""
    return Response(
        model.model_dump_json(by_alias=True).encode(),
        status_code=status_code,
        headers=dict(headers or {}),
        media_type="application/json",
    )


@asynccontextmanager
async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The session ``SessionDep`` would give this request: commit on success.

    An override of :func:`~lpr_common.db.get_session` (the tests' transaction that is
    rolled back) is honoured as FastAPI would; overrides take no parameters.
    """
    app: FastAPI = request.app
    override = app.dependency_overrides.get(get_session)
    scope = (
        asynccontextmanager(override)() if override else asynccontextmanager(get_session)(request)
    )
    async with scope as session:
        yield session


def headers_of(response: Response) -> dict[str, str]:
    """Headers an endpoint set on its ``Response`` parameter (not the computed ones)."""
    return {
        name: value
        for name, value in response.headers.items()
        if name not in {"content-length", "content-type"}
    }
