"""Tables of the audit schema. Every one is append-only (see migration ``audit_0002``).

A chain table stores, per record, ``seq``/``prev_hash``/``hash`` and ``fields`` (the exact
JSON the hash covers) plus columns copied out of ``fields`` so auditors can query by index.
The copied columns are not hashed; verification compares them with ``fields``
(:func:`lpr_audit.ledger.repository.verify_stored`), so a changed copy is reported.
Each chain table is unique on its sender's id for a record, ``fields ->> 'event_id'`` or
``fields ->> 'record_id'`` (an expression index, migration ``audit_0003``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, DateTime, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from lpr_audit.settings import SCHEMA


def _seq() -> Any:
    return Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


def _json() -> Any:
    return Field(sa_column=Column(JSONB, nullable=False))


def _moment(*, index: bool = True) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False, index=index))


def _text(*, index: bool = False, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(Text, nullable=nullable, index=index))


class AccessEvent(SQLModel, table=True):
    """One record of the access log chain (an :class:`lpr_common.audit_client.AuditEvent`)."""

    __tablename__ = "access_events"
    __table_args__ = {"schema": SCHEMA}

    seq: int = _seq()
    prev_hash: str = Field(sa_column=Column(Text, nullable=False))
    hash: str = Field(sa_column=Column(Text, nullable=False))
    fields: dict[str, Any] = _json()
    occurred_at: datetime = _moment()
    recorded_at: datetime = _moment()
    event_type: str = Field(sa_column=Column(Text, nullable=False))
    outcome: str = Field(sa_column=Column(Text, nullable=False))
    subject_id: str | None = _text()
    agency: str | None = _text()
    purpose: str | None = _text()
    case_number: str | None = _text()
    plate: str | None = _text()
    resource: str | None = _text()
    action: str | None = _text()


class DisseminationEntry(SQLModel, table=True):
    """One record of the dissemination log chain (IACP D.1)."""

    __tablename__ = "dissemination_records"
    __table_args__ = {"schema": SCHEMA}

    seq: int = _seq()
    prev_hash: str = Field(sa_column=Column(Text, nullable=False))
    hash: str = Field(sa_column=Column(Text, nullable=False))
    fields: dict[str, Any] = _json()
    occurred_at: datetime = _moment()
    recorded_at: datetime = _moment()
    recipient_agency: str = Field(sa_column=Column(Text, nullable=False, index=True))
    released_by: str = Field(sa_column=Column(Text, nullable=False))
    released_by_agency: str = Field(sa_column=Column(Text, nullable=False))
    mou_id: str | None = _text()
    purpose: str | None = _text()
    case_number: str | None = _text()
    data_class: str = Field(sa_column=Column(Text, nullable=False))
    record_count: int = Field(sa_column=Column(Integer, nullable=False))


class CheckpointRecord(SQLModel, table=True):
    """A signed checkpoint of one chain (``access`` or ``dissemination``)."""

    __tablename__ = "checkpoints"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    chain: str = Field(sa_column=Column(Text, nullable=False))
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    hash: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _moment(index=False)
    signature: str = Field(sa_column=Column(Text, nullable=False))
    key_id: str = Field(sa_column=Column(Text, nullable=False))


class RetentionSettingChange(SQLModel, table=True):
    """One change of a retention period; the newest row per class is in force."""

    __tablename__ = "retention_setting_changes"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    retention_class: str = Field(sa_column=Column(Text, nullable=False))
    period_minutes: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    changed_by: str = Field(sa_column=Column(Text, nullable=False))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    changed_at: datetime = _moment()
