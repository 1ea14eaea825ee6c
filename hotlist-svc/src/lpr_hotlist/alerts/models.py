"""Alerts, their event history (also the stream's source), disposition codes, matched reads."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, Identity, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from lpr_hotlist.db_types import json_column, timestamp_column, utcnow
from lpr_hotlist.settings import SCHEMA


class AlertStatus(StrEnum):
    """Where an alert is in the officer's workflow (IACP C.4, C.5)."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    VERIFIED = "verified"
    MISREAD = "misread"
    STATUS_CHECKED = "status_checked"
    DISPOSITIONED = "dispositioned"


class Alert(SQLModel, table=True):
    """A hit: one read matched one hot-list entry."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("read_id", "entry_id"),
        # One alert per vehicle pass and entry (migration hotlist_0003).
        Index(
            "uq_alerts_track_id_entry_id",
            "track_id",
            "entry_id",
            unique=True,
            postgresql_where=text("track_id IS NOT NULL"),
        ),
        {"schema": SCHEMA},
    )

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    agency: str = Field(max_length=16, index=True)
    status: str = Field(default=AlertStatus.NEW.value, max_length=16, index=True)
    rank: int = 1
    rule: str = Field(max_length=16)
    explanation: str
    # The read.
    read_id: UUID = Field(index=True)
    plate_index: int = 0
    read_plate: str = Field(max_length=10)
    read_state: str | None = Field(default=None, max_length=2)
    read_confidence: float | None = None
    read_box: list[float] | None = Field(default=None, sa_column=json_column())
    camera_id: str | None = Field(default=None, max_length=64)
    deployment_id: str | None = Field(default=None, max_length=64)
    unit_id: str | None = Field(default=None, max_length=64, index=True)
    captured_at: datetime = Field(sa_column=timestamp_column())
    latitude: float | None = None
    longitude: float | None = None
    heading: float | None = None
    image_available: bool = False
    # Multi-frame fusion: the vehicle pass (recognition's track) the read is a frame of,
    # the plate fused over its frames as last sent, and every read of the pass that
    # matched this entry (``read_id`` is the one that raised the alert).
    track_id: UUID | None = None
    fused_plate: str | None = Field(default=None, max_length=10)
    member_read_ids: list[str] = Field(default_factory=list, sa_column=json_column(nullable=False))
    # The entry, as it was when the alert was raised.
    entry_id: UUID
    list_id: UUID = Field(index=True)
    version_id: UUID | None = None
    entry: dict[str, Any] = Field(sa_column=json_column(nullable=False))
    # Stale hot lists at shift start (IACP C.3).
    stale_hotlists: bool = False
    stale_reason: str | None = None
    # The workflow.
    acknowledged_by: str | None = Field(default=None, max_length=128)
    acknowledged_at: datetime | None = Field(
        default=None, sa_column=timestamp_column(nullable=True)
    )
    verification: dict[str, Any] | None = Field(default=None, sa_column=json_column())
    status_check: dict[str, Any] | None = Field(default=None, sa_column=json_column())
    misread: dict[str, Any] | None = Field(default=None, sa_column=json_column())
    disposition_code: str | None = Field(default=None, max_length=32)
    disposition_note: str | None = None
    dispositioned_by: str | None = Field(default=None, max_length=128)
    dispositioned_at: datetime | None = Field(
        default=None, sa_column=timestamp_column(nullable=True)
    )
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column(index=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class AlertEvent(SQLModel, table=True):
    """One thing that happened to an alert; ``seq`` is the stream's event id.

    Events are inserted under a transaction-scoped advisory lock, so ``seq`` order is commit
    order and a client resuming after ``Last-Event-ID`` cannot skip one.
    """

    __tablename__ = "alert_events"
    __table_args__ = {"schema": SCHEMA}

    seq: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(always=False), primary_key=True),
    )
    alert_id: UUID = Field(foreign_key=f"{SCHEMA}.alerts.id", index=True)
    agency: str = Field(max_length=16, index=True)
    event_type: str = Field(max_length=32)
    from_status: str | None = Field(default=None, max_length=16)
    to_status: str = Field(max_length=16)
    subject_id: str = Field(max_length=128)
    subject_name: str | None = Field(default=None, max_length=128)
    occurred_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    details: dict[str, Any] | None = Field(default=None, sa_column=json_column())


class DispositionCode(SQLModel, table=True):
    """One entry of the administered list of dispositions (IACP C.5)."""

    __tablename__ = "disposition_codes"
    __table_args__ = {"schema": SCHEMA}

    code: str = Field(primary_key=True, max_length=32)
    label: str = Field(max_length=120)
    requires_note: bool = False
    active: bool = True
    updated_by: str | None = Field(default=None, max_length=128)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class MatchedRead(SQLModel, table=True):
    """A read already matched: makes ``POST /internal/v1/matches`` idempotent by read id."""

    __tablename__ = "matched_reads"
    __table_args__ = {"schema": SCHEMA}

    read_id: UUID = Field(primary_key=True)
    agency: str = Field(max_length=16)
    alert_count: int = 0
    matched_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
