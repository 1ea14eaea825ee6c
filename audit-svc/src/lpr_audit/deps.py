"""Dependencies shared by the audit service's routers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from lpr_audit.ledger.service import Ledger
from lpr_audit.settings import Settings
from lpr_common.audit_client import AuditEvent
from lpr_common.context import RequestContext


# Async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a thread
# handoff on every append for a lookup.
async def get_ledger(request: Request) -> Ledger:
    """The process's ledger (built in the lifespan)."""
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_settings(request: Request) -> Settings:
    """The service's settings."""
    settings: Settings = request.app.state.settings
    return settings


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

AUDITORS = frozenset({"auditor"})
LOG_READERS = frozenset({"auditor", "administrator"})
REPORT_READERS = frozenset({"auditor", "administrator", "records"})
ADMINISTRATORS = frozenset({"administrator"})


async def record_access(
    ledger: Ledger,
    context: RequestContext,
    *,
    resource: str,
    action: str,
    query: dict[str, Any],
    result_count: int | None,
) -> None:
    """Append the ``audit.access`` event for an access to audit records (CJIS 5.4.1.1).

    Raises:
        ServiceUnavailable: the event could not be recorded; the access fails closed.
    """
    await ledger.append_events(
        [
            AuditEvent.for_context(
                context,
                component="audit",
                event_type="audit.access",
                resource=resource,
                action=action,
                query={key: value for key, value in query.items() if value is not None},
                result_count=result_count,
            )
        ]
    )
