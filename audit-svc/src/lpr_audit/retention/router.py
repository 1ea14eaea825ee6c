"""Routes of retention: settings for administrators and recognition, purge receipts."""

from __future__ import annotations

from fastapi import APIRouter

from lpr_audit.access_log.schemas import AppendAnswer
from lpr_audit.deps import ADMINISTRATORS, LOG_READERS, LedgerDep
from lpr_audit.retention import service
from lpr_audit.retention.schemas import (
    ReceiptBatch,
    RetentionSettingsPublic,
    RetentionSettingsUpdate,
)
from lpr_common.context import ContextDep, InternalContextDep, require_roles
from lpr_common.db import SessionDep

internal_router = APIRouter(prefix="/internal/v1", tags=["internal"])
router = APIRouter(prefix="/v1/retention/settings", tags=["retention"])


@internal_router.get("/retention-settings")
async def internal_retention_settings(
    _: InternalContextDep, session: SessionDep
) -> RetentionSettingsPublic:
    """Return the retention periods in force, for the purge jobs."""
    return await service.current_settings(session)


@internal_router.post("/retention-receipts", status_code=201)
async def append_receipts(
    batch: ReceiptBatch, context: InternalContextDep, ledger: LedgerDep
) -> AppendAnswer:
    """Append purge receipts to the access log chain; answer once durable."""
    result = await service.record_receipts(
        ledger=ledger, component=context.subject_id, receipts=batch.receipts
    )
    return AppendAnswer.of(result)


@router.get("")
async def get_retention_settings(
    context: ContextDep, session: SessionDep
) -> RetentionSettingsPublic:
    """Return the retention period in force for every class."""
    require_roles(context, LOG_READERS, "retention settings")
    return await service.current_settings(session)


@router.put("")
async def put_retention_settings(
    update: RetentionSettingsUpdate, context: ContextDep, session: SessionDep, ledger: LedgerDep
) -> RetentionSettingsPublic:
    """Change retention periods, with a reason; the change is audited."""
    require_roles(context, ADMINISTRATORS, "changing retention settings")
    return await service.change_settings(
        session=session,
        ledger=ledger,
        context=context,
        periods=update.periods,
        reason=update.reason,
    )
