"""Dependencies shared by the audit service's routers, and the role re-check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from lpr_audit.ledger.service import Ledger
from lpr_audit.settings import Settings
from lpr_common.audit_client import AuditEvent
from lpr_common.context import RequestContext
from lpr_common.errors import PolicyDenied


def get_ledger(request: Request) -> Ledger:
    """The process's ledger (built in the lifespan)."""
    ledger: Ledger = request.app.state.ledger
    return ledger


def get_settings(request: Request) -> Settings:
    """The service's settings."""
    settings: Settings = request.app.state.settings
    return settings


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

AUDITORS = frozenset({"auditor"})
LOG_READERS = frozenset({"auditor", "administrator"})
REPORT_READERS = frozenset({"auditor", "administrator", "records"})
ADMINISTRATORS = frozenset({"administrator"})


def require_role(context: RequestContext, allowed: frozenset[str], what: str) -> None:
    """Refuse unless the caller is a user holding one of ``allowed`` (defence in depth).

    Raises:
        PolicyDenied: the signed context carries none of the roles.
    """
    if context.subject_kind != "user" or not allowed.intersection(context.roles):
        raise PolicyDenied(
            f"{what} is open to the roles {', '.join(sorted(allowed))} only",
            rule="audit-svc:role-recheck",
        )


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
            AuditEvent(
                component="audit",
                event_type="audit.access",
                outcome="success",
                subject_kind=context.subject_kind,
                subject_id=context.subject_id,
                subject_name=context.subject_name,
                agency=context.agency,
                roles=list(context.roles),
                purpose=context.purpose,
                case_number=context.case_number,
                resource=resource,
                action=action,
                method=context.method,
                path=context.path,
                query={key: value for key, value in query.items() if value is not None},
                result_count=result_count,
                request_id=str(context.request_id),
            )
        ]
    )
