"""Forwarding allowed requests to the owning service, streaming both ways.

The upstream answer's headers say how many records it carries, of which data class and
whose (docs/internal-api.md); the gateway completes the audit event with them, writes a
dissemination record when the data leaves its owner's agency, and only then releases
the body to the caller.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from lpr_common.audit_client import AuditClient, DisseminationRecord
from lpr_common.context import CONTEXT_HEADER, ContextSigner, RequestContext, service_context_auth
from lpr_common.errors import ServiceUnavailable
from lpr_common.http import RetryingTransport, build_client
from lpr_common.service import peer_url
from lpr_gateway.access import audit
from lpr_gateway.access.guard import Caller, CallerDep, event_headers
from lpr_gateway.access.partner_docs import PARTNER_OPENAPI, PARTNER_TAG
from lpr_gateway.access.routes import FORWARDED_ROUTES, Owner, RouteRule
from lpr_gateway.settings import Settings

RESULT_COUNT_HEADER = "x-lpr-result-count"
DATA_CLASS_HEADER = "x-lpr-data-class"
RECORD_IDS_HEADER = "x-lpr-record-ids"
OWNER_AGENCY_HEADER = "x-lpr-owner-agency"
MAX_RECORD_IDS = 500
MARKING_HEADER = "X-LPR-Marking"
FOUO = "FOUO"
MARKED_DATA_CLASSES = frozenset({"reads", "hits", "images"})
SMALL_BODY_BYTES = 1 << 20
"""Answers up to this size (and declaring it) are sent in one write, not streamed."""

# Never passed on: hop-by-hop headers, the caller's credentials, and any context header
# a caller might try to smuggle in (only the gateway mints one).
_DROPPED_REQUEST_HEADERS = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "upgrade",
        "proxy-authorization",
        "content-length",
        "authorization",
        "cookie",
        "x-camera-key",
        "x-lpr-signature",
        "x-lpr-timestamp",
        CONTEXT_HEADER.lower(),
    }
)
_DROPPED_RESPONSE_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "upgrade"}
)


@asynccontextmanager
async def upstream_clients(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: one client per owning service (transports injectable by tests)."""
    settings: Settings = app.state.settings
    transports: dict[str, httpx.AsyncBaseTransport] = getattr(app.state, "upstream_transports", {})
    clients: dict[str, httpx.AsyncClient] = {}
    for owner in (Owner.RECOGNITION, Owner.HOTLIST, Owner.AUDIT):
        clients[owner.value] = httpx.AsyncClient(
            base_url=peer_url(settings, owner.value),
            timeout=httpx.Timeout(settings.gateway_upstream_timeout_s, connect=2.0),
            transport=RetryingTransport(transports.get(owner.value), retries=2),
        )
    app.state.upstreams = clients
    # "audit-log" replaces the transport of the audit client (tests observe it there).
    if "audit-log" in transports:
        signer: ContextSigner = app.state.context_signer
        audit_client = build_client(
            peer_url(settings, "audit"),
            transport=transports["audit-log"],
            auth=service_context_auth(signer, "gateway"),
        )
        clients["audit-events"] = audit_client
        app.state.audit = AuditClient(audit_client)
    try:
        yield
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()


def signed_context(request: Request, caller: Caller) -> RequestContext:
    """The context minted for this forwarded request (docs/internal-api.md)."""
    principal = caller.principal
    access = caller.access
    assert principal is not None
    camera = principal.camera
    return RequestContext(
        request_id=caller.request_id,
        subject_kind=principal.kind.value,  # type: ignore[arg-type]
        subject_id=principal.id,
        subject_name=principal.name,
        agency=principal.agency,
        roles=list(principal.roles),
        purpose=access.purpose if access else None,
        case_number=access.case_number if access else None,
        mou_id=str(principal.mou.id) if principal.mou is not None else None,
        camera_id=str(camera.id) if camera is not None else None,
        deployment_id=str(camera.deployment_id)
        if camera is not None and camera.deployment_id
        else None,
        method=request.method,
        path=request.url.path,
        issued_at=datetime.now(UTC),
    )


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _account(request: Request, caller: Caller, upstream: httpx.Response) -> None:
    """Complete the audit event and the dissemination log from the answer's headers."""
    app: FastAPI = request.app
    headers = upstream.headers
    event = caller.event
    count = _count(headers.get(RESULT_COUNT_HEADER))
    data_class = headers.get(DATA_CLASS_HEADER)
    owner_agency = headers.get(OWNER_AGENCY_HEADER)
    record_ids = [i for i in (headers.get(RECORD_IDS_HEADER) or "").split(",") if i.strip()]
    event.details = {
        **(event.details or {}),
        "upstream_status": upstream.status_code,
        **({"data_class": data_class} if data_class else {}),
    }
    if not caller.audited:
        event.result_count = count
        if record_ids:
            event.query = {**(event.query or {}), "record_ids": record_ids[:MAX_RECORD_IDS]}
        await audit.record(app, event)
        caller.audited = True
    principal = caller.principal
    assert principal is not None
    if (
        upstream.status_code < 300
        and owner_agency
        and owner_agency != principal.agency
        and data_class
    ):
        access = caller.access
        dissemination = DisseminationRecord(
            recipient_agency=principal.agency,
            mou_id=str(principal.mou.id) if principal.mou is not None else None,
            purpose=access.purpose if access else None,
            case_number=access.case_number if access else None,
            data_class=data_class,
            record_ids=record_ids[:MAX_RECORD_IDS],
            query=event.query,
            record_count=count if count is not None else len(record_ids),
            released_by=f"gateway:{caller.decision.rule if caller.decision else 'policy'}",
            released_by_agency=owner_agency,
            request_id=str(caller.request_id),
        )
        client: AuditClient = app.state.audit
        await client.disseminate(dissemination)


async def forward(request: Request, caller: Caller) -> Response:
    """Send an allowed request to its owner and stream the answer back."""
    app: FastAPI = request.app
    rule = caller.rule
    settings: Settings = app.state.settings
    client: httpx.AsyncClient = app.state.upstreams[rule.owner.value]
    signer: ContextSigner = app.state.context_signer
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in _DROPPED_REQUEST_HEADERS
    }
    headers[CONTEXT_HEADER] = signer.sign(signed_context(request, caller))
    headers["X-Request-Id"] = str(caller.request_id)
    timeout = httpx.Timeout(
        None if rule.stream else settings.gateway_upstream_timeout_s, connect=2.0
    )
    outgoing = client.build_request(
        request.method,
        request.url.path,
        params=request.url.query or None,
        content=caller.body or None,
        headers=headers,
        timeout=timeout,
    )
    try:
        upstream = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        if not caller.audited:
            caller.event.details = {"upstream_error": type(exc).__name__}
            await audit.record(app, caller.event, durable_fallback=rule.camera_ingest)
        raise ServiceUnavailable(f"{rule.owner.value} service unavailable: {type(exc).__name__}")
    try:
        await _account(request, caller, upstream)
    except BaseException:
        await upstream.aclose()
        raise
    response_headers = {
        name: value
        for name, value in upstream.headers.items()
        if name.lower() not in _DROPPED_RESPONSE_HEADERS
    }
    response_headers.update(event_headers(caller.event))
    if upstream.headers.get(DATA_CLASS_HEADER) in MARKED_DATA_CLASSES:
        # IACP D: whatever the service said, LPR data leaves the gateway marked FOUO.
        for name in [n for n in response_headers if n.lower() == MARKING_HEADER.lower()]:
            del response_headers[name]
        response_headers[MARKING_HEADER] = FOUO
    length = _count(upstream.headers.get("content-length"))
    if not rule.stream and length is not None and length <= SMALL_BODY_BYTES:
        # A small answer (a search page) goes out in one write: streaming it costs an
        # extra ASGI message and task switch per chunk for nothing.
        try:
            content = b"".join([chunk async for chunk in upstream.aiter_raw()])
        finally:
            await upstream.aclose()
        return Response(content, status_code=upstream.status_code, headers=response_headers)
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=response_headers,
        background=BackgroundTask(upstream.aclose),
    )


def _endpoint(rule: RouteRule) -> Callable[..., Coroutine[Any, Any, Response]]:
    async def endpoint(request: Request, caller: CallerDep) -> Response:
        return await forward(request, caller)

    endpoint.__doc__ = rule.summary
    return endpoint


def forwarding_router() -> APIRouter:
    """Routes for every forwarded operation of the route table."""
    router = APIRouter()
    for rule in FORWARDED_ROUTES:
        router.add_api_route(
            rule.path,
            _endpoint(rule),
            methods=[rule.method],
            summary=rule.summary,
            description=(
                f"Forwarded to {rule.owner.value}-svc after the policy allows "
                f"`{rule.resource}:{rule.action}`."
            ),
            tags=[rule.owner.value, PARTNER_TAG] if rule.partner else [rule.owner.value],
            name=f"{rule.method.lower()}:{rule.path}",
            response_class=Response,
            openapi_extra=PARTNER_OPENAPI.get((rule.method, rule.path)) if rule.partner else None,
        )
    return router
