"""Routes of alerts: the recognition handoff, the stream, the officer's workflow, dispositions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from sse_starlette import EventSourceResponse

from lpr_common.audit_client import AuditEvent
from lpr_common.context import ContextDep, InternalContextDep, RequestContext
from lpr_common.db import SessionDep
from lpr_common.deployment_results import DeploymentResults
from lpr_common.errors import FieldError, InvalidInput, ServiceUnavailable
from lpr_common.plates import InvalidPlate, normalize_plate
from lpr_common.values import DATETIME_RANGE_REASON, Int8, storable_datetime
from lpr_hotlist import audit_outbox
from lpr_hotlist.access import audit_event, describe_answer, record, require_administrator
from lpr_hotlist.alerts import repository, service
from lpr_hotlist.alerts.models import Alert, DispositionCode
from lpr_hotlist.alerts.schemas import (
    Acknowledge,
    AlertDetail,
    AlertEventPublic,
    AlertPublic,
    Disposition,
    DispositionCodeCreate,
    DispositionCodePublic,
    MatchAnswer,
    MatchedAlert,
    MatchRequest,
    Misread,
    OpenAlert,
    PartnerHit,
    PartnerHits,
    StatusCheck,
    Verify,
)
from lpr_hotlist.alerts.stream import StreamFilter, alert_events, parse_bbox
from lpr_hotlist.hotlists import repository as hotlist_repository
from lpr_hotlist.live_index import LiveIndex
from lpr_hotlist.parameters import MAX_OFFSET, MAX_OPEN_MINUTES
from lpr_hotlist.settings import Settings

router = APIRouter(tags=["alerts"])
internal_router = APIRouter(tags=["internal"])
dispositions_router = APIRouter(tags=["dispositions"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _stale_window(request: Request) -> timedelta:
    return timedelta(hours=_settings(request).hotlist_shift_check_valid_h)


def alert_public(alert: Alert) -> AlertPublic:
    """The API shape of an alert, with links to its image and plate crop."""
    public = AlertPublic.model_validate(alert)
    if alert.image_available:
        public.image_url = f"/v1/reads/{alert.read_id}/image"
        public.crop_url = f"/v1/reads/{alert.read_id}/plates/{alert.plate_index}/crop"
    return public


@internal_router.post("/internal/v1/matches")
async def match_read(
    data: MatchRequest,
    context: InternalContextDep,
    session: SessionDep,
    request: Request,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> MatchAnswer:
    """Match a read's plates against the hot lists and raise alerts (idempotent by read id).

    Frames of one vehicle pass (same ``plates[].track_id``) raise one alert per entry.
    """
    if idempotency_key is not None and idempotency_key != str(data.read_id):
        raise InvalidInput.field("Idempotency-Key", "must be the read id")
    live: LiveIndex = request.app.state.live_index
    state = live.state
    if state.generation < 0:
        raise ServiceUnavailable("the match index is not built yet")
    ignored: list[FieldError] = []
    alerts, events = await service.match_read(
        session,
        state=state,
        data=data,
        context=context,
        stale_valid_for=_stale_window(request),
        ignored=ignored,
    )
    answer = MatchAnswer(
        read_id=data.read_id,
        ignored=ignored,
        alerts=[
            MatchedAlert(
                alert_id=a.id,
                entry_id=a.entry_id,
                list_id=a.list_id,
                rule=a.rule,
                explanation=a.explanation,
                rank=a.rank,
                plate_index=a.plate_index,
                list_name=a.entry.get("list_name"),
                list_category=a.entry.get("list_category"),
                stale_hotlists=a.stale_hotlists,
                track_id=a.track_id,
            )
            for a in alerts
        ],
    )
    # Only the alerts raised now are audited and counted as hits: a frame attached to its
    # pass's alert raises none (its alert.updated event goes to the stream only), and a
    # read without a hit or a repeated read id writes no event and leaves the outbox alone.
    raised = {e.alert_id for e in events if e.event_type == "alert.created"}
    audited = [
        _created_event(context, alert, generation=state.generation)
        for alert in alerts
        if alert.id in raised
    ]
    if not audited:
        await repository.append_events(session, events)
        return answer
    # The access log must hold an alert only if it exists: the events are stored with the
    # alerts and sent once they have committed (the outbox resends them if audit-svc is
    # down then). After the commit nothing may fail the request: recognition-svc would
    # only retry, and the repeated read id would answer these alerts without their events.
    staged = await audit_outbox.stage(session, *audited)
    await repository.append_events(session, events)
    await session.commit()
    await audit_outbox.send_staged(
        session, getattr(request.app.state, "audit", None), staged, *audited
    )
    _count_results(request, data.deployment_id, hits=len(raised))
    return answer


def _created_event(context: RequestContext, alert: Alert, *, generation: int) -> AuditEvent:
    """The audit event of an alert raised by a read (IACP C.4)."""
    return audit_event(
        context,
        event_type="alert.created",
        resource="alerts",
        action="create",
        plate=alert.read_plate,
        clause="C.4",
        details={
            "alert_id": str(alert.id),
            "read_id": str(alert.read_id),
            "agency": alert.agency,
            "list_id": str(alert.list_id),
            "list_name": alert.entry.get("list_name"),
            "list_category": alert.entry.get("list_category"),
            "entry_id": str(alert.entry_id),
            "rule": alert.rule,
            "explanation": alert.explanation,
            "rank": alert.rank,
            "stale_hotlists": alert.stale_hotlists,
            "index_generation": generation,
        },
    )


@router.get(
    "/v1/alerts/stream",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_alerts(
    context: ContextDep,
    request: Request,
    unit_id: Annotated[str | None, Query(max_length=64)] = None,
    camera_id: Annotated[str | None, Query(max_length=64)] = None,
    bbox: Annotated[str | None, Query(description="Area: min_lon,min_lat,max_lon,max_lat")] = None,
    last_event_id: Annotated[
        Int8 | None, Query(ge=0, description="Same as the Last-Event-ID header")
    ] = None,
    last_event_id_header: Annotated[Int8 | None, Header(alias="Last-Event-ID", ge=0)] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000, description="Close after n events")] = None,
) -> EventSourceResponse:
    """Stream the agency's alert events as server-sent events, resumable with Last-Event-ID."""
    area = None
    if bbox is not None:
        try:
            area = parse_bbox(bbox)
        except ValueError as error:
            raise InvalidInput.field("bbox", str(error))
    after = last_event_id_header if last_event_id_header is not None else last_event_id
    if after is None:
        # A new subscriber starts with what happens from now on.
        # A short session of its own: a request-scoped one would stay open (idle in
        # transaction) for as long as the stream runs.
        async with request.app.state.sessionmaker() as session:
            after = await repository.last_event_seq(session, context.agency)
    wanted = StreamFilter(agency=context.agency, unit_id=unit_id, camera_id=camera_id, bbox=area)
    events = alert_events(
        request.app.state.sessionmaker,
        request.app.state.alert_bus,
        wanted,
        after=after,
        limit=limit,
        poll_s=_settings(request).hotlist_stream_poll_s,
    )
    return EventSourceResponse(
        events, ping=15, headers={"X-LPR-Data-Class": "hits", "X-LPR-Owner-Agency": context.agency}
    )


@router.get("/v1/alerts/open")
async def open_alerts(
    context: ContextDep,
    session: SessionDep,
    response: Response,
    older_than_minutes: Annotated[
        int | None,
        Query(ge=0, le=MAX_OPEN_MINUTES, description="Default: the administrator's threshold"),
    ] = None,
) -> list[OpenAlert]:
    """Report alerts still without a disposition after a time (IACP C.5)."""
    if older_than_minutes is None:
        older_than_minutes = (await hotlist_repository.get_config(session)).open_alert_minutes
    now = service.utcnow()
    alerts = await repository.open_alerts(
        session, agency=context.agency, before=now - timedelta(minutes=older_than_minutes)
    )
    describe_answer(
        response,
        count=len(alerts),
        owner_agency=context.agency,
        data_class="hits",
        record_ids=(a.id for a in alerts),
    )
    return [
        OpenAlert(
            **alert_public(a).model_dump(),
            open_minutes=int((now - a.created_at).total_seconds() // 60),
        )
        for a in alerts
    ]


@router.get("/v1/alerts")
async def list_alerts(
    context: ContextDep,
    session: SessionDep,
    response: Response,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[AlertPublic]:
    """List the agency's alerts, newest first."""
    alerts = await repository.alerts_of_agency(
        session, agency=context.agency, status=status, limit=limit, offset=offset
    )
    describe_answer(
        response,
        count=len(alerts),
        owner_agency=context.agency,
        data_class="hits",
        record_ids=(a.id for a in alerts),
    )
    return [alert_public(a) for a in alerts]


def partner_hit(alert: Alert) -> PartnerHit:
    """The partner-facing shape of a hit: no workflow, cameras, units or case numbers."""
    return PartnerHit(
        hit_id=alert.id,
        read_id=alert.read_id,
        plate=alert.read_plate,
        state=alert.read_state,
        captured_at=alert.captured_at,
        latitude=alert.latitude,
        longitude=alert.longitude,
        list_category=alert.entry.get("list_category"),
        reason=alert.entry.get("reason"),
        match=alert.rule,
    )


def _since(request: Request) -> datetime:
    """The ``since`` query parameter, read exactly as the gateway reads it for the lookback.

    Pydantic's datetime parsing accepts more (e.g. ``since=0``, a Unix time) than the
    gateway's policy check does; a value the gateway could not check must not widen the
    time range here.
    """
    values = request.query_params.getlist("since")
    if len(values) > 1:
        raise InvalidInput.field("since", "give it once")
    try:
        since = datetime.fromisoformat(values[0].replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput.field("since", "must be an ISO 8601 time with a UTC offset")
    if since.tzinfo is None:
        raise InvalidInput.field("since", "must have a UTC offset, e.g. 2026-11-01T00:00:00Z")
    try:
        return storable_datetime(since)
    except ValueError:
        raise InvalidInput.field("since", DATETIME_RANGE_REASON)


@router.get(
    "/v1/hits",
    tags=["alerts"],
    response_model=list[AlertPublic] | PartnerHits,
)
async def hits_for_plate(
    context: ContextDep,
    session: SessionDep,
    request: Request,
    response: Response,
    plate: Annotated[str, Query(description="The plate read, any spacing or case")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    since: Annotated[
        str | None,
        Query(
            description="Only reads captured since this time (ISO 8601 with a UTC offset); "
            "required for partner agencies, within the MOU's lookback",
            examples=["2026-11-01T00:00:00Z"],
        ),
    ] = None,
) -> list[AlertPublic] | PartnerHits:
    """List the alerts raised by reads of a plate, newest first (partners: shared hits)."""
    try:
        normalized = normalize_plate(plate)
    except InvalidPlate as error:
        raise InvalidInput.field("plate", str(error))
    if service.is_partner(context) and await request.body():
        # The gateway forwards no body on a GET; were one to arrive, a time range in it
        # (which the gateway's lookback check reads before the query) could differ from ``since``.
        raise InvalidInput.field("body", "must be empty: give the plate and since as query")
    start = _since(request) if since is not None else None
    owner, alerts = await service.hits_for_plate(
        session,
        context=context,
        platform_agency=_settings(request).agency,
        plate=normalized,
        since=start,
        limit=limit,
    )
    describe_answer(
        response,
        count=len(alerts),
        owner_agency=owner,
        data_class="hits",
        record_ids=(a.id for a in alerts),
    )
    if not service.is_partner(context):
        return [alert_public(a) for a in alerts]
    assert start is not None  # the service refuses a partner without it
    response.headers["X-LPR-Marking"] = "FOUO"
    hits = [partner_hit(a) for a in alerts]
    return PartnerHits(
        owner_agency=owner, plate=normalized, since=start, count=len(hits), hits=hits
    )


@router.get("/v1/alerts/{alert_id}")
async def get_alert(
    alert_id: UUID, context: ContextDep, session: SessionDep, response: Response
) -> AlertDetail:
    """Show an alert with its history."""
    alert = await service.owned_alert(session, context=context, alert_id=alert_id)
    history = await repository.events_of(session, alert_id)
    describe_answer(
        response, count=1, owner_agency=alert.agency, data_class="hits", record_ids=[alert.id]
    )
    return AlertDetail(
        **alert_public(alert).model_dump(),
        history=[AlertEventPublic.model_validate(e) for e in history],
    )


def _count_results(
    request: Request, deployment_id: str | UUID | None, *, hits: int = 0, dispositions: int = 0
) -> None:
    """Add to the deployment's results (IACP B.1.e); sent to the gateway in the background."""
    results: DeploymentResults | None = getattr(request.app.state, "deployment_results", None)
    if results is not None:
        results.add(deployment_id, hits=hits, dispositions=dispositions)


async def _step(
    request: Request,
    session: SessionDep,
    context: RequestContext,
    alert_id: UUID,
    action: str,
    body: Acknowledge | Verify | Misread | StatusCheck | Disposition,
) -> AlertPublic:
    alert, event = await service.transition(
        session,
        context=context,
        alert_id=alert_id,
        action=action,
        body=body,
        stale_valid_for=_stale_window(request),
    )
    audited = audit_event(
        context,
        event_type="alert.transition",
        resource="alerts",
        action="update",
        plate=alert.read_plate,
        clause="C.5" if action == "disposition" else "C.4",
        details={
            "alert_id": str(alert.id),
            "from": event.from_status,
            "to": event.to_status,
            "user": context.subject_id,
            **(event.details or {}),
        },
    )
    # The access log must hold the step only if it happened: its event is stored with the
    # step, and sent once the step has committed (the outbox resends it if audit-svc is
    # down then). Sending before the commit could log a step whose commit then failed, and
    # sending under the event lock of append_events would make every writer wait on it.
    staged = await audit_outbox.stage(session, audited)
    await repository.append_events(session, [event])
    await session.commit()
    await audit_outbox.send_staged(
        session, getattr(request.app.state, "audit", None), staged, audited
    )
    if action == "disposition":
        _count_results(request, alert.deployment_id, dispositions=1)
    return alert_public(alert)


@router.post("/v1/alerts/{alert_id}/acknowledge")
async def acknowledge_alert(
    alert_id: UUID,
    context: ContextDep,
    session: SessionDep,
    request: Request,
    body: Acknowledge | None = None,
) -> AlertPublic:
    """Acknowledge a new alert."""
    return await _step(request, session, context, alert_id, "acknowledge", body or Acknowledge())


@router.post("/v1/alerts/{alert_id}/verify")
async def verify_alert(
    alert_id: UUID, body: Verify, context: ContextDep, session: SessionDep, request: Request
) -> AlertPublic:
    """Record that the read's characters and state match the entry (IACP C.4.a)."""
    return await _step(request, session, context, alert_id, "verify", body)


@router.post("/v1/alerts/{alert_id}/misread")
async def flag_misread(
    alert_id: UUID, body: Misread, context: ContextDep, session: SessionDep, request: Request
) -> AlertPublic:
    """Flag an alert as a misread: the read does not match the entry (IACP C.4.a)."""
    return await _step(request, session, context, alert_id, "misread", body)


@router.post("/v1/alerts/{alert_id}/status-check")
async def record_status_check(
    alert_id: UUID, body: StatusCheck, context: ContextDep, session: SessionDep, request: Request
) -> AlertPublic:
    """Record the dispatch or MDT check that the entry is still active (IACP C.4.b)."""
    return await _step(request, session, context, alert_id, "status_check", body)


@router.post("/v1/alerts/{alert_id}/disposition")
async def record_disposition(
    alert_id: UUID, body: Disposition, context: ContextDep, session: SessionDep, request: Request
) -> AlertPublic:
    """Record the disposition of an alert (IACP C.5)."""
    return await _step(request, session, context, alert_id, "disposition", body)


@dispositions_router.get("/v1/dispositions")
async def list_dispositions(
    _context: ContextDep, session: SessionDep
) -> list[DispositionCodePublic]:
    """List the administered dispositions."""
    return [
        DispositionCodePublic.model_validate(c) for c in await repository.disposition_codes(session)
    ]


@dispositions_router.put("/v1/dispositions/{code}")
async def put_disposition(
    code: str,
    data: DispositionCodeCreate,
    context: ContextDep,
    session: SessionDep,
    request: Request,
) -> DispositionCodePublic:
    """Add or change an administered disposition (set active=false to retire it)."""
    require_administrator(context, "C.5:administrator-manages-dispositions")
    if data.code != code:
        raise InvalidInput.field("code", "must equal the code in the path")
    entry = await repository.disposition_code(session, code)
    if entry is None:
        entry = DispositionCode(code=code, label=data.label)
    entry.label = data.label
    entry.requires_note = data.requires_note
    entry.active = data.active
    entry.updated_by = context.subject_id
    entry.updated_at = service.utcnow()
    session.add(entry)
    await session.flush()
    await record(
        request,
        audit_event(
            context,
            event_type="disposition_code.changed",
            resource="alerts",
            action="manage",
            details=data.model_dump(),
        ),
    )
    return DispositionCodePublic.model_validate(entry)
