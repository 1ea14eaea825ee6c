"""Route of the transparency report."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, JSONResponse

from lpr_audit.deps import REPORT_READERS, LedgerDep, SettingsDep, record_access
from lpr_audit.parameters import QueryTime, reporting_period
from lpr_audit.reports.html import render
from lpr_audit.reports.transparency import TransparencyReport, build_report
from lpr_common.context import ContextDep, require_roles
from lpr_common.db import SessionDep

router = APIRouter(prefix="/v1/reports", tags=["reports"])


@router.get(
    "/transparency",
    response_model=TransparencyReport,
    responses={200: {"content": {"text/html": {}}}},
)
async def transparency_report(
    context: ContextDep,
    session: SessionDep,
    ledger: LedgerDep,
    settings: SettingsDep,
    start: Annotated[QueryTime | None, Query(alias="from")] = None,
    end: Annotated[QueryTime | None, Query(alias="to")] = None,
    format: Literal["json", "html"] = "json",
) -> JSONResponse | HTMLResponse:
    """Report aggregate counts for a period (no plates), as JSON or an HTML page."""
    require_roles(context, REPORT_READERS, "the transparency report")
    period_start, period_end = reporting_period(start, end, default=timedelta(days=365))
    report = await build_report(session, period_start, period_end)
    await record_access(
        ledger,
        context,
        resource="reports",
        action="read",
        query={"from": period_start.isoformat(), "to": period_end.isoformat(), "format": format},
        result_count=1,
    )
    if format == "html":
        return HTMLResponse(render(report, settings.agency))
    return JSONResponse(report.model_dump(mode="json"))
