"""Hot lists, their versions and entries, manual entries, shift checks and configuration."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from lpr_hotlist.db_types import json_column, timestamp_column, utcnow
from lpr_hotlist.settings import SCHEMA


class HotListSource(StrEnum):
    """Where a hot list comes from."""

    NCIC = "NCIC"
    NICB = "NICB"
    AMBER = "AMBER"
    DHS = "DHS"
    DMV = "DMV"
    LOCAL = "local"
    MANUAL = "manual"


MANUAL_SOURCES = frozenset({HotListSource.MANUAL})
"""Sources whose lists take entries typed in by users (C.6) rather than imports; every
other source (``local`` included: an agency's own records-system export) is imported."""


class HotList(SQLModel, table=True):
    """A hot list of one agency; its entries live in its current version."""

    __tablename__ = "hot_lists"
    __table_args__ = (UniqueConstraint("agency", "name"), {"schema": SCHEMA})

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    agency: str = Field(max_length=16, index=True)
    name: str = Field(max_length=120)
    source: str = Field(max_length=16)
    category: str = Field(max_length=64)
    priority: int = 50
    allow_one_edit: bool = False
    description: str | None = None
    current_version: int = 0
    current_version_id: UUID | None = None
    created_by: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())


class HotListVersion(SQLModel, table=True):
    """One version of a list: an import or a change of manual entries.

    ``seq`` is the index generation at which it was made, increasing across all lists, so
    ``GET /v1/hotlists/sync?since=`` can ask for what changed after a point.
    """

    __tablename__ = "hot_list_versions"
    __table_args__ = (UniqueConstraint("list_id", "number"), {"schema": SCHEMA})

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    list_id: UUID = Field(foreign_key=f"{SCHEMA}.hot_lists.id", index=True)
    number: int
    seq: int = Field(sa_column=Column(BigInteger, nullable=False, index=True))
    kind: str = Field(max_length=16, description="import or manual")
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    created_by: str = Field(max_length=128)
    created_by_agency: str = Field(max_length=16)
    file_name: str | None = Field(default=None, max_length=255)
    sha256: str | None = Field(default=None, max_length=64)
    format: str | None = Field(default=None, max_length=32)
    entry_count: int = 0
    added_count: int = 0
    removed_count: int = 0
    rejected_count: int = 0
    rejections: list[dict[str, Any]] | None = Field(default=None, sa_column=json_column())


class HotListEntry(SQLModel, table=True):
    """One entry of one version of a list."""

    __tablename__ = "hot_list_entries"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    version_id: UUID = Field(foreign_key=f"{SCHEMA}.hot_list_versions.id", index=True)
    list_id: UUID = Field(foreign_key=f"{SCHEMA}.hot_lists.id", index=True)
    plate: str | None = Field(default=None, max_length=10, index=True)
    state: str | None = Field(default=None, max_length=2)
    pattern: str | None = Field(default=None, max_length=32)
    list_code: str | None = Field(default=None, max_length=32)
    reason: str | None = None
    ncic_number: str | None = Field(default=None, max_length=16)
    case_number: str | None = Field(default=None, max_length=64)
    originating_agency: str | None = Field(default=None, max_length=16)
    plate_year: int | None = None
    vehicle_year: int | None = None
    vehicle_make: str | None = Field(default=None, max_length=32)
    vehicle_model: str | None = Field(default=None, max_length=32)
    vehicle_colour: str | None = Field(default=None, max_length=32)
    effective_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    expires_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    added_by: str = Field(max_length=128)
    manual_entry_id: UUID | None = None
    source_line: int | None = None
    annotations: dict[str, str] | None = Field(default=None, sa_column=json_column())


class ManualEntry(SQLModel, table=True):
    """A plate a user typed in (IACP C.6): reason and expiry always recorded with the user."""

    __tablename__ = "manual_entries"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    list_id: UUID = Field(foreign_key=f"{SCHEMA}.hot_lists.id", index=True)
    agency: str = Field(max_length=16)
    plate: str | None = Field(default=None, max_length=10)
    state: str | None = Field(default=None, max_length=2)
    pattern: str | None = Field(default=None, max_length=32)
    reason: str
    case_number: str | None = Field(default=None, max_length=64)
    ncic_number: str | None = Field(default=None, max_length=16)
    vehicle_year: int | None = None
    vehicle_make: str | None = Field(default=None, max_length=32)
    vehicle_model: str | None = Field(default=None, max_length=32)
    vehicle_colour: str | None = Field(default=None, max_length=32)
    effective_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    expires_at: datetime = Field(sa_column=timestamp_column())
    added_by: str = Field(max_length=128)
    added_by_name: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
    removed_at: datetime | None = Field(default=None, sa_column=timestamp_column(nullable=True))
    removed_by: str | None = Field(default=None, max_length=128)
    removal_reason: str | None = None


class ShiftCheck(SQLModel, table=True):
    """What a unit or user reported holding at shift start (IACP C.3), and whether stale."""

    __tablename__ = "shift_checks"
    __table_args__ = {"schema": SCHEMA}

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    agency: str = Field(max_length=16, index=True)
    user_id: str = Field(max_length=128, index=True)
    unit_id: str | None = Field(default=None, max_length=64, index=True)
    camera_id: str | None = Field(default=None, max_length=64, index=True)
    checked_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column(index=True))
    reported: dict[str, int] = Field(sa_column=json_column(nullable=False))
    stale: bool
    stale_lists: list[dict[str, Any]] = Field(sa_column=json_column(nullable=False))


class HotListConfig(SQLModel, table=True):
    """The service's administered settings (one row, id 1) and the index generation.

    ``generation`` goes up by one on every change that the match index depends on; bumping
    it takes the row lock, which also serialises concurrent imports.
    """

    __tablename__ = "config"
    __table_args__ = {"schema": SCHEMA}

    id: int = Field(default=1, primary_key=True)
    ocr_classes: str = Field(default="0ODQ,1ILT,2Z,5S,8B,6G", max_length=200)
    default_manual_expiry_days: int = 30
    open_alert_minutes: int = 60
    generation: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_by: str | None = Field(default=None, max_length=128)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=timestamp_column())
