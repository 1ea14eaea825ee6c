"""API shapes of the hot-list domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import SQLModel

from lpr_common.values import Int4, StorableDatetime
from lpr_hotlist.hotlists.models import HotListSource


class HotListBase(SQLModel):
    """Fields a client sets on a list."""

    name: str = Field(min_length=1, max_length=120)
    source: HotListSource
    category: str = Field(min_length=1, max_length=64, description="e.g. stolen vehicle")
    priority: int = Field(default=50, ge=0, le=100, description="0 is the highest")
    allow_one_edit: bool = Field(
        default=False, description="Also match reads one character away (weaker matches)"
    )
    description: str | None = None


class HotListCreate(HotListBase):
    """A new list."""


class HotListUpdate(SQLModel):
    """Changes to a list; unset fields stay as they are."""

    category: str | None = Field(default=None, min_length=1, max_length=64)
    priority: int | None = Field(default=None, ge=0, le=100)
    allow_one_edit: bool | None = None
    description: str | None = None


class HotListPublic(HotListBase):
    """A list as the API shows it."""

    id: UUID
    agency: str
    current_version: int
    current_version_id: UUID | None
    created_by: str
    created_at: datetime
    updated_at: datetime


class RejectionPublic(BaseModel):
    """A line an import refused."""

    line: int
    reason: str


class VersionPublic(BaseModel):
    """One version of a list and where it came from."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    list_id: UUID
    number: int
    seq: int
    kind: str
    created_at: datetime
    created_by: str
    created_by_agency: str
    file_name: str | None
    sha256: str | None
    format: str | None
    entry_count: int
    added_count: int
    removed_count: int
    rejected_count: int


class ImportReport(BaseModel):
    """What an import did."""

    list_id: UUID
    version: int
    version_id: UUID
    generation: int
    format: str
    file_name: str | None
    sha256: str
    entry_count: int
    added: int
    removed: int
    unchanged: int
    rejected: int
    rejections: list[RejectionPublic]


class EntryPublic(BaseModel):
    """One entry of a list version."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    list_id: UUID
    version_id: UUID
    plate: str | None
    state: str | None
    pattern: str | None
    list_code: str | None
    reason: str | None
    ncic_number: str | None
    case_number: str | None
    originating_agency: str | None
    vehicle_year: int | None
    vehicle_make: str | None
    vehicle_model: str | None
    vehicle_colour: str | None
    effective_at: datetime | None
    expires_at: datetime | None
    added_by: str
    manual_entry_id: UUID | None
    annotations: dict[str, str] | None


class EntryPage(BaseModel):
    """A page of entries."""

    list_id: UUID
    version: int
    total: int
    entries: list[EntryPublic]


class ManualEntryCreate(BaseModel):
    """A plate typed in by a user (IACP C.6): the reason is required."""

    plate: str | None = Field(default=None, description="Whole plate; or give a pattern")
    pattern: str | None = Field(default=None, description="Partial plate with * and ?")
    state: str | None = None
    reason: str = Field(description="Why this plate is wanted (required, IACP C.6)")
    case_number: str | None = Field(default=None, max_length=64)
    ncic_number: str | None = Field(default=None, max_length=16)
    vehicle_year: int | None = Field(default=None, ge=1900, le=2100)
    vehicle_make: str | None = Field(default=None, max_length=32)
    vehicle_model: str | None = Field(default=None, max_length=32)
    vehicle_colour: str | None = Field(default=None, max_length=32)
    effective_at: StorableDatetime | None = None
    expires_at: StorableDatetime | None = Field(
        default=None, description="Defaults to now + the administrator's default"
    )


class ManualEntryPublic(BaseModel):
    """A manual entry and who added it."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    list_id: UUID
    agency: str
    plate: str | None
    state: str | None
    pattern: str | None
    reason: str
    case_number: str | None
    expires_at: datetime
    effective_at: datetime | None
    added_by: str
    added_by_name: str | None
    created_at: datetime
    removed_at: datetime | None
    removed_by: str | None
    removal_reason: str | None
    version: int = 0


class ConfigPublic(BaseModel):
    """Administered settings of hot lists and alerts."""

    ocr_classes: list[str]
    default_manual_expiry_days: int
    open_alert_minutes: int
    generation: int
    updated_by: str | None
    updated_at: datetime


class ConfigUpdate(BaseModel):
    """Changes to the administered settings."""

    ocr_classes: list[str] | None = Field(
        default=None, description='Characters OCR confuses, e.g. ["0ODQ", "1ILT", "2Z"]'
    )
    default_manual_expiry_days: int | None = Field(default=None, ge=1, le=365)
    open_alert_minutes: int | None = Field(default=None, ge=1, le=60 * 24 * 30)


class ListDelta(BaseModel):
    """How to bring one list from the version a client holds to the current one."""

    list_id: UUID
    name: str
    source: str
    category: str
    reported_version: int | None
    current_version: int
    current: bool
    full: bool = Field(description="True when added holds the whole list (no usable base)")
    added: list[EntryPublic]
    removed: list[dict[str, Any]] = Field(description="(plate, state, pattern) of removed entries")


class SyncAnswer(BaseModel):
    """Lists changed since a cursor, each with its delta."""

    cursor: int = Field(description="Pass as since= next time")
    lists: list[ListDelta]


class ShiftCheckCreate(BaseModel):
    """What a unit or user holds at shift start (IACP C.3)."""

    unit_id: str | None = Field(default=None, max_length=64)
    camera_id: str | None = Field(default=None, max_length=64)
    versions: dict[UUID, Int4] = Field(description="list id -> version number held")


class ShiftCheckPublic(BaseModel):
    """Whether the lists held are current, with a delta for each that is not."""

    id: UUID
    agency: str
    user_id: str
    unit_id: str | None
    camera_id: str | None
    checked_at: datetime
    current: bool
    stale_lists: list[dict[str, Any]]
    lists: list[ListDelta]
    cursor: int


class ShiftCheckRecord(BaseModel):
    """A stored shift-start check."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    agency: str
    user_id: str
    unit_id: str | None
    camera_id: str | None
    checked_at: datetime
    reported: dict[str, int]
    stale: bool
    stale_lists: list[dict[str, Any]]
