"""Sending the gateway's audit events: fail closed, or durably queued for camera reads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from lpr_common.audit_client import AuditClient, AuditEvent
from lpr_common.errors import ServiceUnavailable
from lpr_gateway.access.models import AuditOutbox
from lpr_gateway.cameras.models import CameraSignature
from lpr_gateway.columns import utcnow
from lpr_gateway.settings import Settings

_logger = logging.getLogger(__name__)

COMPONENT = "gateway"
OUTBOX_BATCH = 200


async def record(app: FastAPI, event: AuditEvent, *, durable_fallback: bool = False) -> str:
    """Record one event in the audit log.

    Returns ``"recorded"``, or ``"queued"`` when audit-svc could not take it and
    ``durable_fallback`` allowed queueing it in the outbox (camera read ingestion only).

    Raises:
        ServiceUnavailable: audit-svc cannot take the event and it may not be queued:
            the caller's request fails closed (503).
    """
    audit: AuditClient = app.state.audit
    try:
        await audit.record(event)
        return "recorded"
    except ServiceUnavailable:
        if not durable_fallback:
            raise
    await queue(app.state.sessionmaker, event)
    return "queued"


async def queue(factory: async_sessionmaker[AsyncSession], event: AuditEvent) -> None:
    """Store an event in the outbox in its own transaction (kept whatever the request does)."""
    async with factory() as session:
        session.add(AuditOutbox(event=event.model_dump(mode="json")))
        await session.commit()


async def flush_outbox(app: FastAPI) -> int:
    """Send queued events in order; return how many audit-svc took (0 if it is still down)."""
    factory: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    audit: AuditClient = app.state.audit
    sent = 0
    while True:
        async with factory() as session:
            # SKIP LOCKED: replicas flushing at once send disjoint batches, never twice.
            rows = (
                await session.scalars(
                    select(AuditOutbox)
                    .order_by(col(AuditOutbox.id))
                    .limit(OUTBOX_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return sent
            events = [AuditEvent.model_validate(row.event) for row in rows]
            try:
                await audit.record(*events)
            except ServiceUnavailable:
                await session.rollback()
                return sent
            await session.execute(
                delete(AuditOutbox).where(col(AuditOutbox.id).in_([row.id for row in rows]))
            )
            await session.commit()
            sent += len(rows)


async def _prune_signatures(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    cutoff = utcnow() - timedelta(seconds=2 * settings.gateway_signature_max_age_s)
    factory: async_sessionmaker[AsyncSession] = app.state.sessionmaker
    async with factory() as session:
        await session.execute(delete(CameraSignature).where(col(CameraSignature.seen_at) < cutoff))
        await session.commit()


@asynccontextmanager
async def outbox_flusher(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: flush the outbox every few seconds while the app runs."""
    settings: Settings = app.state.settings

    async def loop() -> None:
        while True:
            try:
                await flush_outbox(app)
                await _prune_signatures(app)
            except Exception:  # keep flushing whatever one round hit (database restart)
                _logger.exception("audit outbox flush failed")
            await asyncio.sleep(settings.gateway_outbox_flush_s)

    task = asyncio.create_task(loop(), name="gateway-audit-outbox")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
