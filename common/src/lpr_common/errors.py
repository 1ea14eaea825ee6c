"""Domain errors and the one RFC 9457 problem-details shape every service answers with.

Services raise these exceptions and never ``HTTPException``; :func:`install_problem_handlers`
renders them, request validation errors (422) and unexpected errors in the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://lpr.example.org/problems/"

_logger = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One bad field: where it is and why it was refused."""

    field: str
    reason: str


class Problem(BaseModel):
    """RFC 9457 problem details, as documented in every OpenAPI document."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None
    rule: str | None = None


class LprError(Exception):
    """Base of every domain error; carries what the problem response needs."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        rule: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = list(errors) if errors else None
        self.rule = rule
        self.headers = headers or {}

    def to_problem(self) -> Problem:
        """Render this error as problem details."""
        return Problem(
            type=PROBLEM_TYPE_BASE + self.slug,
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
            rule=self.rule,
        )


class InvalidInput(LprError):
    """The request is well-formed but a field is not acceptable."""

    status, slug, title = 422, "invalid-input", "Invalid input"

    @classmethod
    def field(cls, field: str, reason: str) -> InvalidInput:
        """Build the error for a single bad field."""
        return cls(f"{field}: {reason}", errors=[FieldError(field=field, reason=reason)])


class BadRequest(LprError):
    """The request cannot be parsed at all."""

    status, slug, title = 400, "bad-request", "Bad request"


class Unauthenticated(LprError):
    """The caller did not prove who it is."""

    status, slug, title = 401, "unauthenticated", "Authentication required"


class PolicyDenied(LprError):
    """The policy refuses this request; ``rule`` names the rule that decided."""

    status, slug, title = 403, "policy-denied", "Refused by policy"


class NotFound(LprError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    status, slug, title = 404, "not-found", "Not found"


class Conflict(LprError):
    """The request conflicts with what is stored."""

    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(LprError):
    """The body is over the size limit."""

    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(LprError):
    """The body's content type is not accepted."""

    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class RateLimited(LprError):
    """The caller is over its rate limit."""

    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(LprError):
    """A dependency (database, audit log, Triton, a peer) cannot serve now."""

    status, slug, title = 503, "unavailable", "Service unavailable"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    """Build the HTTP response for a problem."""
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _location(loc: Sequence[Any]) -> str:
    # FastAPI prefixes the location with "body"/"query"/...; the caller knows the field by name.
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _handle_lpr_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LprError)
    return problem_response(exc.to_problem(), exc.headers)


async def _handle_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [FieldError(field=_location(e["loc"]), reason=str(e["msg"])) for e in exc.errors()]
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
    problem = Problem(
        type=PROBLEM_TYPE_BASE + InvalidInput.slug,
        title=InvalidInput.title,
        status=422,
        detail=detail,
        errors=errors,
    )
    return problem_response(problem)


async def _handle_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    problem = Problem(
        type=PROBLEM_TYPE_BASE + f"http-{exc.status_code}",
        title=str(exc.detail) if exc.detail else "HTTP error",
        status=exc.status_code,
        detail=str(exc.detail) if exc.detail else None,
    )
    return problem_response(problem, dict(exc.headers or {}))


UNIQUE_VIOLATION = "23505"


async def _handle_integrity(request: Request, exc: Exception) -> JSONResponse:
    # A unique key taken by a request that committed first (two administrators creating
    # the same name at once): the state conflicts, as the endpoints' own checks say when
    # the first one has already committed. Any other integrity error is unexpected.
    assert isinstance(exc, IntegrityError)
    if getattr(exc.orig, "sqlstate", None) != UNIQUE_VIOLATION:
        return await _handle_unexpected(request, exc)
    return problem_response(
        Conflict("a record with the same key was stored meanwhile; read it and retry").to_problem()
    )


async def _handle_unexpected(_: Request, exc: Exception) -> JSONResponse:
    _logger.exception("unhandled error", exc_info=exc)
    problem = Problem(
        type=PROBLEM_TYPE_BASE + "internal",
        title="Internal error",
        status=500,
        detail=type(exc).__name__,
    )
    return problem_response(problem)


def install_problem_handlers(app: FastAPI) -> None:
    """Render domain errors, validation errors and unexpected errors as problem details."""
    app.add_exception_handler(LprError, _handle_lpr_error)
    app.add_exception_handler(RequestValidationError, _handle_validation)
    app.add_exception_handler(StarletteHTTPException, _handle_http)
    app.add_exception_handler(IntegrityError, _handle_integrity)
    app.add_exception_handler(Exception, _handle_unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}
    for status in (400, 401, 403, 404, 409, 422, 503)
}
"""OpenAPI ``responses=`` entry documenting the problem shape on every route."""
