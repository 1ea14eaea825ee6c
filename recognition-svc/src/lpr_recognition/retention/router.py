"""Routes of retention: legal holds (IACP B.1.b) and purge runs on demand (B.1.a, E)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from sqlalchemy import select
from sqlmodel import col

from lpr_common.audit_client import AuditClient
from lpr_common.context import ContextDep, require_roles
from lpr_common.db import SessionDep
from lpr_common.errors import NotFound, ServiceUnavailable
from lpr_recognition.retention import holds
from lpr_recognition.retention.config import RetentionConfig
from lpr_recognition.retention.job import RetentionJob, RunResult
from lpr_recognition.retention.models import RetentionRun
from lpr_recognition.retention.schemas import (
    LegalHoldCreate,
    LegalHoldList,
    LegalHoldPublic,
    LegalHoldRelease,
    RetentionRunList,
    RetentionRunPublic,
)

holds_router = APIRouter(prefix="/v1/legal-holds", tags=["legal holds"])
runs_router = APIRouter(prefix="/v1/retention/runs", tags=["retention"])

RUN_TRIGGERS = frozenset({"administrator"})
RUN_READERS = frozenset({"administrator", "auditor"})


def _audit(request: Request) -> AuditClient | None:
    audit: AuditClient | None = getattr(request.app.state, "audit", None)
    return audit


@holds_router.post("", status_code=201)
async def place_legal_hold(
    request: Request, body: LegalHoldCreate, context: ContextDep, session: SessionDep
) -> LegalHoldPublic:
    """Place a legal hold on reads for a case, with a case number and a reason."""
    job: RetentionJob | None = getattr(request.app.state, "retention", None)
    config = job.config if job is not None else RetentionConfig()
    return await holds.place(
        session=session,
        audit=_audit(request),
        context=context,
        body=body,
        lock_wait=holds.LockWait(config.hold_lock_timeout_s, config.hold_retry_after_s),
    )


@holds_router.get("")
async def list_legal_holds(
    context: ContextDep,
    session: SessionDep,
    status: Literal["active", "released"] | None = None,
    case_number: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> LegalHoldList:
    """List the legal holds of the caller's agency, newest first."""
    items = await holds.list_holds(
        session=session, context=context, status=status, case_number=case_number, limit=limit
    )
    return LegalHoldList(items=items)


@holds_router.get("/{hold_id}")
async def get_legal_hold(
    hold_id: UUID, context: ContextDep, session: SessionDep
) -> LegalHoldPublic:
    """Show a legal hold and the reads it keeps."""
    return await holds.get(session=session, context=context, hold_id=hold_id)


@holds_router.delete("/{hold_id}")
async def release_legal_hold(
    request: Request,
    hold_id: UUID,
    context: ContextDep,
    session: SessionDep,
    body: LegalHoldRelease | None = None,
    x_lpr_reason: Annotated[str | None, Header()] = None,
) -> LegalHoldPublic:
    """Release a legal hold, with the reason (body ``reason`` or header ``X-LPR-Reason``)."""
    reason = (body.reason if body is not None else None) or x_lpr_reason
    return await holds.release(
        session=session, audit=_audit(request), context=context, hold_id=hold_id, reason=reason
    )


def _run_public(
    run: RetentionRun, blobs_deleted: int | None = None, orphan_blobs_deleted: int | None = None
) -> RetentionRunPublic:
    return RetentionRunPublic(
        id=run.id,
        trigger=run.trigger,
        triggered_by=run.triggered_by,
        started_at=run.started_at,
        finished_at=run.finished_at,
        outcome=run.outcome,  # type: ignore[arg-type]
        detail=run.detail,
        periods=run.periods,
        receipts=run.receipts or [],
        first_seq=run.first_seq,
        last_seq=run.last_seq,
        receipts_queued=run.receipts_queued,
        blobs_deleted=blobs_deleted,
        orphan_blobs_deleted=orphan_blobs_deleted,
    )


@runs_router.post("", status_code=201)
async def run_retention(
    request: Request, context: ContextDep, session: SessionDep
) -> RetentionRunPublic:
    """Run the retention purge now and return its receipts."""
    require_roles(context, RUN_TRIGGERS, "running retention")
    job: RetentionJob | None = getattr(request.app.state, "retention", None)
    if job is None:
        raise ServiceUnavailable("retention job not configured")
    result: RunResult = await job.run(trigger="administrator", triggered_by=context.subject_id)
    run = await session.get(RetentionRun, result.run_id)
    if run is None:  # recorded on the job's own connection; always there once it returns
        raise ServiceUnavailable(f"retention run {result.run_id} not recorded")
    # A completed run purged and committed: it answers 201 even while audit-svc has not
    # recorded its receipts yet (``receipts_queued``); they are stored and resent.
    if result.outcome != "completed":
        raise ServiceUnavailable(
            f"retention run {result.outcome}: {result.detail}", headers={"Retry-After": "60"}
        )
    public = _run_public(run, result.blobs_deleted, result.orphan_blobs_deleted)
    # The run's own answer also says why its receipts are queued, when they are.
    return public.model_copy(update={"detail": result.detail})


@runs_router.get("")
async def list_retention_runs(
    context: ContextDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RetentionRunList:
    """List recent retention runs and their receipts, newest first."""
    require_roles(context, RUN_READERS, "retention runs")
    rows = await session.execute(
        select(RetentionRun).order_by(col(RetentionRun.started_at).desc()).limit(limit)
    )
    return RetentionRunList(items=[_run_public(run) for run in rows.scalars()])


@runs_router.get("/{run_id}")
async def get_retention_run(
    run_id: UUID, context: ContextDep, session: SessionDep
) -> RetentionRunPublic:
    """Show one retention run and its receipts."""
    require_roles(context, RUN_READERS, "retention runs")
    run = await session.get(RetentionRun, run_id)
    if run is None:
        raise NotFound(f"no retention run {run_id}")
    return _run_public(run)


routers: list[Any] = [holds_router, runs_router]
