"""Legal holds (IACP B.1.b): reads kept for a case until an administrator releases them.

A hold names its reads by id, or by plate and time range (the reads found now; reads of
that plate and range that arrive later are added by the purge job before it purges).
Placing and releasing are audited before they are stored: if the access log cannot take
the event, the request fails (503) and nothing changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_common.audit_client import AuditClient, AuditEvent
from lpr_common.context import RequestContext, require_roles
from lpr_common.errors import (
    Conflict,
    FieldError,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)
from lpr_common.plates import InvalidPlate, normalize_plate
from lpr_policy.conditions import MIN_REASON_LENGTH
from lpr_policy.models import is_vague
from lpr_recognition.retention.job import RETENTION_LOCK_KEY
from lpr_recognition.retention.models import LegalHold, LegalHoldRead
from lpr_recognition.retention.schemas import LegalHoldCreate, LegalHoldPublic, TimeRange
from lpr_recognition.settings import SCHEMA

HOLD_PLACERS = frozenset({"records"})
HOLD_RELEASERS = frozenset({"administrator"})
HOLD_READERS = frozenset({"administrator", "auditor", "records"})


def _reason_problem(reason: str | None) -> str | None:
    text_ = (reason or "").strip()
    if not text_:
        return "a reason is required"
    if is_vague(text_) or len(text_) < MIN_REASON_LENGTH:
        return f"a documented, specific reason of at least {MIN_REASON_LENGTH} characters"
    return None


def _aware(moment: datetime | None) -> bool:
    return moment is not None and moment.tzinfo is not None


def _check_selector(body: LegalHoldCreate, errors: list[FieldError]) -> str | None:
    """The normalised plate of a plate hold; adds a problem for a bad selector."""
    by_ids = body.read_ids is not None
    by_plate = body.plate is not None or body.time_range is not None
    if by_ids == by_plate:
        errors.append(
            FieldError(
                field="read_ids",
                reason="name the reads: either read_ids, or plate with time_range",
            )
        )
        return None
    if by_ids:
        if not body.read_ids:
            errors.append(FieldError(field="read_ids", reason="at least one read id"))
        return None
    plate: str | None = None
    if body.plate is None:
        errors.append(FieldError(field="plate", reason="a plate is required with time_range"))
    else:
        try:
            plate = normalize_plate(body.plate)
        except (InvalidPlate, ValueError) as exc:
            errors.append(FieldError(field="plate", reason=str(exc)))
    span = body.time_range
    if span is None:
        errors.append(FieldError(field="time_range", reason="start and end are required"))
    elif not _aware(span.start) or not _aware(span.end):
        errors.append(
            FieldError(field="time_range", reason="start and end with a time zone are required")
        )
    elif span.start is not None and span.end is not None and span.start >= span.end:
        errors.append(FieldError(field="time_range.end", reason="must be after start"))
    return plate


async def _reads_by_id(
    session: AsyncSession, read_ids: Sequence[UUID], agency: str
) -> dict[UUID, datetime]:
    result = await session.execute(
        text(
            f'SELECT id, captured_at FROM "{SCHEMA}".reads '
            "WHERE id = ANY(:ids) AND agency = :agency"
        ),
        {"ids": list(read_ids), "agency": agency},
    )
    return {row.id: row.captured_at for row in result}


async def _reads_by_plate(
    session: AsyncSession, plate: str, span: TimeRange, agency: str
) -> dict[UUID, datetime]:
    result = await session.execute(
        text(
            f'SELECT DISTINCT p.read_id, p.captured_at FROM "{SCHEMA}".plates p '
            f'JOIN "{SCHEMA}".reads r ON r.id = p.read_id AND r.captured_at = p.captured_at '
            "WHERE p.normalized_text = :plate AND p.captured_at >= :start "
            "AND p.captured_at < :end AND r.agency = :agency"
        ),
        {"plate": plate, "start": span.start, "end": span.end, "agency": agency},
    )
    return {row.read_id: row.captured_at for row in result}


async def _record(audit: AuditClient | None, event: AuditEvent) -> None:
    if audit is None:
        raise ServiceUnavailable("audit log unavailable: legal holds are not changed unaudited")
    await audit.record(event)


def _event(context: RequestContext, event_type: str, **fields: Any) -> AuditEvent:
    return AuditEvent.for_context(
        context,
        component="recognition",
        event_type=event_type,
        resource="legal_holds",
        clause="B.1.b",
        **fields,
    )


async def _public(session: AsyncSession, hold: LegalHold) -> LegalHoldPublic:
    rows = await session.execute(
        select(col(LegalHoldRead.read_id))
        .where(col(LegalHoldRead.hold_id) == hold.id)
        .order_by(col(LegalHoldRead.captured_at), col(LegalHoldRead.read_id))
    )
    read_ids = list(rows.scalars())
    span = TimeRange(start=hold.range_start, end=hold.range_end) if hold.plate is not None else None
    return LegalHoldPublic(
        id=hold.id,
        status="active" if hold.released_at is None else "released",
        agency=hold.agency,
        case_number=hold.case_number,
        reason=hold.reason,
        placed_by=hold.placed_by,
        placed_by_name=hold.placed_by_name,
        placed_at=hold.placed_at,
        plate=hold.plate,
        time_range=span,
        read_count=len(read_ids),
        read_ids=read_ids,
        released_at=hold.released_at,
        released_by=hold.released_by,
        release_reason=hold.release_reason,
    )


@dataclass(frozen=True, slots=True)
class LockWait:
    """How long placing a hold waits for a running purge, and the Retry-After it answers."""

    timeout_s: float = 5.0
    retry_after_s: int = 30


_LOCK_NOT_AVAILABLE = "55P03"


def _sqlstate(error: DBAPIError) -> str | None:
    state = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return str(state) if state is not None else None


async def _running_purge(session: AsyncSession) -> str:
    """Words naming the purge that holds the retention lock (its database process)."""
    row = (
        await session.execute(
            text(
                "SELECT a.pid, a.xact_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock' "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid = CAST(:high AS oid) AND l.objid = CAST(:low AS oid) "
                "AND l.objsubid = 1 "
                "LIMIT 1"
            ),
            {"high": RETENTION_LOCK_KEY >> 32, "low": RETENTION_LOCK_KEY & 0xFFFF_FFFF},
        )
    ).first()
    if row is None:
        return "a retention purge run (it has just finished)"
    since = f", running since {row.xact_start.isoformat()}" if row.xact_start else ""
    return f"the retention purge run in database process {row.pid}{since}"


async def _share_retention_lock(session: AsyncSession, *, wait: LockWait) -> None:
    """Share the lock a purge run holds while it purges, waiting ``wait.timeout_s`` at most.

    Raises:
        ServiceUnavailable: A purge run holds it longer (503 with ``Retry-After``); the
            transaction is rolled back, so nothing of the hold is stored.
    """
    previous = (await session.execute(text("SELECT current_setting('lock_timeout')"))).scalar_one()
    await session.execute(
        text("SELECT set_config('lock_timeout', :wait, true)"),
        {"wait": f"{max(1, int(wait.timeout_s * 1000))}ms"},
    )
    try:
        await session.execute(
            text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": RETENTION_LOCK_KEY}
        )
    except DBAPIError as error:
        if _sqlstate(error) != _LOCK_NOT_AVAILABLE:
            raise
        await session.rollback()
        purge = await _running_purge(session)
        raise ServiceUnavailable(
            f"{purge} holds the retention lock; waited {wait.timeout_s:g} s for it to "
            f"commit. The legal hold was not placed: retry after {wait.retry_after_s} s",
            headers={"Retry-After": str(wait.retry_after_s)},
        ) from None
    await session.execute(
        text("SELECT set_config('lock_timeout', :previous, true)"), {"previous": previous}
    )


async def place(
    *,
    session: AsyncSession,
    audit: AuditClient | None,
    context: RequestContext,
    body: LegalHoldCreate,
    lock_wait: LockWait | None = None,
) -> LegalHoldPublic:
    """Place a hold for a case; refuses, naming each bad field, with nothing stored.

    Raises:
        InvalidInput: A bad field (each named).
        ServiceUnavailable: The audit log cannot take the event, or a purge run kept the
            retention lock longer than ``lock_wait`` allows (with ``Retry-After``).
    """
    lock_wait = lock_wait or LockWait()
    require_roles(context, HOLD_PLACERS, "placing a legal hold")
    errors: list[FieldError] = []
    case_number = (body.case_number or "").strip()
    if not case_number:
        errors.append(
            FieldError(field="case_number", reason="a case number is required for a legal hold")
        )
    problem = _reason_problem(body.reason)
    if problem:
        errors.append(FieldError(field="reason", reason=problem))
    plate = _check_selector(body, errors)
    if not errors:
        # A purge run cannot see this hold until it commits, and nothing else stops it:
        # legal_hold_reads has no foreign key to reads, and the row-wise purge's DELETE
        # would wait on a FOR SHARE lock only to delete the read once this commits (its
        # snapshot still shows no hold). So share the lock each run try-locks exclusively,
        # before the reads are looked up: a run that starts now is skipped (nothing
        # deleted; the next one sees the hold), and a hold placed during a run waits for
        # its commit, then finds only the reads it left. The wait is bounded: a long
        # purge answers 503 with Retry-After instead of holding the request open.
        await _share_retention_lock(session, wait=lock_wait)
    if not errors and body.read_ids is not None:
        found = await _reads_by_id(session, body.read_ids, context.agency)
        errors.extend(
            FieldError(field=f"read_ids.{i}", reason="no such read of this agency")
            for i, read_id in enumerate(body.read_ids)
            if read_id not in found
        )
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)
    if plate is not None:
        assert body.time_range is not None
        found = await _reads_by_plate(session, plate, body.time_range, context.agency)
    hold = LegalHold(
        id=uuid4(),
        agency=context.agency,
        case_number=case_number,
        reason=(body.reason or "").strip(),
        placed_by=context.subject_id,
        placed_by_name=context.subject_name,
        placed_at=datetime.now(UTC),
        plate=plate,
        range_start=body.time_range.start if plate is not None and body.time_range else None,
        range_end=body.time_range.end if plate is not None and body.time_range else None,
    )
    session.add(hold)
    await session.flush()
    session.add_all(
        LegalHoldRead(hold_id=hold.id, read_id=read_id, captured_at=captured_at)
        for read_id, captured_at in found.items()
    )
    await session.flush()
    await _record(
        audit,
        _event(
            context,
            "legal_hold.placed",
            action="create",
            case_number=case_number,
            reason=hold.reason,
            plate=plate,
            result_count=len(found),
            query={"read_ids": [str(i) for i in found]} if plate is None else None,
            details={
                "hold_id": str(hold.id),
                "read_count": len(found),
                "selector": "plate_time_range" if plate is not None else "read_ids",
            },
        ),
    )
    return await _public(session, hold)


async def _get(session: AsyncSession, hold_id: UUID, agency: str) -> LegalHold:
    hold = await session.get(LegalHold, hold_id)
    if hold is None or hold.agency != agency:
        raise NotFound(f"no legal hold {hold_id}")
    return hold


async def release(
    *,
    session: AsyncSession,
    audit: AuditClient | None,
    context: RequestContext,
    hold_id: UUID,
    reason: str | None,
) -> LegalHoldPublic:
    """Release a hold: an administrator, with a documented reason; audited."""
    require_roles(context, HOLD_RELEASERS, "releasing a legal hold")
    problem = _reason_problem(reason)
    if problem:
        raise InvalidInput.field("reason", problem)
    hold = await _get(session, hold_id, context.agency)
    if hold.released_at is not None:
        raise Conflict(f"legal hold {hold_id} was released at {hold.released_at.isoformat()}")
    released_at = datetime.now(UTC)
    assert reason is not None
    released = (
        await session.execute(
            update(LegalHold)
            .where(col(LegalHold.id) == hold_id, col(LegalHold.released_at).is_(None))
            .values(
                released_at=released_at,
                released_by=context.subject_id,
                release_reason=reason.strip(),
            )
            .returning(col(LegalHold.id))
        )
    ).scalar_one_or_none()
    await session.flush()
    await session.refresh(hold)
    if released is None:
        # A concurrent release also read the hold as active; its UPDATE committed first,
        # and this one, re-checked after waiting on the row, changed nothing: not a
        # second release, so not a second audit event.
        assert hold.released_at is not None
        raise Conflict(f"legal hold {hold_id} was released at {hold.released_at.isoformat()}")
    await _record(
        audit,
        _event(
            context,
            "legal_hold.released",
            action="delete",
            case_number=hold.case_number,
            reason=reason.strip(),
            details={"hold_id": str(hold.id)},
        ),
    )
    return await _public(session, hold)


async def get(*, session: AsyncSession, context: RequestContext, hold_id: UUID) -> LegalHoldPublic:
    """One hold of the caller's agency."""
    require_roles(context, HOLD_READERS, "legal holds")
    return await _public(session, await _get(session, hold_id, context.agency))


async def list_holds(
    *,
    session: AsyncSession,
    context: RequestContext,
    status: str | None,
    case_number: str | None,
    limit: int,
) -> list[LegalHoldPublic]:
    """Holds of the caller's agency, newest first."""
    require_roles(context, HOLD_READERS, "legal holds")
    statement = select(LegalHold).where(col(LegalHold.agency) == context.agency)
    if status == "active":
        statement = statement.where(col(LegalHold.released_at).is_(None))
    elif status == "released":
        statement = statement.where(col(LegalHold.released_at).is_not(None))
    if case_number:
        statement = statement.where(col(LegalHold.case_number) == case_number)
    statement = statement.order_by(col(LegalHold.placed_at).desc()).limit(limit)
    holds = list((await session.execute(statement)).scalars())
    return [await _public(session, hold) for hold in holds]
