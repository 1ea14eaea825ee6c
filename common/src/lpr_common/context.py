"""The signed request context: who is asking, for which agency, purpose and case.

The gateway mints a context for every request it forwards and signs it with its Ed25519
key; every service verifies the signature and refuses a request without a valid one. The
context is bound to the HTTP method, path, query string and body it was minted for and
expires quickly, so a captured header cannot be replayed against another endpoint, nor
with another query or body on the same one.

Wire format of the ``X-LPR-Context`` header: ``base64url(payload JSON) "." base64url(signature)``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Generator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID, uuid4

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request
from pydantic import BaseModel, Field, ValidationError

from lpr_common.body_digest import body_sha256, received_body_sha256
from lpr_common.errors import PolicyDenied, Unauthenticated

CONTEXT_HEADER = "X-LPR-Context"
CONTEXT_KEY_NAME = "context_ed25519"
"""The gateway's key: it alone signs contexts of users, partners and cameras."""

SERVICES = ("gateway", "recognition", "hotlist", "audit")
"""The services that may sign ``subject_kind=service`` contexts, each with its own key."""


def service_key_name(service: str) -> str:
    """File name stem of ``service``'s own signing key in the keys directory."""
    if service not in SERVICES:
        raise ValueError(f"not a platform service: {service!r}")
    return f"service_{service}_ed25519"


SubjectKind = Literal["user", "partner", "camera", "service"]


class RequestContext(BaseModel):
    """Who is calling and why, as decided by the gateway."""

    request_id: UUID = Field(default_factory=uuid4)
    subject_kind: SubjectKind
    subject_id: str
    subject_name: str | None = None
    agency: str
    roles: list[str] = Field(default_factory=list)
    purpose: str | None = None
    case_number: str | None = None
    mou_id: str | None = None
    not_before: datetime | None = None
    """Earliest capture time of the data this caller may see: for another agency under an
    MOU, the decision time less the MOU's lookback (D.2). ``None`` on contexts of callers
    not under an MOU, and on those minted by gateways older than the field."""
    camera_id: str | None = None
    deployment_id: str | None = None
    method: str
    path: str
    query: str | None = Field(
        default=None, description="the raw query string it was minted for; checked if set"
    )
    body_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 (lowercase hex) of the exact body bytes it was minted for, "
        "that of b'' for none; checked if set, required where the verifier demands it",
    )
    issued_at: datetime

    def is_external(self, owning_agency: str) -> bool:
        """True when the caller belongs to another agency than the data's owner."""
        return self.agency != owning_agency


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ContextSigner:
    """Signs request contexts (gateway side)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key

    def sign(self, context: RequestContext) -> str:
        """Return the header value carrying ``context``."""
        # The signature covers these exact bytes and the verifier parses them back, so
        # any stable JSON serves; pydantic's own encoder is the cheapest.
        payload = context.model_dump_json().encode()
        return f"{_b64(payload)}.{_b64(self._key.sign(payload))}"


class ContextVerifier:
    """Verifies request contexts (service side).

    A context of a user, partner or camera must be signed with the gateway's key
    (``public_key``). A ``service`` context must be signed with the key of the service it
    names, looked up by ``service_keys``: a back-end service holds only its own private
    key, so it can sign calls as itself but cannot mint a user's context. Without
    ``service_keys`` every context is checked against ``public_key``.
    """

    def __init__(
        self,
        public_key: Ed25519PublicKey,
        *,
        max_age: timedelta,
        service_keys: Callable[[str], Ed25519PublicKey | None] | None = None,
        require_body_digest: bool = False,
    ) -> None:
        self._key = public_key
        self._max_age = max_age
        self._service_keys = service_keys
        self.require_body_digest = require_body_digest
        """Refuse a context that states no ``body_sha256`` (production: every signer
        states one; tests mint contexts before they know the body)."""

    def verify(
        self,
        header: str | None,
        *,
        method: str,
        path: str,
        query: str | None = None,
        body_sha256: str | None = None,
    ) -> RequestContext:
        """Return the context if the header is authentic, fresh and minted for this request.

        A context stating its query string is valid for that query only: one captured on
        the way to a service cannot be replayed for other plates or another time range.
        Likewise for its body, when ``body_sha256`` (the digest of the body received) is
        given; without it the caller checks the body with :meth:`check_body`.
        """
        if not header:
            raise Unauthenticated("missing signed request context; call through the gateway")
        try:
            payload_b64, signature_b64 = header.split(".", 1)
            payload = _unb64(payload_b64)
            context = RequestContext.model_validate_json(payload)
            key = self._key
            if context.subject_kind == "service" and self._service_keys is not None:
                service_key = (
                    self._service_keys(context.subject_id)
                    if context.subject_id in SERVICES
                    else None
                )
                if service_key is None:
                    raise Unauthenticated("signed request context of an unknown service")
                key = service_key
            key.verify(_unb64(signature_b64), payload)
        except (ValueError, binascii.Error, InvalidSignature, ValidationError):
            raise Unauthenticated("invalid signed request context")
        age = datetime.now(UTC) - context.issued_at
        if age > self._max_age or age < -timedelta(seconds=30):
            raise Unauthenticated("expired signed request context")
        if (
            context.method != method.upper()
            or context.path != path
            or (context.query is not None and query is not None and context.query != query)
        ):
            raise Unauthenticated("signed request context was minted for another request")
        if body_sha256 is not None:
            self.check_body(context, body_sha256)
        return context

    def needs_body(self, context: RequestContext) -> bool:
        """Whether :meth:`check_body` needs the digest of the body received."""
        return context.body_sha256 is not None or self.require_body_digest

    def check_body(self, context: RequestContext, body_sha256: str) -> None:
        """Refuse ``context`` unless it was minted for the body whose digest is ``body_sha256``.

        A context captured inside the cluster cannot carry another search (plate, time
        range, purpose) or another camera read in the 120 s it is valid.

        Raises:
            Unauthenticated: minted for another body, or for none where one is required.
        """
        if context.body_sha256 is None:
            if self.require_body_digest:
                raise Unauthenticated("signed request context is not bound to a request body")
            return
        if not hmac.compare_digest(context.body_sha256, body_sha256):
            raise Unauthenticated("signed request context was minted for another body")


async def verified_context(request: Request) -> RequestContext:
    """FastAPI dependency: the verified context of this request, or 401.

    The body is checked once the signature is: a request that does not prove who sent it
    is refused before any of its body is read.
    """
    verifier: ContextVerifier = request.app.state.context_verifier
    context = verifier.verify(
        request.headers.get(CONTEXT_HEADER),
        method=request.method,
        path=request.url.path,
        query=request.scope.get("query_string", b"").decode("latin-1"),
    )
    if verifier.needs_body(context):
        verifier.check_body(context, await received_body_sha256(request))
    request.state.context = context
    return context


ContextDep = Annotated[RequestContext, Depends(verified_context)]


class ContextAuth(httpx.Auth):
    """httpx auth flow that signs a context for each request it sends.

    The context is bound to the request's method, path, query and body, so the factory
    only decides who is calling; service-to-service clients use
    :func:`service_context_auth`. httpx reads a streamed body before the flow runs
    (``requires_request_body``): internal calls send small JSON documents.
    """

    requires_request_body = True

    def __init__(self, signer: ContextSigner, subject: Callable[[], dict[str, object]]) -> None:
        self._signer = signer
        self._subject = subject

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Attach the signed context header."""
        values = dict(self._subject())
        values.update(
            method=request.method,
            path=request.url.path,
            query=request.url.query.decode("latin-1"),
            body_sha256=body_sha256(request.content),
            issued_at=datetime.now(UTC),
        )
        request.headers[CONTEXT_HEADER] = self._signer.sign(RequestContext.model_validate(values))
        yield request


SERVICE_AGENCY = "*"
"""Agency recorded on contexts minted by a service for its own internal calls."""


def service_context_auth(signer: ContextSigner, service: str) -> ContextAuth:
    """Auth for internal calls made by ``service`` itself (not on behalf of a user)."""
    return ContextAuth(
        signer,
        lambda: {
            "subject_kind": "service",
            "subject_id": service,
            "agency": SERVICE_AGENCY,
            "roles": ["service"],
        },
    )


async def internal_context(request: Request) -> RequestContext:
    """FastAPI dependency for ``/internal`` routes: only another service may call them."""
    context = await verified_context(request)
    if context.subject_kind != "service":
        raise Unauthenticated("internal route: only platform services may call it")
    return context


InternalContextDep = Annotated[RequestContext, Depends(internal_context)]


def require_roles(context: RequestContext, allowed: frozenset[str], what: str) -> None:
    """Re-check the gateway's decision on the signed roles (defence in depth).

    Raises:
        PolicyDenied: the caller is not a user holding one of ``allowed``.
    """
    if context.subject_kind != "user" or not allowed.intersection(context.roles):
        raise PolicyDenied(
            f"{what} is open to the roles {', '.join(sorted(allowed))} only",
            rule="role-required",
        )
