"""Tables of retention (schema ``recognition``; DDL in migrations recognition_0003, _0006)."""

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from lpr_recognition.settings import SCHEMA


def _timestamp(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


class LegalHold(SQLModel, table=True):
    """Reads kept for a case until an administrator releases them with a reason (B.1.b)."""

    __tablename__ = "legal_holds"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    agency: str
    case_number: str
    reason: str
    placed_by: str
    placed_by_name: str | None = None
    placed_at: datetime = Field(sa_type=DateTime(timezone=True))
    plate: str | None = None
    range_start: datetime | None = _timestamp()
    range_end: datetime | None = _timestamp()
    released_at: datetime | None = _timestamp()
    released_by: str | None = None
    release_reason: str | None = None


class LegalHoldRead(SQLModel, table=True):
    """One read covered by a hold."""

    __tablename__ = "legal_hold_reads"
    __table_args__ = {"schema": SCHEMA}

    hold_id: UUID = Field(primary_key=True)
    read_id: UUID = Field(primary_key=True)
    captured_at: datetime = Field(sa_type=DateTime(timezone=True))


class RetentionRun(SQLModel, table=True):
    """One run of the purge job and its receipts to the audit log.

    ``receipts_queued``: the purge committed with its receipts, and audit-svc has not
    recorded them yet (they are resent until it has; ``first_seq``/``last_seq`` then).
    """

    __tablename__ = "retention_runs"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(primary_key=True)
    trigger: str
    triggered_by: str | None = None
    started_at: datetime = Field(sa_type=DateTime(timezone=True))
    finished_at: datetime | None = _timestamp()
    outcome: str
    detail: str | None = None
    periods: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    receipts: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSONB))
    first_seq: int | None = Field(default=None, sa_column=Column(BigInteger))
    last_seq: int | None = Field(default=None, sa_column=Column(BigInteger))
    receipts_queued: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
