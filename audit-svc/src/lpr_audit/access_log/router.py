"""Routes of the access log: internal appends, and auditors' queries, exports, checks."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from lpr_audit.access_log import misuse
from lpr_audit.access_log import repository as queries
from lpr_audit.access_log.exports import ZIP, export_response, query_page
from lpr_audit.access_log.schemas import (
    AppendAnswer,
    CheckpointPublic,
    CheckpointRequest,
    EntryPage,
    EventBatch,
    MisuseReport,
)
from lpr_audit.deps import AUDITORS, LedgerDep, SettingsDep, record_access
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import ACCESS, CHAINS
from lpr_audit.parameters import SEQ_LIMIT, QueryTime, reporting_period
from lpr_common.context import ContextDep, InternalContextDep, require_roles
from lpr_common.db import SessionDep
from lpr_common.errors import InvalidInput, NotFound
from lpr_common.plates import normalize_plate

internal_router = APIRouter(prefix="/internal/v1", tags=["internal"])
router = APIRouter(prefix="/v1/audit", tags=["access log"])


@internal_router.post("/events", status_code=201)
async def append_events(
    batch: EventBatch, _: InternalContextDep, ledger: LedgerDep, settings: SettingsDep
) -> AppendAnswer:
    """Append events to the access log; answer once they are durable in the chain."""
    if len(batch.events) > settings.audit_max_request_events:
        raise InvalidInput.field(
            "events", f"at most {settings.audit_max_request_events} events per request"
        )
    result = await ledger.append_events(batch.events)
    return AppendAnswer.of(result)


def _plate(plate: str | None) -> str | None:
    if plate is None:
        return None
    try:
        return normalize_plate(plate)
    except ValueError as error:
        raise InvalidInput.field("plate", str(error)) from error


@router.get("/events")
async def query_events(
    context: ContextDep,
    session: SessionDep,
    ledger: LedgerDep,
    response: Response,
    start: Annotated[QueryTime | None, Query(alias="from")] = None,
    end: Annotated[QueryTime | None, Query(alias="to")] = None,
    user: str | None = None,
    agency: str | None = None,
    purpose: str | None = None,
    case_number: str | None = None,
    plate: str | None = None,
    event_type: str | None = None,
    outcome: str | None = None,
    resource: str | None = None,
    after_seq: Annotated[int | None, Query(ge=0, le=SEQ_LIMIT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryPage:
    """Query the access log by time, user, agency, purpose, case, plate, type and outcome."""
    require_roles(context, AUDITORS, "the access log")
    filters = {
        "subject_id": user,
        "agency": agency,
        "purpose": purpose,
        "case_number": case_number,
        "plate": _plate(plate),
        "event_type": event_type,
        "outcome": outcome,
        "resource": resource,
    }
    return await query_page(
        context=context,
        session=session,
        ledger=ledger,
        response=response,
        table=queries.ACCESS_TABLE,
        resource="audit",
        filters=filters,
        start=start,
        end=end,
        after_seq=after_seq,
        limit=limit,
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


@router.get(
    "/exports",
    response_class=Response,
    responses={200: {"content": {ZIP: {}}, "description": "the bundle (zip)"}},
)
async def export_events(
    context: ContextDep,
    session: SessionDep,
    ledger: LedgerDep,
    format: Literal["jsonl", "csv"] = "jsonl",
    from_seq: Annotated[int | None, Query(ge=1, le=SEQ_LIMIT)] = None,
    to_seq: Annotated[int | None, Query(ge=1, le=SEQ_LIMIT)] = None,
    start: Annotated[QueryTime | None, Query(alias="from")] = None,
    end: Annotated[QueryTime | None, Query(alias="to")] = None,
) -> Response:
    """Export a range of the access log as a bundle that verifies offline."""
    require_roles(context, AUDITORS, "the access log")
    return await export_response(
        context=context,
        session=session,
        ledger=ledger,
        spec=ACCESS,
        resource="audit",
        records_format=format,
        from_seq=from_seq,
        to_seq=to_seq,
        start=start,
        end=end,
    )


@router.post("/checkpoints", status_code=201)
async def create_checkpoint(
    context: ContextDep, ledger: LedgerDep, body: CheckpointRequest | None = None
) -> CheckpointPublic:
    """Sign a checkpoint of a chain's current tail now."""
    require_roles(context, AUDITORS, "checkpoints")
    spec = CHAINS[(body or CheckpointRequest()).chain]
    checkpoint = await ledger.checkpoint(spec)
    if checkpoint is None:
        raise NotFound(f"the {spec.name} log is empty; there is nothing to sign")
    await record_access(
        ledger,
        context,
        resource="audit",
        action="checkpoint",
        query={"chain": spec.name, "seq": checkpoint.seq},
        result_count=1,
    )
    return CheckpointPublic.of(spec.name, checkpoint)


@router.get("/public-key", response_class=Response)
async def public_key(_: ContextDep, ledger: LedgerDep) -> Response:
    """Return the public key(s) that sign the checkpoints, as PEM."""
    return Response(ledger.public_key_pem, media_type="application/x-pem-file")


@router.get("/verification")
async def verify_log(
    context: ContextDep,
    session: SessionDep,
    ledger: LedgerDep,
    chain: Literal["access", "dissemination"] = "access",
    from_seq: Annotated[int | None, Query(ge=1, le=SEQ_LIMIT)] = None,
    to_seq: Annotated[int | None, Query(ge=1, le=SEQ_LIMIT)] = None,
) -> dict[str, object]:
    """Verify a chain (or a range) and its checkpoint signatures as stored now."""
    require_roles(context, AUDITORS, "chain verification")
    verified = await repository.verify_stored(
        session, CHAINS[chain], ledger.public_keys, first=from_seq, last=to_seq
    )
    await record_access(
        ledger,
        context,
        resource="audit",
        action="verify",
        query={"chain": chain, "from_seq": from_seq, "to_seq": to_seq},
        result_count=verified.report.checked,
    )
    return {"chain": chain, **verified.report.to_json()}


@router.get("/misuse")
async def misuse_report(
    context: ContextDep,
    session: SessionDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    start: Annotated[QueryTime | None, Query(alias="from")] = None,
    end: Annotated[QueryTime | None, Query(alias="to")] = None,
) -> MisuseReport:
    """Flag users whose searches are unusual; each flag states the rule it breaks."""
    require_roles(context, AUDITORS, "the misuse report")
    period_start, period_end = reporting_period(start, end, default=timedelta(days=30))
    rows = await queries.decisions(session, period_start, period_end)
    report = misuse.evaluate(rows, settings, period_start, period_end)
    await record_access(
        ledger,
        context,
        resource="audit",
        action="misuse-report",
        query={"from": _iso(period_start), "to": _iso(period_end)},
        result_count=len(report.flags),
    )
    return report
