"""The one policy dependency: authenticate, decide, audit, on every public request.

Every router of the gateway (its own records and the forwarded operations, and the
catch-all for unknown paths) depends on :func:`guard`. The route FastAPI matched is
looked up in :mod:`lpr_gateway.access.routes`; no row means deny (404, audited).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.audit_client import AuditEvent, Outcome
from lpr_common.db import SessionDep
from lpr_common.errors import (
    InvalidInput,
    LprError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthenticated,
)
from lpr_common.lanes import declares_json
from lpr_common.nul import NUL, NUL_REASON, nul_field
from lpr_common.plates import InvalidPlate, normalize_plate
from lpr_common.values import EXACT_INTEGER_LIMIT
from lpr_gateway.access import audit, rate_limit
from lpr_gateway.access.identify import (
    Principal,
    authenticate,
    build_subject,
    credentials_present,
)
from lpr_gateway.access.rate_limit import limiter_of
from lpr_gateway.access.routes import RouteRule, rule_for
from lpr_gateway.access.subjects import subject_cache
from lpr_gateway.errors import Denied
from lpr_gateway.settings import Settings
from lpr_policy import AccessContext, Decision, PolicyEngine, Subject, SubjectKind

PURPOSE_HEADER = "X-LPR-Purpose"
CASE_NUMBER_HEADER = "X-LPR-Case-Number"
OFFENSE_HEADER = "X-LPR-Offense"
REASON_HEADER = "X-LPR-Reason"
AUDIT_EVENT_HEADER = "X-LPR-Audit-Event"
REQUEST_ID_HEADER = "X-Request-Id"
SEARCH_FIELDS = ("plate", "time_range", "area", "cameras", "deployments", "state")


@dataclass
class Caller:
    """The outcome of the guard for an allowed request."""

    rule: RouteRule
    principal: Principal | None
    subject: Subject | None
    decision: Decision | None
    access: AccessContext | None
    event: AuditEvent
    body: bytes = b""
    audited: bool = False
    request_id: UUID = field(default_factory=uuid4)

    @property
    def user_id(self) -> UUID | None:
        """The calling user's id, when a user calls."""
        principal = self.principal
        return principal.user.id if principal is not None and principal.user else None

    def has_role(self, *roles: str) -> bool:
        """True when the caller holds one of ``roles``."""
        return self.principal is not None and bool(set(self.principal.roles) & set(roles))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    # Later readers (the route, the forwarder) get the same bytes.
    request._body = body
    return body


def _json_body(request: Request, body: bytes) -> dict[str, Any] | None:
    # JSON exactly when the owning service will read it as JSON (lanes and FastAPI alike):
    # the context the policy decides on must be the one the service acts on.
    if not body or not declares_json(request.headers.get("content-type")):
        return None
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(
    payload: dict[str, Any] | None, request: Request, *, body_only: bool = False
) -> datetime | None:
    time_range = (payload or {}).get("time_range")
    if isinstance(time_range, dict):
        for name in ("start", "from", "since"):
            if name in time_range:
                return _parse_time(time_range[name])
    if body_only:
        return None
    for name in ("since", "from", "start"):
        if name in request.query_params:
            return _parse_time(request.query_params[name])
    return None


def _loggable(value: Any) -> Any:
    """``value`` as the access log can hold it: integers beyond 2**53 as their digits."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -EXACT_INTEGER_LIMIT <= value <= EXACT_INTEGER_LIMIT else str(value)
    if isinstance(value, list):
        return [_loggable(item) for item in value]
    if isinstance(value, dict):
        return {key: _loggable(item) for key, item in value.items()}
    return value


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def access_context(
    request: Request, rule: RouteRule, payload: dict[str, Any] | None, settings: Settings
) -> AccessContext:
    """Why and on what: purpose, case number, offense, reason, time range (A.1-2, C.8)."""
    headers = request.headers
    values = {
        "purpose": _text(headers.get(PURPOSE_HEADER)),
        "case_number": _text(headers.get(CASE_NUMBER_HEADER)),
        "offense": _text(headers.get(OFFENSE_HEADER)),
        "reason": _text(headers.get(REASON_HEADER)),
    }
    body = payload or {}
    for name in values:
        from_body = _text(body.get(name))
        # The search body is authoritative (docs/internal-api.md); elsewhere it fills gaps.
        if from_body is not None and (rule.body_context or values[name] is None):
            values[name] = from_body
    return AccessContext(
        target_agency=settings.agency,
        purpose=values["purpose"],
        offense=values["offense"],
        case_number=values["case_number"],
        reason=values["reason"],
        since=_since(payload, request, body_only=rule.body_context),
        now=request.state.now,
    )


def _plate(payload: dict[str, Any] | None, request: Request) -> str | None:
    raw = (payload or {}).get("plate") or request.query_params.get("plate")
    if not isinstance(raw, str):
        return None
    try:
        return normalize_plate(raw)
    except (InvalidPlate, ValueError):
        return raw[:32]


def base_event(request: Request, outcome: Outcome) -> AuditEvent:
    """An ``access.decision`` event with what is known of the request so far."""
    client = request.client
    path, query = request.url.path, dict(request.query_params) or None
    if NUL in path or NUL in request.url.query:
        # Recorded as U+FFFD: the log cannot hold U+0000, and this request must be logged.
        path = path.replace(NUL, "\ufffd")
        query = {
            k.replace(NUL, "\ufffd"): v.replace(NUL, "\ufffd") for k, v in (query or {}).items()
        }
    return AuditEvent(
        component=audit.COMPONENT,
        event_type="access.decision",
        outcome=outcome,
        method=request.method,
        path=path,
        query=query,
        request_id=str(request.state.request_id),
        client_address=client.host if client else None,
    )


def _describe(event: AuditEvent, principal: Principal | None) -> None:
    if principal is None:
        return
    event.subject_kind = principal.kind.value
    event.subject_id = principal.id
    event.subject_name = principal.name
    event.agency = principal.agency
    event.roles = list(principal.roles)
    if principal.mou is not None:
        event.mou_id = str(principal.mou.id)
    if principal.camera is not None:
        event.details = {
            "camera_id": str(principal.camera.id),
            "deployment_id": str(principal.camera.deployment_id)
            if principal.camera.deployment_id
            else None,
        }


async def _deny(
    app: FastAPI,
    event: AuditEvent,
    error: LprError,
    *,
    rule: str,
    durable: bool,
    clause: str | None = None,
) -> LprError:
    """Audit a refusal, then hand back the error to raise (503 instead if not auditable)."""
    event.outcome = "denied"
    event.rule = rule
    event.reason = error.detail
    event.clause = clause
    await audit.record(app, event, durable_fallback=durable)
    error.headers = {**error.headers, **event_headers(event)}
    return error


def event_headers(event: AuditEvent) -> dict[str, str]:
    """Headers telling the caller which audit event recorded the decision."""
    return {AUDIT_EVENT_HEADER: str(event.event_id), REQUEST_ID_HEADER: event.request_id or ""}


def _camera_reason(decision: Decision, principal: Principal) -> str:
    camera = principal.camera
    if decision.rule == "camera-out-of-service" and camera is not None:
        check = camera.out_of_service_check_id
        named = f"failed equipment check {check}" if check else "no passing equipment check"
        return f"camera out of service: {named}; a passing check by an authorised repairer returns it to service (B.2, B.3)"
    return decision.reason


async def guard(request: Request, response: Response, session: SessionDep) -> Caller:
    """Authenticate the caller, decide with the policy, audit the decision."""
    route = request.scope.get("route")
    template = route.path if isinstance(route, APIRoute) else ""
    return await check(request, response, session, rule_for(request.method, template))


async def check(
    request: Request, response: Response, session: AsyncSession, rule: RouteRule | None
) -> Caller:
    """The guard for the route ``rule`` (``None``: no such operation, refused and audited)."""
    app: FastAPI = request.app
    settings: Settings = app.state.settings
    request.state.now = datetime.now(UTC)
    request.state.request_id = uuid4()
    event = base_event(request, "denied")
    if rule is None:
        principal = None
        if credentials_present(request):
            try:
                principal = await authenticate(request, session, b"", settings)
            except LprError:
                principal = None
        _describe(event, principal)
        raise await _deny(
            app,
            event,
            NotFound(f"no such operation: {request.method} {request.url.path}"),
            rule="unknown-route",
            durable=False,
        )
    if rule.public:
        event.outcome = "allowed"
        return Caller(rule, None, None, None, None, event, request_id=request.state.request_id)
    durable = rule.camera_ingest
    if rule.resource is not None:
        event.resource, event.action = (
            rule.resource.value,
            rule.action.value if rule.action else None,
        )
    # Forwarded operations (searches, reads, alerts) reuse a caller's subject for a few
    # seconds; the gateway's own routes administer those records and always read them.
    cache = subject_cache(app)
    if cache is not None and not rule.forwarded and rule.mutating:
        # This replica may be about to change those records: forget them now (the
        # trigger's NOTIFY empties every replica's cache again once the change commits).
        cache.clear()
    cache = cache if rule.forwarded else None
    generation = cache.generation if cache is not None else 0
    try:
        body = (
            await _read_body(request, settings.gateway_max_body_bytes)
            if request.method in {"POST", "PUT", "PATCH", "DELETE"}
            else b""
        )
        principal = await authenticate(request, session, body, settings, cache=cache)
    except (PayloadTooLarge, Unauthenticated) as error:
        raise await _deny(app, event, error, rule=error.slug, durable=durable)
    _describe(event, principal)
    nul = nul_field(
        request.url.path,
        request.scope.get("query_string", b""),
        request.headers.get("content-type"),
        body,
    )
    if nul is not None:
        raise await _deny(
            app, event, InvalidInput.field(nul, NUL_REASON), rule="nul-character", durable=durable
        )
    # Partners, and users of a partner agency served under its MOU (D.2).
    if principal.kind is SubjectKind.PARTNER or (
        principal.kind is SubjectKind.USER and principal.agency != settings.agency
    ):
        try:
            await limiter_of(app, settings).check(app.state.engine, principal.id, principal.agency)
        except RateLimited as error:
            raise await _deny(app, event, error, rule=rate_limit.RULE, durable=False, clause="D.2")
    assert rule.resource is not None
    assert rule.action is not None
    subject = await build_subject(session, principal, settings, request.state.now)
    if (
        cache is not None
        and principal.cached_subject is None
        and principal.kind in {SubjectKind.USER, SubjectKind.PARTNER}
    ):
        # Out of the session, loaded as they are: its rollback on a refusal would expire them.
        for record in (principal.user, principal.partner, principal.mou):
            if record is not None and record in session:
                session.expunge(record)
        cache.put(principal.kind.value, principal.id, principal, subject, generation)
    payload = _json_body(request, body)
    if rule.body_context and body and payload is None:
        # The policy decides on this body's purpose, case and time range: one the gateway
        # cannot read as a JSON object is refused, never decided from headers instead.
        raise await _deny(
            app,
            event,
            InvalidInput.field("body", "must be a JSON object sent as application/json"),
            rule="unreadable-body",
            durable=durable,
        )
    access = access_context(request, rule, payload, settings)
    engine: PolicyEngine = app.state.policy
    decision = engine.decide(subject, rule.resource, rule.action, access)
    event.purpose, event.case_number = access.purpose, access.case_number
    event.target_agency = access.target_agency
    event.plate = _plate(payload, request)
    if payload is not None and rule.body_context:
        event.query = {
            **(event.query or {}),
            **{k: _loggable(payload[k]) for k in SEARCH_FIELDS if k in payload},
        }
    if not decision.allowed:
        reason = _camera_reason(decision, principal)
        raise await _deny(
            app,
            event,
            Denied(reason, rule=decision.rule, clause=decision.clause),
            rule=decision.rule,
            durable=durable,
            clause=decision.clause,
        )
    event.outcome, event.rule = "allowed", decision.rule
    event.reason, event.clause = decision.reason, decision.clause
    caller = Caller(
        rule,
        principal,
        subject,
        decision,
        access,
        event,
        body=body,
        request_id=request.state.request_id,
    )
    # Reads of forwarded data are audited once the answer's count is known, before the
    # answer is released; anything that changes state is audited before it happens.
    if not rule.forwarded or rule.mutating:
        await audit.record(app, event, durable_fallback=durable)
        caller.audited = True
    # Applied to the gateway's own answers; the forwarder sets them on its streams.
    response.headers.update(event_headers(event))
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(guard)]
"""The guarded caller of a gateway route (same object the router-level guard produced)."""
