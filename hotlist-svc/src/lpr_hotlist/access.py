"""What every domain of the service shares: role checks, audit events, answer headers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import Request, Response

from lpr_common.audit_client import AuditClient, AuditEvent, Outcome
from lpr_common.context import RequestContext
from lpr_common.errors import PolicyDenied, ServiceUnavailable

COMPONENT = "hotlist"
ADMINISTRATOR = "administrator"
MAX_RECORD_IDS = 500


def require_administrator(context: RequestContext, rule: str) -> None:
    """Refuse unless the caller is an administrator (defence in depth behind the gateway)."""
    if ADMINISTRATOR not in context.roles and context.subject_kind != "service":
        raise PolicyDenied(f"only an administrator may do this ({rule})", rule=rule)


def audit_event(
    context: RequestContext,
    *,
    event_type: str,
    resource: str,
    action: str,
    details: dict[str, Any],
    plate: str | None = None,
    outcome: Outcome = "success",
    clause: str | None = None,
    result_count: int | None = None,
) -> AuditEvent:
    """An audit event for something the caller did here."""
    return AuditEvent.for_context(
        context,
        component=COMPONENT,
        event_type=event_type,
        outcome=outcome,
        resource=resource,
        action=action,
        plate=plate,
        result_count=result_count,
        clause=clause,
        details=details,
    )


async def record(request: Request, *events: AuditEvent) -> None:
    """Record events in the audit log; the request fails (and rolls back) if it cannot."""
    if not events:
        return
    audit: AuditClient | None = getattr(request.app.state, "audit", None)
    if audit is None:
        raise ServiceUnavailable("audit log is not configured")
    await audit.record(*events)


def describe_answer(
    response: Response,
    *,
    count: int,
    owner_agency: str,
    data_class: str | None = None,
    record_ids: Iterable[object] = (),
) -> None:
    """Set the headers the gateway reads for its audit event and the dissemination log."""
    response.headers["X-LPR-Result-Count"] = str(count)
    response.headers["X-LPR-Owner-Agency"] = owner_agency
    if data_class is not None:
        response.headers["X-LPR-Data-Class"] = data_class
    ids = [str(i) for i in record_ids]
    if ids and len(ids) <= MAX_RECORD_IDS:
        response.headers["X-LPR-Record-Ids"] = ",".join(ids)
