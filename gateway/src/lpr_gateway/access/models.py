"""The audit outbox: camera-ingestion events waiting for audit-svc."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from lpr_gateway.columns import timestamp_column, utcnow
from lpr_gateway.settings import SCHEMA


class AuditOutbox(SQLModel, table=True):
    """An audit event that audit-svc could not take yet; flushed in order when it can."""

    __tablename__ = "audit_outbox"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(default=None, primary_key=True)
    event: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    attempts: int = 0
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )
