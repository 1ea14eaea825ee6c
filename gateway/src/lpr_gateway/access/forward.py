"""Forwarding allowed requests to the owning service, streaming both ways.

A read is recorded twice in the access log. Its ``access.decision`` (who, why, which
query, the rule that allowed it) is appended while the owner works on the request, and
the answer is held until it is durable. Its ``access.result`` (how many records, which
ids, the owner's status; read from the answer's headers, docs/internal-api.md) follows
the answer; when the data leaves its owner's agency, it is written before the answer is
released, together with the dissemination record. A state change (an alert step, a
hot-list entry, a legal hold) has its ``access.decision`` recorded by the guard before it
is sent on, and its ``access.result`` (what the owner answered) follows the answer too.

A stream (the alerts) is relayed only while the caller may still receive it: it ends when
the caller's token expires or when the policy, deciding again on the caller's records as
they are then, no longer allows it. That refusal is an ``access.decision`` of its own
(denied, with the rule and reason), tied to the request and to the decision that allowed
the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import jwt
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from lpr_common.audit_client import AuditClient, AuditEvent, DisseminationRecord, Outcome
from lpr_common.body_digest import body_sha256
from lpr_common.context import CONTEXT_HEADER, ContextSigner, RequestContext, service_context_auth
from lpr_common.errors import LprError, ServiceUnavailable
from lpr_common.http import RetryingTransport, build_client
from lpr_common.lanes import LaneHandler, request_session
from lpr_common.service import peer_url
from lpr_gateway.access import audit
from lpr_gateway.access.guard import Caller, CallerDep, check, event_headers
from lpr_gateway.access.identify import Principal, authenticate, build_subject, unauthenticated
from lpr_gateway.access.partner_docs import PARTNER_OPENAPI, PARTNER_TAG
from lpr_gateway.access.routes import FORWARDED_ROUTES, Owner, RouteRule
from lpr_gateway.access.subjects import subject_cache
from lpr_gateway.settings import Settings
from lpr_policy import PolicyEngine, SubjectKind

RESULT_COUNT_HEADER = "x-lpr-result-count"
DATA_CLASS_HEADER = "x-lpr-data-class"
RECORD_IDS_HEADER = "x-lpr-record-ids"
OWNER_AGENCY_HEADER = "x-lpr-owner-agency"
MAX_RECORD_IDS = 500
RESULT_EVENT = "access.result"
MARKING_HEADER = "X-LPR-Marking"
FOUO = "FOUO"
MARKED_DATA_CLASSES = frozenset({"reads", "hits", "images"})
SMALL_BODY_BYTES = 1 << 20
"""Answers up to this size (and declaring it) are sent in one write, not streamed."""
STREAM_RECHECK_S = 30.0
"""How often the policy decides again whether a caller may still receive a stream."""
STREAM_CHANGE_POLL_S = 1.0
"""How soon a stream notices that callers' records changed (the subject cache cleared)."""
STREAM_END_AUDIT_S = 5.0
"""How long an ended stream waits for its refusal to be recorded before it closes anyway.

The recording goes on regardless, and ends in the durable outbox if audit-svc cannot
take it.
"""

_logger = logging.getLogger(__name__)

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
    wires: dict[str, httpx.AsyncBaseTransport] = {}
    for owner in (Owner.RECOGNITION, Owner.HOTLIST, Owner.AUDIT):
        wires[owner.value] = RetryingTransport(transports.get(owner.value), retries=2)
        clients[owner.value] = httpx.AsyncClient(
            base_url=peer_url(settings, owner.value),
            timeout=httpx.Timeout(settings.gateway_upstream_timeout_s, connect=2.0),
            transport=wires[owner.value],
        )
    app.state.upstreams = clients
    # Where forwarded requests go: each owner's base URL without its trailing slash.
    app.state.upstream_bases = {
        owner: str(client.base_url).rstrip("/") for owner, client in clients.items()
    }
    # Forwarded requests go straight to the wire: a proxy wants none of the client's
    # cookie jar (one caller's cookies must never reach another's request), auth flow or
    # redirect handling, and skipping them is a third of the client's cost per request.
    app.state.upstream_wires = wires
    # "audit-log" replaces the transport of the audit client (tests observe it there).
    if "audit-log" in transports:
        signer: ContextSigner = app.state.service_signer
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


def signed_context(
    request: Request, caller: Caller, *, query: str | None = None, body: bytes
) -> RequestContext:
    """The context minted for this forwarded request (docs/internal-api.md).

    ``body``: the exact bytes sent on (``b""`` for none); the context states their digest,
    so that one captured on its way to a service is no good with another body.
    """
    principal = caller.principal
    access = caller.access
    assert principal is not None
    camera = principal.camera
    mou = principal.mou
    not_before = None
    if principal.kind.value == "partner" or mou is not None:
        # Another agency sees data only as far back as its MOU allows (D.2), on lookups by
        # id too, where no time range is stated for the policy to check (no MOU: none).
        decided_at = access.now if access is not None else datetime.now(UTC)
        lookback = mou.max_lookback_days if mou is not None else 0
        not_before = decided_at - timedelta(days=lookback)
    return RequestContext(
        request_id=caller.request_id,
        subject_kind=principal.kind.value,  # type: ignore[arg-type]
        subject_id=principal.id,
        subject_name=principal.name,
        agency=principal.agency,
        roles=list(principal.roles),
        purpose=access.purpose if access else None,
        case_number=access.case_number if access else None,
        mou_id=str(mou.id) if mou is not None else None,
        not_before=not_before,
        camera_id=str(camera.id) if camera is not None else None,
        deployment_id=str(camera.deployment_id)
        if camera is not None and camera.deployment_id
        else None,
        method=request.method,
        path=request.url.path,
        query=query,
        body_sha256=body_sha256(body),
        issued_at=datetime.now(UTC),
    )


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class Answer:
    """What an owner's answer says about itself in its headers (docs/internal-api.md)."""

    status: int
    count: int | None
    data_class: str | None
    owner_agency: str | None
    record_ids: list[str]

    @classmethod
    def of(cls, upstream: httpx.Response) -> Answer:
        """Read the answer's headers once."""
        headers = upstream.headers
        ids = (headers.get(RECORD_IDS_HEADER) or "").split(",")
        return cls(
            status=upstream.status_code,
            count=_count(headers.get(RESULT_COUNT_HEADER)),
            data_class=headers.get(DATA_CLASS_HEADER) or None,
            owner_agency=headers.get(OWNER_AGENCY_HEADER) or None,
            record_ids=[i for i in ids if i.strip()],
        )


def result_event(caller: Caller, answer: Answer | None, error: str | None = None) -> AuditEvent:
    """The ``access.result`` event of a forwarded request: what the owner's answer carried.

    It repeats who, why and what was asked (so it reads on its own) and points at the
    ``access.decision`` event that allowed the request (``details.decision_event_id``).
    """
    decision = caller.event
    details: dict[str, Any] = {
        **(decision.details or {}),
        "decision_event_id": str(decision.event_id),
    }
    query = dict(decision.query or {})
    outcome: Outcome = "error"
    if answer is not None:
        details["upstream_status"] = answer.status
        if answer.data_class:
            details["data_class"] = answer.data_class
        if answer.record_ids:
            query["record_ids"] = answer.record_ids[:MAX_RECORD_IDS]
        outcome = "success" if answer.status < 400 else "failure"
    if error is not None:
        details["upstream_error"] = error
    return decision.model_copy(
        update={
            "event_id": uuid4(),
            "occurred_at": datetime.now(UTC),
            "event_type": RESULT_EVENT,
            "outcome": outcome,
            "result_count": answer.count if answer is not None else None,
            "query": query or None,
            "details": details,
        }
    )


async def _account(request: Request, caller: Caller, upstream: httpx.Response) -> None:
    """Record what the answer carries before it is released to the caller.

    Data leaving its owner's agency gets a dissemination record (IACP D.1), written with
    the ``access.result`` event before the answer goes out. Within the agency the result
    event follows the answer (:class:`~lpr_gateway.access.audit.ResultLog`): the access
    itself is already durable.
    """
    app: FastAPI = request.app
    answer = Answer.of(upstream)
    event = result_event(caller, answer)
    principal = caller.principal
    assert principal is not None
    owner_agency, data_class = answer.owner_agency, answer.data_class
    if (
        answer.status >= 300
        or owner_agency is None
        or data_class is None
        or owner_agency == principal.agency
    ):
        # Nothing leaves the agency: the result follows the answer.
        app.state.result_log.post(event)
        return
    access = caller.access
    dissemination = DisseminationRecord(
        recipient_agency=principal.agency,
        mou_id=str(principal.mou.id) if principal.mou is not None else None,
        purpose=access.purpose if access else None,
        case_number=access.case_number if access else None,
        data_class=data_class,
        record_ids=answer.record_ids[:MAX_RECORD_IDS],
        query=caller.event.query,
        record_count=answer.count if answer.count is not None else len(answer.record_ids),
        released_by=f"gateway:{caller.decision.rule if caller.decision else 'policy'}",
        released_by_agency=owner_agency,
        request_id=str(caller.request_id),
    )
    client: AuditClient = app.state.audit
    await asyncio.gather(client.disseminate(dissemination), audit.record(app, event))


def _token_expiry(request: Request, principal: Principal) -> float | None:
    """When the bearer token this request was allowed with expires (Unix time), if it does.

    The guard verified this very token for this request; only its ``exp`` is read here.
    """
    if principal.kind not in {SubjectKind.USER, SubjectKind.PARTNER}:
        return None
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    expiry = claims.get("exp")
    return float(expiry) if isinstance(expiry, int | float) else None


@dataclass(frozen=True)
class StreamRefusal:
    """Why a relayed stream was ended: the refusing decision, or the authentication error."""

    rule: str
    reason: str
    clause: str | None = None

    @classmethod
    def of_error(cls, error: LprError) -> StreamRefusal:
        """The refusal an error stands for, named as the guard names it (its slug)."""
        return cls(rule=error.slug, reason=error.detail or error.title)


async def _refusal(request: Request, caller: Caller) -> StreamRefusal | None:
    """Decide again, as the guard does, on the caller's records as they are now.

    Returns:
        ``None`` while the caller may still receive the stream, else why not.
    """
    app: FastAPI = request.app
    settings: Settings = app.state.settings
    rule, access = caller.rule, caller.access
    assert rule.resource is not None
    assert rule.action is not None
    assert access is not None
    now = datetime.now(UTC)
    try:
        async with request_session(request) as session:
            # Read afresh (no cache): a disabled account or an expired token refuses here.
            principal = await authenticate(request, session, b"", settings)
            subject = await build_subject(session, principal, settings, now)
    except LprError as error:
        return StreamRefusal.of_error(error)
    except Exception as error:
        # Access that cannot be confirmed is not continued; the caller may reconnect.
        _logger.warning("stream %s: access could not be checked", caller.request_id, exc_info=True)
        return StreamRefusal(
            "access-unconfirmed", f"access could not be checked: {type(error).__name__}"
        )
    engine: PolicyEngine = app.state.policy
    decision = engine.decide(
        subject, rule.resource, rule.action, dataclasses.replace(access, now=now)
    )
    if decision.allowed:
        return None
    return StreamRefusal(decision.rule, decision.reason, decision.clause)


def stream_end_event(caller: Caller, refusal: StreamRefusal) -> AuditEvent:
    """The ``access.decision`` that ended a relayed stream: denied, and why.

    It repeats who, why and what was asked, carries the request's id, and points at the
    ``access.decision`` event that allowed the stream (``details.decision_event_id``).
    """
    decision = caller.event
    return decision.model_copy(
        update={
            "event_id": uuid4(),
            "occurred_at": datetime.now(UTC),
            "outcome": "denied",
            "rule": refusal.rule,
            "reason": refusal.reason,
            "clause": refusal.clause,
            "details": {
                **(decision.details or {}),
                "decision_event_id": str(decision.event_id),
                "stream_ended": True,
            },
        }
    )


# Strong references: a recording outlives the relay that started it (the loop keeps weak ones).
_stream_end_records: set[asyncio.Task[None]] = set()


async def _record_stream_end(app: FastAPI, event: AuditEvent) -> None:
    try:
        # Durably queued if audit-svc cannot take it: there is no request left to refuse.
        await audit.record(app, event, durable_fallback=True)
        return
    except Exception:
        # Not only an unavailable audit log: at shutdown the client may be closed already.
        _logger.warning("access.decision %s: audit client failed; queueing it", event.event_id)
    try:
        await audit.queue(app.state.sessionmaker, event)
    except Exception:
        _logger.exception(
            "access.decision %s ending stream %s not recorded", event.event_id, event.request_id
        )


@asynccontextmanager
async def stream_end_records(app: FastAPI) -> AsyncIterator[None]:  # noqa: ARG001 - a hook
    """Lifespan hook: at shutdown, let the refusals of ended streams be recorded first.

    Entered after :func:`upstream_clients`, so it exits before the audit client closes;
    waits at most :data:`STREAM_END_AUDIT_S`.
    """
    try:
        yield
    finally:
        pending = set(_stream_end_records)
        if pending:
            await asyncio.wait(pending, timeout=STREAM_END_AUDIT_S)


def _audit_stream_end(app: FastAPI, caller: Caller, refusal: StreamRefusal) -> asyncio.Task[None]:
    """Start recording why the stream ends, in a task of its own (see the relay)."""
    _logger.info("stream %s ended: %s (%s)", caller.request_id, refusal.reason, refusal.rule)
    task = asyncio.create_task(_record_stream_end(app, stream_end_event(caller, refusal)))
    _stream_end_records.add(task)
    task.add_done_callback(_stream_end_records.discard)
    return task


async def _next_chunk(chunks: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(chunks)
    except StopAsyncIteration:
        return None


async def _relay_while_allowed(
    request: Request, caller: Caller, upstream: httpx.Response
) -> AsyncIterator[bytes]:
    """The owner's stream, for as long as the caller may still receive it.

    It ends when the token the stream was opened with expires, and when the policy no
    longer allows the caller: decided again every :data:`STREAM_RECHECK_S` seconds, and
    within :data:`STREAM_CHANGE_POLL_S` of a change to callers' records (the subject
    cache is cleared on each). The owner's stream is then closed, and the refusal
    recorded (waited for up to :data:`STREAM_END_AUDIT_S`).
    """
    principal = caller.principal
    assert principal is not None
    expires_at = _token_expiry(request, principal)
    # Cameras hold no stream; a camera's signed request cannot be authenticated twice.
    recheck = principal.kind in {SubjectKind.USER, SubjectKind.PARTNER}
    cache = subject_cache(request.app)
    generation = cache.generation if cache is not None else 0
    loop = asyncio.get_running_loop()
    next_check = loop.time() + STREAM_RECHECK_S
    chunks = upstream.aiter_raw()
    pending: asyncio.Task[bytes | None] | None = None
    ending: asyncio.Task[None] | None = None
    try:
        while True:
            if pending is None:
                # A task of its own: a chunk still on its way is not lost to a timer.
                pending = asyncio.create_task(_next_chunk(chunks))
            waits = [next_check - loop.time()] if recheck else []
            if recheck and cache is not None:
                waits.append(STREAM_CHANGE_POLL_S)
            if expires_at is not None:
                waits.append(expires_at - time.time())
            await asyncio.wait({pending}, timeout=max(0.0, min(waits)) if waits else None)
            if expires_at is not None and time.time() >= expires_at:
                ending = _audit_stream_end(
                    request.app, caller, StreamRefusal.of_error(unauthenticated("token expired"))
                )
                return
            # Checked whether or not a chunk came: a busy stream is checked all the same.
            changed = cache is not None and cache.generation != generation
            if recheck and (changed or loop.time() >= next_check):
                generation = cache.generation if cache is not None else 0
                next_check = loop.time() + STREAM_RECHECK_S
                refusal = await _refusal(request, caller)
                if refusal is not None:
                    ending = _audit_stream_end(request.app, caller, refusal)
                    return
            if pending.done():
                chunk = pending.result()
                pending = None
                if chunk is None:
                    return
                yield chunk
    finally:
        try:
            if pending is not None:
                pending.cancel()
                await asyncio.wait({pending})
                if not pending.cancelled():
                    pending.exception()  # retrieved: the stream ends either way
        finally:
            try:
                await upstream.aclose()
            finally:
                if ending is not None:
                    # Bounded: an audit log that never answers does not hold the stream
                    # open (the task goes on, and queues the event durably if it fails).
                    await asyncio.wait({ending}, timeout=STREAM_END_AUDIT_S)


async def _settle(decision: asyncio.Task[str] | None) -> None:
    """Wait for the decision event; its failure (503) refuses the request."""
    if decision is not None:
        await decision


async def forward(request: Request, caller: Caller) -> Response:
    """Send an allowed request to its owner and stream the answer back.

    A read's ``access.decision`` event is appended while the owner works on the request;
    nothing is released until it is durable (and a 503 goes out instead if it cannot be).
    """
    app: FastAPI = request.app
    rule = caller.rule
    settings: Settings = app.state.settings
    signer: ContextSigner = app.state.context_signer
    headers = {
        name: value
        for name, value in request.headers.items()
        if name.lower() not in _DROPPED_REQUEST_HEADERS
    }
    headers["X-Request-Id"] = str(caller.request_id)
    timeout = httpx.Timeout(
        None if rule.stream else settings.gateway_upstream_timeout_s, connect=2.0
    )
    # Built directly, not by ``client.build_request`` (which re-parses and merges the URL,
    # query, headers and cookies: about 0.1 ms of CPU on every forwarded request). The
    # path goes to the owner's own host whatever it holds, and the query as it came.
    query = request.url.query
    # The path as the caller encoded it: re-encoding the decoded one would turn ``%2541``
    # (``%41`` decoded) into ``%41``, which the owner decodes to ``A``, another path.
    raw_path: bytes | None = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    target = f"{app.state.upstream_bases[rule.owner.value]}{path}"
    outgoing = httpx.Request(
        request.method,
        f"{target}?{query}" if query else target,
        content=caller.body or None,
        headers=headers,
        extensions={"timeout": timeout.as_dict()},
    )
    # Bound to the query string as it goes out (httpx re-encodes it) and to the body: a
    # captured context is no good for another query or body on the same path.
    outgoing.headers[CONTEXT_HEADER] = signer.sign(
        signed_context(
            request, caller, query=outgoing.url.query.decode("latin-1"), body=outgoing.content
        )
    )
    decision: asyncio.Task[str] | None = None
    if not caller.audited:
        # Its own task: a caller who hangs up does not stop the access being recorded.
        decision = asyncio.create_task(audit.record(app, caller.event))
        caller.audited = True
    wire: httpx.AsyncBaseTransport = app.state.upstream_wires[rule.owner.value]
    try:
        upstream = await wire.handle_async_request(outgoing)
        upstream.request = outgoing
    except httpx.HTTPError as exc:
        await _settle(decision)
        # A state change may or may not have happened: the log says the owner never answered.
        app.state.result_log.post(result_event(caller, None, type(exc).__name__))
        raise ServiceUnavailable(f"{rule.owner.value} service unavailable: {type(exc).__name__}")
    try:
        await _settle(decision)
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
        _relay_while_allowed(request, caller, upstream) if rule.stream else upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=response_headers,
        background=BackgroundTask(upstream.aclose),
    )


def _endpoint(rule: RouteRule) -> Callable[..., Coroutine[Any, Any, Response]]:
    async def endpoint(request: Request, caller: CallerDep) -> Response:
        return await forward(request, caller)

    endpoint.__doc__ = rule.summary
    return endpoint


def _lane(rule: RouteRule) -> LaneHandler:
    async def lane(request: Request) -> Response:
        async with request_session(request) as session:
            caller = await check(request, Response(), session, rule)
        return await forward(request, caller)

    return lane


def forwarding_lanes() -> dict[tuple[str, str], LaneHandler]:
    """Express lanes (:mod:`lpr_common.lanes`) for the forwarded operations at fixed paths.

    The searches and hot-list look-ups officers and partners send all day: guarded and
    forwarded by the same code as the routed path, without FastAPI's routing.
    """
    return {
        (rule.method, rule.path): _lane(rule)
        for rule in FORWARDED_ROUTES
        if "{" not in rule.path and not rule.stream
    }


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
