"""Routes of the dissemination log: internal appends, queries and exports."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from lpr_audit.access_log import repository as queries
from lpr_audit.access_log.exports import ZIP, export_response, query_page
from lpr_audit.access_log.schemas import (
    AppendAnswer,
    DisseminationBatch,
    EntryPage,
)
from lpr_audit.deps import LOG_READERS, LedgerDep, SettingsDep
from lpr_audit.ledger.chains import DISSEMINATION
from lpr_audit.parameters import SEQ_LIMIT, QueryTime
from lpr_common.context import ContextDep, InternalContextDep, require_roles
from lpr_common.db import SessionDep
from lpr_common.errors import InvalidInput

internal_router = APIRouter(prefix="/internal/v1", tags=["internal"])
router = APIRouter(prefix="/v1/dissemination", tags=["dissemination log"])


@internal_router.post("/disseminations", status_code=201)
async def append_disseminations(
    batch: DisseminationBatch, _: InternalContextDep, ledger: LedgerDep, settings: SettingsDep
) -> AppendAnswer:
    """Append records to the dissemination log; answer once they are durable."""
    if len(batch.records) > settings.audit_max_request_events:
        raise InvalidInput.field(
            "records", f"at most {settings.audit_max_request_events} records per request"
        )
    result = await ledger.append_disseminations(batch.records)
    return AppendAnswer.of(result)


@router.get("")
async def query_disseminations(
    context: ContextDep,
    session: SessionDep,
    ledger: LedgerDep,
    response: Response,
    start: Annotated[QueryTime | None, Query(alias="from")] = None,
    end: Annotated[QueryTime | None, Query(alias="to")] = None,
    recipient_agency: str | None = None,
    released_by: str | None = None,
    mou_id: str | None = None,
    purpose: str | None = None,
    case_number: str | None = None,
    data_class: str | None = None,
    after_seq: Annotated[int | None, Query(ge=0, le=SEQ_LIMIT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryPage:
    """Query the dissemination log by time, recipient, releaser, MOU, purpose and case."""
    require_roles(context, LOG_READERS, "the dissemination log")
    filters = {
        "recipient_agency": recipient_agency,
        "released_by": released_by,
        "mou_id": mou_id,
        "purpose": purpose,
        "case_number": case_number,
        "data_class": data_class,
    }
    return await query_page(
        context=context,
        session=session,
        ledger=ledger,
        response=response,
        table=queries.DISSEMINATION_TABLE,
        resource="dissemination",
        filters=filters,
        start=start,
        end=end,
        after_seq=after_seq,
        limit=limit,
    )


@router.get(
    "/exports",
    response_class=Response,
    responses={200: {"content": {ZIP: {}}, "description": "the bundle (zip)"}},
)
async def export_disseminations(
    context: ContextDep,
    session: SessionDep,
    ledger: LedgerDep,
    format: Literal["jsonl", "csv"] = "jsonl",
    from_seq: Annotated[int | None, Query(ge=1, le=SEQ_LIMIT)] = None,
    to_seq: Annotated[int | None, Query(ge=1, le=SEQ_LIMIT)] = None,
    start: Annotated[QueryTime | None, Query(alias="from")] = None,
    end: Annotated[QueryTime | None, Query(alias="to")] = None,
) -> Response:
    """Export a range of the dissemination log as a bundle that verifies offline."""
    require_roles(context, LOG_READERS, "the dissemination log")
    return await export_response(
        context=context,
        session=session,
        ledger=ledger,
        spec=DISSEMINATION,
        resource="dissemination",
        records_format=format,
        from_seq=from_seq,
        to_seq=to_seq,
        start=start,
        end=end,
    )
