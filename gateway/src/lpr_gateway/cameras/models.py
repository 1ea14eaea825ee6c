"""Cameras, deployments and equipment checks (IACP B.1.e, B.2, B.3, C.7)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID, uuid4

from pydantic import field_validator
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel

from lpr_common.values import Int8, StorableDatetime
from lpr_gateway.columns import not_null, timestamp_column, utcnow
from lpr_gateway.settings import SCHEMA


class CameraKind(StrEnum):
    """IACP definitions: fixed (pole, bridge), mobile (patrol vehicle), portable (trailer)."""

    FIXED = "fixed"
    MOBILE = "mobile"
    PORTABLE = "portable"


class DeploymentKind(StrEnum):
    """Where the cameras of a deployment are: a place or a vehicle."""

    LOCATION = "location"
    VEHICLE = "vehicle"


class DeploymentStatus(StrEnum):
    """Approval state of a deployment (special details start pending, C.7)."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("must carry a timezone")
    return value


class DeploymentCreate(SQLModel):
    """A new deployment; a special detail waits for an administrator's approval."""

    name: str = Field(min_length=3, max_length=200)
    kind: DeploymentKind
    location: str | None = Field(default=None, max_length=300)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    vehicle: str | None = Field(default=None, max_length=100)
    purpose: str = Field(min_length=3, max_length=300)
    starts_at: StorableDatetime
    ends_at: StorableDatetime | None = None
    special_detail: bool = False

    @field_validator("starts_at", "ends_at")
    @classmethod
    def _timezone(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class Deployment(SQLModel, table=True):
    """A deployment of cameras with its purpose, period and results (B.1.e)."""

    __tablename__ = "deployments"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    agency: str = Field(max_length=20)
    name: str
    kind: str
    location: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    vehicle: str | None = None
    purpose: str
    starts_at: datetime = Field(sa_column=timestamp_column())
    ends_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    special_detail: bool = False
    status: str = DeploymentStatus.PENDING.value
    decided_by: UUID | None = None
    decided_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    # bigint: a deployment's results grow for as long as it runs (integer overflowed
    # after about two billion reads).
    reads_count: int = Field(default=0, sa_type=BigInteger)
    hits_count: int = Field(default=0, sa_type=BigInteger)
    dispositions_count: int = Field(default=0, sa_type=BigInteger)
    created_by: UUID | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )

    def accepts_reads(self, now: datetime) -> bool:
        """True when approved and ``now`` is inside the deployment's period."""
        return (
            self.status == DeploymentStatus.APPROVED.value
            and self.starts_at <= now
            and (self.ends_at is None or now < self.ends_at)
        )


class DeploymentPublic(SQLModel):
    """A deployment as the API shows it."""

    id: UUID
    agency: str
    name: str
    kind: str
    location: str | None
    latitude: float | None
    longitude: float | None
    vehicle: str | None
    purpose: str
    starts_at: datetime
    ends_at: datetime | None
    special_detail: bool
    status: str
    decided_by: UUID | None
    decided_at: datetime | None
    reads_count: int
    hits_count: int
    dispositions_count: int


class DeploymentDecision(SQLModel):
    """An administrator's decision on a deployment (C.7)."""

    approve: bool


ResultCount = Annotated[Int8, Field(ge=0)]
"""A number of results to add: never negative, within ``bigint``.

(``Field(ge=0)`` as the default of an ``Int8`` field would lose to ``Int8``'s own bound.)
"""


class DeploymentResults(SQLModel):
    """Counts to add to a deployment's results (from the services, internal)."""

    reads: ResultCount = 0
    hits: ResultCount = 0
    dispositions: ResultCount = 0


class CameraCreate(SQLModel):
    """A new camera; its API key is shown once in the answer."""

    name: str = Field(min_length=2, max_length=200)
    kind: CameraKind
    deployment_id: UUID | None = None
    require_signature: bool = False
    serial_number: str | None = Field(default=None, max_length=100)


class CameraUpdate(SQLModel):
    """Changes to a camera; a null ``deployment_id`` takes it off its deployment."""

    name: str | None = Field(default=None, min_length=2, max_length=200)
    deployment_id: UUID | None = None
    require_signature: bool | None = None

    _not_null = field_validator("name", "require_signature")(not_null)


class Camera(SQLModel, table=True):
    """A camera (reader) and its current state."""

    __tablename__ = "cameras"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    agency: str = Field(max_length=20)
    name: str
    kind: str
    serial_number: str | None = None
    deployment_id: UUID | None = Field(default=None, foreign_key=f"{SCHEMA}.deployments.id")
    in_service: bool = True
    out_of_service_check_id: UUID | None = None
    require_signature: bool = False
    key_hash: str = Field(unique=True, index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=timestamp_column(server_now=True)
    )


class CameraPublic(SQLModel):
    """A camera as the API shows it (never the key)."""

    id: UUID
    agency: str
    name: str
    kind: str
    serial_number: str | None
    deployment_id: UUID | None
    in_service: bool
    out_of_service_check_id: UUID | None
    require_signature: bool


class CameraRegistered(CameraPublic):
    """A new camera: the API key is shown this once and stored only hashed."""

    api_key: str


class EquipmentCheckCreate(SQLModel):
    """An equipment check of a camera (B.2)."""

    camera_id: UUID
    functional: bool
    alignment_ok: bool
    notes: str | None = Field(default=None, max_length=2000)
    checked_at: StorableDatetime | None = None

    @field_validator("checked_at")
    @classmethod
    def _timezone(cls, value: datetime | None) -> datetime | None:
        return _aware(value)


class EquipmentCheck(SQLModel, table=True):
    """An equipment check record."""

    __tablename__ = "equipment_checks"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    camera_id: UUID = Field(foreign_key=f"{SCHEMA}.cameras.id", index=True)
    checked_by: UUID
    checked_by_repairer: bool = False
    checked_at: datetime = Field(sa_column=timestamp_column())
    functional: bool
    alignment_ok: bool
    passed: bool
    notes: str | None = None


class EquipmentCheckPublic(SQLModel):
    """An equipment check as the API shows it, with the camera's resulting state."""

    id: UUID
    camera_id: UUID
    checked_by: UUID
    checked_by_repairer: bool
    checked_at: datetime
    functional: bool
    alignment_ok: bool
    passed: bool
    notes: str | None
    camera_in_service: bool | None = None


class CameraSignature(SQLModel, table=True):
    """HMAC signatures seen recently, to refuse replays across every replica."""

    __tablename__ = "camera_signatures"
    __table_args__ = {"schema": SCHEMA}

    signature: str = Field(primary_key=True, max_length=64)
    camera_id: UUID
    seen_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column(server_now=True))
