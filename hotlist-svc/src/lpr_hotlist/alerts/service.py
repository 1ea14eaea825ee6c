"""Rules of alerts: raising them from reads, and the officer's workflow (IACP C.4, C.5).

Workflow: ``new -> acknowledged -> verified | misread``; ``verified -> status_checked``;
``status_checked | misread -> dispositioned``. Anything else is refused naming the rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import RequestContext
from lpr_common.errors import Conflict, FieldError, InvalidInput, NotFound, PolicyDenied
from lpr_common.plates import InvalidPlate, InvalidState, normalize_plate, normalize_state
from lpr_hotlist.alerts import repository
from lpr_hotlist.alerts.models import Alert, AlertEvent, AlertStatus
from lpr_hotlist.alerts.schemas import (
    Acknowledge,
    Disposition,
    MatchRequest,
    Misread,
    StatusCheck,
    Verify,
)
from lpr_hotlist.hotlists.models import HotListEntry
from lpr_hotlist.hotlists.service import stale_reason
from lpr_hotlist.live_index import IndexState, ListInfo
from lpr_hotlist.matching import Match

RULE_OTHER_AGENCY = "C.5: only the alert's own agency works its alerts"


@dataclass(frozen=True, slots=True)
class Step:
    """One transition of the workflow."""

    action: str
    sources: frozenset[AlertStatus]
    target: AlertStatus
    rule: str


STEPS: Mapping[str, Step] = {
    step.action: step
    for step in (
        Step(
            "acknowledge",
            frozenset({AlertStatus.NEW}),
            AlertStatus.ACKNOWLEDGED,
            "C.4: an alert is acknowledged once, when new",
        ),
        Step(
            "verify",
            frozenset({AlertStatus.ACKNOWLEDGED}),
            AlertStatus.VERIFIED,
            "C.4.a: verify characters and state after acknowledging, before anything else",
        ),
        Step(
            "misread",
            frozenset({AlertStatus.ACKNOWLEDGED}),
            AlertStatus.MISREAD,
            "C.4.a: a misread is found when verifying an acknowledged alert",
        ),
        Step(
            "status_check",
            frozenset({AlertStatus.VERIFIED}),
            AlertStatus.STATUS_CHECKED,
            "C.4.b: the status check follows a verified alert",
        ),
        Step(
            "disposition",
            frozenset({AlertStatus.STATUS_CHECKED, AlertStatus.MISREAD}),
            AlertStatus.DISPOSITIONED,
            "C.5: a disposition follows the status check (or a misread), once",
        ),
    )
}


def utcnow() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


# --- raising alerts -------------------------------------------------------------------------


@dataclass(slots=True)
class _Hit:
    match: Match
    info: ListInfo
    plate_index: int
    candidate: int
    read_state: str | None
    confidence: float | None
    box: list[float] | None
    track_id: UUID | None = None
    track_read_ids: tuple[UUID, ...] = ()
    fused_plate: str | None = None

    @property
    def key(self) -> tuple[bool, tuple[int, int, int, int], int, int]:
        # The recogniser's first reading before its alternatives; then the match's own rank.
        return (self.candidate > 0, self.match.rank, self.candidate, self.plate_index)


def _entry_snapshot(entry: HotListEntry, info: ListInfo, list_version: int) -> dict[str, Any]:
    return {
        "plate": entry.plate,
        "state": entry.state,
        "pattern": entry.pattern,
        "reason": entry.reason,
        "list_code": entry.list_code,
        "ncic_number": entry.ncic_number,
        "case_number": entry.case_number,
        "vehicle_year": entry.vehicle_year,
        "vehicle_make": entry.vehicle_make,
        "vehicle_model": entry.vehicle_model,
        "vehicle_colour": entry.vehicle_colour,
        "expires_at": None if entry.expires_at is None else entry.expires_at.isoformat(),
        "list_name": info.name,
        "list_source": info.source,
        "list_category": info.category,
        "list_priority": info.priority,
        "list_version": list_version,
    }


def _in_force(entry: HotListEntry, at: datetime) -> bool:
    if entry.effective_at is not None and at < entry.effective_at:
        return False
    return entry.expires_at is None or at < entry.expires_at


def _find_hits(state: IndexState, data: MatchRequest, ignored: list[FieldError]) -> list[_Hit]:
    best: dict[object, _Hit] = {}
    for plate_number, plate in enumerate(data.plates):
        read_state: str | None = None
        if plate.state:
            try:
                read_state = normalize_state(plate.state)
            except InvalidState as error:
                # A reader's wrong guess at the state must not cost the hit: match the
                # characters as if the state were unknown, and say so.
                ignored.append(FieldError(field=f"plates[{plate_number}].state", reason=str(error)))
        try:
            first = normalize_plate(plate.text)
        except InvalidPlate as error:
            raise InvalidInput.field(f"plates[{plate_number}].text", str(error))
        texts = [first]
        for candidate in plate.candidates:
            try:
                texts.append(normalize_plate(candidate.text))
            except InvalidPlate:
                continue  # an alternative reading may be junk; the first one decides validity
        seen: set[str] = set()
        for candidate_number, text in enumerate(texts):
            if text in seen:
                continue
            seen.add(text)
            for match in state.index.match(text, read_state, at=data.captured_at):
                info = state.lists.get(cast(UUID, match.list_id))
                if info is None or info.agency != data.agency:
                    continue
                hit = _Hit(
                    match,
                    info,
                    plate.index,
                    candidate_number,
                    read_state,
                    plate.confidence,
                    plate.box,
                    plate.track_id,
                    tuple(plate.track_read_ids),
                    first if plate.track_id is not None else None,
                )
                held = best.get(match.entry_id)
                if held is None or hit.key < held.key:
                    best[match.entry_id] = hit
    return sorted(best.values(), key=lambda h: h.key)


async def match_read(
    session: AsyncSession,
    *,
    state: IndexState,
    data: MatchRequest,
    context: RequestContext,
    stale_valid_for: timedelta,
    ignored: list[FieldError],
) -> tuple[list[Alert], list[AlertEvent]]:
    """Match a read's plates and candidates; raise one alert per matched entry.

    Returns the read's alerts and the events still to append (none on a repeated read id):
    one ``alert.created`` event per alert raised now and one ``alert.updated`` event per
    alert the read attached to. Fields it could not use (an invalid state) are appended to
    ``ignored``.

    Multi-frame fusion: a plate sent with a ``track_id`` is one frame of a vehicle pass.
    The first frame that hits an entry raises the alert at once; a later frame of the same
    pass hitting the same entry attaches to that alert (its read joins
    ``member_read_ids``, the fused plate is updated) instead of raising another, and the
    ``alert.updated`` event tells the officers' streams that the pass grew. The pass's
    transaction-scoped advisory lock makes concurrent frames take turns.

    Raises:
        InvalidInput: A plate text that is not ``A-Z0-9`` or a capture time without zone.
    """
    if data.captured_at.tzinfo is None:
        raise InvalidInput.field("captured_at", "needs a timezone (e.g. 2026-11-29T10:00:00Z)")
    hits = _find_hits(state, data, ignored)
    if not await repository.claim_read(session, read_id=data.read_id, agency=data.agency):
        return list(await repository.alerts_of_read(session, data.read_id)), []
    if not hits:
        return [], []
    entries = await repository.current_entries_by_id(
        session,
        [cast(UUID, h.match.entry_id) for h in hits],
    )
    stale = await stale_reason(
        session,
        agency=data.agency,
        valid_for=stale_valid_for,
        unit_id=data.unit_id,
        camera_id=data.camera_id,
    )
    alerts: list[Alert] = []
    created: list[Alert] = []
    attached: list[Alert] = []
    events: list[AlertEvent] = []
    tracks = sorted({h.track_id for h in hits if h.track_id is not None})
    for track_id in tracks:  # in one order, so two requests never wait on each other
        await repository.lock_track(session, track_id)
    alerted: set[UUID] = set()
    for hit in hits:
        current = entries.get(cast(UUID, hit.match.entry_id))
        if current is None:
            continue  # the list's current version no longer holds the entry (a stale index)
        entry, list_version = current
        # A stale index's hit stands for the current version's entry: check that entry's
        # dates as an up-to-date index would, and alert once when two hits stand for it.
        if entry.id in alerted or not _in_force(entry, data.captured_at):
            continue
        alerted.add(entry.id)
        if hit.track_id is not None:
            existing = await repository.alert_of_track(
                session, track_id=hit.track_id, entry_id=entry.id
            )
            if existing is not None:
                _attach(existing, data.read_id, hit)
                alerts.append(existing)
                attached.append(existing)
                continue
        explanation = hit.match.explanation
        if hit.candidate:
            explanation += f" [alternative reading {hit.candidate} of the plate]"
        if hit.match.state_matches is False:
            explanation += f" [read state {hit.read_state} differs from entry state {entry.state}]"
        alert = Alert(
            agency=data.agency,
            rank=len(alerts) + 1,
            rule=hit.match.rule.value,
            explanation=explanation,
            read_id=data.read_id,
            plate_index=hit.plate_index,
            read_plate=hit.match.read,
            read_state=hit.read_state,
            read_confidence=hit.confidence,
            read_box=hit.box,
            camera_id=data.camera_id,
            deployment_id=data.deployment_id,
            unit_id=data.unit_id,
            captured_at=data.captured_at,
            latitude=data.latitude,
            longitude=data.longitude,
            heading=data.heading,
            image_available=data.image_available,
            entry_id=entry.id,
            list_id=entry.list_id,
            version_id=entry.version_id,
            entry=_entry_snapshot(entry, hit.info, list_version),
            stale_hotlists=stale is not None,
            stale_reason=stale,
            track_id=hit.track_id,
            fused_plate=hit.fused_plate,
            member_read_ids=_member_ids([], data.read_id, hit),
        )
        alerts.append(alert)
        created.append(alert)
        session.add(alert)
    await session.flush()
    await repository.set_alert_count(session, data.read_id, len(alerts))
    for alert in created:
        events.append(
            AlertEvent(
                alert_id=alert.id,
                agency=alert.agency,
                event_type="alert.created",
                to_status=AlertStatus.NEW.value,
                subject_id=context.subject_id,
                subject_name=context.subject_name,
                details={
                    "rule": alert.rule,
                    "explanation": alert.explanation,
                    "list_id": str(alert.list_id),
                    "list_category": alert.entry.get("list_category"),
                    "stale_hotlists": alert.stale_hotlists,
                },
            )
        )
    events.extend(_updated_event(alert, data.read_id, context) for alert in attached)
    return alerts, events


def _updated_event(alert: Alert, read_id: UUID, context: RequestContext) -> AlertEvent:
    """The stream's news that a later frame of the pass joined the alert (status unchanged)."""
    return AlertEvent(
        alert_id=alert.id,
        agency=alert.agency,
        event_type="alert.updated",
        from_status=alert.status,
        to_status=alert.status,
        subject_id=context.subject_id,
        subject_name=context.subject_name,
        details={
            "read_id": str(read_id),
            "track_id": str(alert.track_id) if alert.track_id else None,
            "member_read_ids": list(alert.member_read_ids),
            "fused_plate": alert.fused_plate,
        },
    )


def _member_ids(known: Sequence[str], read_id: UUID, hit: _Hit) -> list[str]:
    # Only reads that matched this entry: the read now, and the frames of its pass
    # (which were all sent with the same fused plate and the frames' own texts).
    ids = dict.fromkeys([*known, *(str(i) for i in hit.track_read_ids), str(read_id)])
    return list(ids)


def _attach(alert: Alert, read_id: UUID, hit: _Hit) -> None:
    """A later frame of the alert's vehicle pass hit the same entry: record it on the alert."""
    alert.member_read_ids = _member_ids(alert.member_read_ids, read_id, hit)
    if hit.fused_plate is not None:
        alert.fused_plate = hit.fused_plate
    alert.updated_at = utcnow()


# --- hits for a plate (officers, and partners under an MOU) ----------------------------------


def is_partner(context: RequestContext) -> bool:
    """True when another agency calls under an MOU (IACP D.2)."""
    return context.subject_kind == "partner" or context.mou_id is not None


async def hits_for_plate(
    session: AsyncSession,
    *,
    context: RequestContext,
    platform_agency: str,
    plate: str,
    since: datetime | None,
    limit: int,
) -> tuple[str, Sequence[Alert]]:
    """The hits of reads of a plate, and the agency that owns them.

    An officer gets the alerts of their own agency. A partner gets the platform agency's
    hits since a time it must state: the gateway has already held that time to the MOU's
    lookback and the purpose to the MOU, and checks the lookback only when a time is
    given. Alerts flagged as misreads are not hits and are not shared.

    Raises:
        InvalidInput: A partner did not state ``since``.
    """
    if not is_partner(context):
        alerts = await repository.alerts_for_plate(
            session, agency=context.agency, plate=plate, since=since, limit=limit
        )
        return context.agency, alerts
    if since is None:
        raise InvalidInput.field(
            "since", "required for partner agencies: the start of the time range, within the MOU"
        )
    alerts = await repository.alerts_for_plate(
        session,
        agency=platform_agency,
        plate=plate,
        since=since,
        limit=limit,
        without_misreads=True,
    )
    return platform_agency, alerts


# --- the officer's workflow -----------------------------------------------------------------


async def owned_alert(
    session: AsyncSession, *, context: RequestContext, alert_id: UUID, for_update: bool = False
) -> Alert:
    """The alert if it exists and belongs to the caller's agency.

    Raises:
        NotFound: No such alert.
        PolicyDenied: It belongs to another agency.
    """
    alert = await repository.get_alert(session, alert_id, for_update=for_update)
    if alert is None:
        raise NotFound("alert not found")
    if alert.agency != context.agency:
        raise PolicyDenied(
            f"alert belongs to agency {alert.agency}, not {context.agency}", rule=RULE_OTHER_AGENCY
        )
    return alert


async def transition(
    session: AsyncSession,
    *,
    context: RequestContext,
    alert_id: UUID,
    action: str,
    body: Acknowledge | Verify | Misread | StatusCheck | Disposition,
    stale_valid_for: timedelta,
) -> tuple[Alert, AlertEvent]:
    """Move an alert one step along the workflow, recording who did what.

    Returns the alert and its event, still to be appended; the caller stages the audit
    event with it and sends that only once the step has committed.

    Raises:
        NotFound, PolicyDenied: See :func:`owned_alert`.
        Conflict: The step is out of order (the problem names the rule).
        InvalidInput: The step's own fields are refused.
    """
    step = STEPS[action]
    alert = await owned_alert(session, context=context, alert_id=alert_id, for_update=True)
    current = AlertStatus(alert.status)
    if current not in step.sources:
        allowed = " or ".join(sorted(s.value for s in step.sources))
        raise Conflict(
            f"cannot {action.replace('_', '-')} an alert that is {current.value}; "
            f"it must be {allowed}",
            rule=step.rule,
        )
    now = utcnow()
    by = {"by": context.subject_id, "by_name": context.subject_name, "at": now.isoformat()}
    details: dict[str, Any] = {}
    if isinstance(body, Acknowledge):
        alert.acknowledged_by = context.subject_id
        alert.acknowledged_at = now
        details = {"note": body.note}
        reason = await stale_reason(
            session, agency=alert.agency, valid_for=stale_valid_for, user_id=context.subject_id
        )
        if reason is not None and not alert.stale_hotlists:
            alert.stale_hotlists = True
            alert.stale_reason = reason
            details["stale_reason"] = reason
    elif isinstance(body, Verify):
        if not body.characters_match:
            raise InvalidInput.field(
                "characters_match", "must be true to verify; flag the alert as a misread instead"
            )
        if not body.state_matches:
            raise InvalidInput.field(
                "state_matches", "must be true to verify; flag the alert as a misread instead"
            )
        details = body.model_dump()
        alert.verification = {**details, **by}
    elif isinstance(body, Misread):
        actual_plate = actual_state = None
        if body.actual_plate:
            try:
                actual_plate = normalize_plate(body.actual_plate)
            except InvalidPlate as error:
                raise InvalidInput.field("actual_plate", str(error))
        if body.actual_state:
            try:
                actual_state = normalize_state(body.actual_state)
            except InvalidState as error:
                raise InvalidInput.field("actual_state", str(error))
        details = {"note": body.note, "actual_plate": actual_plate, "actual_state": actual_state}
        alert.misread = {**details, **by}
    elif isinstance(body, StatusCheck):
        details = body.model_dump()
        alert.status_check = {**details, **by}
    else:
        code = await repository.disposition_code(session, body.code)
        if code is None or not code.active:
            raise InvalidInput.field(
                "code", f"{body.code!r} is not in the administered list of dispositions"
            )
        note = (body.note or "").strip() or None
        if code.requires_note and note is None:
            raise InvalidInput.field("note", f"disposition {code.code!r} requires a note")
        alert.disposition_code = code.code
        alert.disposition_note = note
        alert.dispositioned_by = context.subject_id
        alert.dispositioned_at = now
        details = {"code": code.code, "label": code.label, "note": note}
    alert.status = step.target.value
    alert.updated_at = now
    session.add(alert)
    await session.flush()
    event = AlertEvent(
        alert_id=alert.id,
        agency=alert.agency,
        event_type="alert.transition",
        from_status=current.value,
        to_status=step.target.value,
        subject_id=context.subject_id,
        subject_name=context.subject_name,
        occurred_at=now,
        details={"action": action, **details},
    )
    return alert, event
