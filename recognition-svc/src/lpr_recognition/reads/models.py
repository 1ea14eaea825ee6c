"""Tables of the reads domain (schema ``recognition``; DDL in migration recognition_0002)."""

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, BigInteger, Column, DateTime, Identity, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from lpr_recognition.settings import SCHEMA

# Both partitioned tables are split by day on the capture time (see reads.partitions).
PARTITIONED = {"schema": SCHEMA, "postgresql_partition_by": "RANGE (captured_at)"}


class ReadStatus(StrEnum):
    """Where a read is on its way: stored, plates read, handed to hot-list matching."""

    pending = "pending"
    recognized = "recognized"
    matched = "matched"


def _timestamp(*, nullable: bool = True, primary_key: bool = False) -> Any:
    return Field(
        default=None,
        sa_type=DateTime(timezone=True),
        nullable=nullable,
        primary_key=primary_key,
    )


class Read(SQLModel, table=True):
    """One camera read: when and where a camera saw a vehicle, and its image."""

    __tablename__ = "reads"
    __table_args__ = PARTITIONED

    id: UUID = Field(primary_key=True)
    captured_at: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)
    received_at: datetime = Field(sa_type=DateTime(timezone=True))
    camera_id: str
    camera_read_id: str
    agency: str
    deployment_id: str | None = None
    unit_id: str | None = None
    latitude: float
    longitude: float
    heading: float | None = None
    speed: float | None = None
    lane: int | None = None
    edge_plate: str | None = None
    edge_plate_confidence: float | None = None
    edge_plate_state: str | None = None
    image_sha256: str | None = None
    blob_key: str | None = None
    image_content_type: str | None = None
    image_width: int | None = None
    image_height: int | None = None
    image_size: int | None = None
    status: str = ReadStatus.pending.value
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=DateTime(timezone=True))
    last_error: str | None = None
    preserved: bool = False
    recognized_at: datetime | None = _timestamp()
    matched_at: datetime | None = _timestamp()


class Plate(SQLModel, table=True):
    """One plate found on a read, by recognition or by the camera's own OCR."""

    __tablename__ = "plates"
    __table_args__ = PARTITIONED

    read_id: UUID = Field(primary_key=True)
    captured_at: datetime = Field(sa_type=DateTime(timezone=True), primary_key=True)
    plate_index: int = Field(primary_key=True)
    text: str
    normalized_text: str
    confidence: float
    detection_confidence: float | None = None
    box: list[int] | None = Field(default=None, sa_column=Column(ARRAY(Integer)))
    region: str | None = None
    state: str | None = None
    source: str
    candidates: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False)
    )


class ReadKey(SQLModel, table=True):
    """The camera's own read id, mapped to our read: what makes posting a read idempotent."""

    __tablename__ = "read_keys"
    __table_args__ = {"schema": SCHEMA}

    camera_id: str = Field(primary_key=True)
    camera_read_id: str = Field(primary_key=True)
    read_id: UUID
    captured_at: datetime = Field(sa_type=DateTime(timezone=True))
    content_sha256: str
    content: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = _timestamp()


class OutboxKind(StrEnum):
    """What an outbox message is for."""

    match = "match"
    audit = "audit"


class OutboxMessage(SQLModel, table=True):
    """A message to another service, written in the same transaction as the change it reports."""

    __tablename__ = "outbox"
    __table_args__ = {"schema": SCHEMA}

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True)
    )
    kind: str = Field(sa_type=Text)
    read_id: UUID | None = None
    captured_at: datetime | None = _timestamp()
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime | None = _timestamp()
    attempts: int = 0
    next_attempt_at: datetime | None = _timestamp()
    last_error: str | None = None
