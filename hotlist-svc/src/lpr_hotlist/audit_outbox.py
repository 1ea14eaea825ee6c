"""Audit events of committed changes: written with the change, sent once it has committed.

The audit event of a raised alert or of an alert step must be true: it may reach the
access log only once the alert or step has committed. It is therefore stored in
``hotlist.audit_outbox`` in the change's own transaction, sent to audit-svc just after the
commit, and deleted once audit-svc has it. Should audit-svc be down at that moment (or the
process stop), the row is still there and the flusher sends it later, as the gateway and
recognition-svc do with their outboxes.
audit-svc deduplicates on the event id, so an event sent twice is recorded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import BigInteger, Column, Identity, delete, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from lpr_common.audit_client import AuditClient, AuditEvent, AuditRefused
from lpr_common.errors import ServiceUnavailable
from lpr_hotlist.db_types import timestamp_column, utcnow
from lpr_hotlist.settings import SCHEMA, Settings

_logger = logging.getLogger(__name__)

OUTBOX_BATCH = 200


class AuditOutbox(SQLModel, table=True):
    """An audit event of a committed change that audit-svc has not confirmed yet."""

    __tablename__ = "audit_outbox"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=False), primary_key=True)
    )
    event: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


async def stage(session: AsyncSession, *events: AuditEvent) -> list[int]:
    """Store events in the current transaction; they exist exactly when it commits."""
    rows = [AuditOutbox(event=event.model_dump(mode="json")) for event in events]
    session.add_all(rows)
    await session.flush()
    return [row.id for row in rows if row.id is not None]


async def send_staged(
    session: AsyncSession, audit: AuditClient | None, ids: Sequence[int], *events: AuditEvent
) -> bool:
    """After the commit: send staged events and drop their rows; False if they stay queued.

    Never raises: the change has committed, so its request cannot fail closed any more (an
    error here would tell the caller that a step which happened did not). Whatever goes
    wrong leaves the rows for the flusher, and audit-svc takes a resent event once.
    """
    if audit is None:
        _logger.error("audit log is not configured; %d events stay in the outbox", len(events))
        return False
    try:
        await audit.record(*events)
    except ServiceUnavailable as error:
        _logger.warning("audit log unavailable (%s); %d events queued", error, len(events))
        return False
    except Exception:
        _logger.exception("audit events could not be sent; %d events queued", len(events))
        return False
    try:
        await session.execute(delete(AuditOutbox).where(col(AuditOutbox.id).in_(list(ids))))
        await session.commit()
    except Exception:
        _logger.exception("sent audit events stay queued; the flusher resends them")
        await session.rollback()
    return True


def _refused_for_good(error: ServiceUnavailable) -> bool:
    """Whether audit-svc refused the events themselves (a 4xx): a resend is refused too."""
    return isinstance(error, AuditRefused) and error.permanent


async def flush(
    factory: Callable[[], AbstractAsyncContextManager[AsyncSession]],
    audit: AuditClient,
    *,
    min_age: timedelta = timedelta(0),
) -> int:
    """Send queued events in order; return how many audit-svc took (0 while it is down).

    An event audit-svc refuses for good (4xx) stays queued, logged, and is tried again on
    the next call; it does not hold back the events queued after it.

    Args:
        min_age: Leave younger rows alone: their own request is most likely sending them.
    """
    sent = 0
    refused: list[int] = []
    while True:
        async with factory() as session:
            # SKIP LOCKED: replicas flushing at once send disjoint batches.
            query = select(AuditOutbox).where(col(AuditOutbox.created_at) <= utcnow() - min_age)
            if refused:
                query = query.where(col(AuditOutbox.id).not_in(refused))
            rows = (
                await session.scalars(
                    query.order_by(col(AuditOutbox.id))
                    .limit(OUTBOX_BATCH)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return sent
            down = False
            try:
                await audit.record(*(AuditEvent.model_validate(row.event) for row in rows))
                done = list(rows)
            except ServiceUnavailable as error:
                if not _refused_for_good(error):
                    await session.rollback()
                    return sent
                # One at a time: the refused ones stay queued, the others are sent in order.
                done = []
                for row in rows:
                    try:
                        await audit.record(AuditEvent.model_validate(row.event))
                    except ServiceUnavailable as one:
                        if not _refused_for_good(one):
                            down = True
                            break
                        _logger.error(
                            "audit log refused queued event %s (%s); it stays queued",
                            row.event.get("event_id"),
                            one,
                        )
                        refused.append(row.id)  # type: ignore[arg-type]
                        continue
                    done.append(row)
                # Not one taken: audit-svc refuses whatever is sent (its auth, say), not
                # these events; stop rather than walk the whole outbox one by one.
                down = down or not done
            if done:
                await session.execute(
                    delete(AuditOutbox).where(col(AuditOutbox.id).in_([row.id for row in done]))
                )
            await session.commit()
            sent += len(done)
            if down:
                return sent


def audit_outbox_lifespan(settings: Settings) -> Callable[[FastAPI], Any]:
    """Lifespan hook: flush the audit outbox every few seconds while the app runs."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(settings.hotlist_audit_outbox_flush_s)
                audit: AuditClient | None = getattr(app.state, "audit", None)
                if audit is None:
                    continue
                try:
                    await flush(
                        app.state.sessionmaker,
                        audit,
                        min_age=timedelta(seconds=settings.hotlist_audit_outbox_flush_s),
                    )
                except Exception:  # keep flushing whatever one round hit (database restart)
                    _logger.exception("audit outbox flush failed")

        task = asyncio.get_running_loop().create_task(loop(), name="hotlist-audit-outbox")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return hook
