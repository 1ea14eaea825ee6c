"""Sending the gateway's audit events: fail closed, or durably queued for camera reads.

Most events are awaited: the request waits until audit-svc says they are durable. The
one exception is the ``access.result`` of a forwarded read (how many records, which ids),
which :class:`ResultLog` appends just after the answer went out; the access itself
(who, why, which query) was made durable before anything was released. If audit-svc
cannot take a result event it goes to the durable outbox like a camera read's.
"""

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
RESULT_BATCH = 200


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


async def queue(factory: async_sessionmaker[AsyncSession], *events: AuditEvent) -> None:
    """Store events in the outbox in one transaction of their own (kept whatever the request does)."""
    async with factory() as session:
        session.add_all(AuditOutbox(event=event.model_dump(mode="json")) for event in events)
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


class ResultLog:
    """Appends ``access.result`` events off the request path, in batches, in order."""

    def __init__(self, app: FastAPI, *, linger_s: float = 0.0) -> None:
        self._app = app
        self._linger_s = linger_s
        self._queue: asyncio.Queue[AuditEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the sending task (again, if it ended)."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="gateway-result-log")

    def post(self, event: AuditEvent) -> None:
        """Queue ``event``; it reaches audit-svc (or the durable outbox) shortly."""
        self._queue.put_nowait(event)
        self.start()

    async def drain(self) -> None:
        """Return once every event posted so far was sent or queued durably."""
        await self._queue.join()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (up to ``timeout_s``), then stop."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.drain(), timeout_s)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._queue.empty():
            _logger.error("%d access.result events not sent at shutdown", self._queue.qsize())

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            if self._linger_s > 0:
                await asyncio.sleep(self._linger_s)
            while len(batch) < RESULT_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._send(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _send(self, events: list[AuditEvent]) -> None:
        audit: AuditClient = self._app.state.audit
        try:
            await audit.record(*events)
            return
        except ServiceUnavailable:
            pass
        except Exception:  # never lose an event to an unexpected failure either
            _logger.exception("access.result events could not be sent; queueing them")
        try:
            await queue(self._app.state.sessionmaker, *events)
        except Exception:
            _logger.exception("%d access.result events lost", len(events))


@asynccontextmanager
async def result_log(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: the sender of ``access.result`` events (``app.state.result_log``)."""
    settings: Settings = app.state.settings
    log = ResultLog(app, linger_s=settings.gateway_result_linger_s)
    app.state.result_log = log
    log.start()
    try:
        yield
    finally:
        await log.stop()


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
