"""Dependencies shared by the audit service's routers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, Response
from pydantic import BaseModel

from lpr_audit.ledger.service import Ledger
from lpr_audit.settings import Settings
from lpr_common.audit_client import AuditEvent
from lpr_common.context import RequestContext, internal_context
from lpr_common.lanes import LaneHandler, json_body, json_response


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


AppendBatch = TypeVar("AppendBatch", bound=BaseModel)


def append_lane(
    model: type[AppendBatch],
    append: Callable[[AppendBatch, RequestContext, Ledger, Settings], Awaitable[BaseModel]],
) -> LaneHandler:
    """An internal append route as an express lane (:mod:`lpr_common.lanes`).

    Every gateway request waits for its access event: the platform's most frequent call.
    The lane checks the caller and the body as the route does and calls the same ``append``.
    """

    async def lane(request: Request) -> Response:
        context = await internal_context(request)
        batch = await json_body(request, model)
        answer = await append(batch, context, request.app.state.ledger, request.app.state.settings)
        return json_response(answer, status_code=201)

    return lane
