"""API shapes of alerts, the officer's workflow, dispositions and the matches handoff."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, FiniteFloat

from lpr_common.errors import FieldError
from lpr_common.values import Int4, StorableDatetime


class PlateCandidate(BaseModel):
    """Another reading of a plate the recogniser considered."""

    text: str
    confidence: float | None = None


class ReadPlate(BaseModel):
    """One plate found in a read."""

    index: Int4 = 0
    text: str
    confidence: float | None = None
    state: str | None = None
    region: str | None = None
    # Stored as JSON, which has no NaN or infinity.
    box: list[FiniteFloat] | None = None
    candidates: list[PlateCandidate] = Field(default_factory=list)
    track_id: UUID | None = Field(
        default=None,
        description="The vehicle pass this frame is part of (multi-frame fusion); one alert "
        "per pass and entry, later frames attach to it",
    )
    track_read_ids: list[UUID] = Field(
        default_factory=list, max_length=1000, description="The reads of the pass so far"
    )


class MatchRequest(BaseModel):
    """recognition -> hotlist handoff (docs/internal-api.md)."""

    read_id: UUID
    agency: str = Field(max_length=16)
    camera_id: str | None = Field(default=None, max_length=64)
    deployment_id: str | None = Field(default=None, max_length=64)
    unit_id: str | None = Field(default=None, max_length=64)
    captured_at: StorableDatetime
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    heading: float | None = None
    image_available: bool = False
    plates: list[ReadPlate] = Field(default_factory=list)


class MatchedAlert(BaseModel):
    """One alert a read raised."""

    alert_id: UUID
    entry_id: UUID
    list_id: UUID
    rule: str
    explanation: str
    rank: int
    plate_index: int
    list_name: str | None = None
    list_category: str | None = None
    stale_hotlists: bool = False
    track_id: UUID | None = None


class MatchAnswer(BaseModel):
    """The alerts of a read (the same on every repeat of the read id)."""

    read_id: UUID
    alerts: list[MatchedAlert]
    ignored: list[FieldError] = Field(
        default_factory=list, description="Fields not used, e.g. a state that is not a code"
    )


class AlertPublic(BaseModel):
    """An alert: the read, the entry it hit, and where the officer's workflow is."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    agency: str
    status: str
    rank: int
    rule: str
    explanation: str
    read_id: UUID
    plate_index: int
    read_plate: str
    read_state: str | None
    read_confidence: float | None
    read_box: list[float] | None
    camera_id: str | None
    deployment_id: str | None
    unit_id: str | None
    captured_at: datetime
    latitude: float | None
    longitude: float | None
    heading: float | None
    image_available: bool
    image_url: str | None = None
    crop_url: str | None = None
    track_id: UUID | None = Field(default=None, description="The vehicle pass (fused frames)")
    fused_plate: str | None = Field(default=None, description="The plate fused over its frames")
    member_read_ids: list[UUID] = Field(
        default_factory=list, description="Every read of the pass that matched the entry"
    )
    entry_id: UUID
    list_id: UUID
    version_id: UUID | None
    entry: dict[str, Any]
    stale_hotlists: bool
    stale_reason: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    verification: dict[str, Any] | None
    status_check: dict[str, Any] | None
    misread: dict[str, Any] | None
    disposition_code: str | None
    disposition_note: str | None
    dispositioned_by: str | None
    dispositioned_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PartnerHit(BaseModel):
    """A hit as a partner agency sees it (IACP D.2): what was read, where, and why it hit.

    Leaves out the owner's workflow (status, officers, verification, dispositions), its
    cameras, units and deployments, and the entry's case and NCIC numbers.
    """

    hit_id: UUID = Field(description="The hit's id, as in the dissemination record")
    read_id: UUID
    plate: str = Field(description="The plate read")
    state: str | None = Field(description="The issuing state read, when known")
    captured_at: datetime
    latitude: float | None
    longitude: float | None
    list_category: str | None = Field(description="The hot list's category, e.g. stolen vehicle")
    reason: str | None = Field(description="Why the plate is on the hot list")
    match: str = Field(description="exact, ocr_equivalent, wildcard or one_edit")


class PartnerHits(BaseModel):
    """The answer of ``GET /v1/hits`` to a partner agency."""

    marking: Literal["FOUO"] = "FOUO"
    owner_agency: str = Field(description="The agency whose hits these are")
    plate: str = Field(description="The plate asked for, normalised")
    since: datetime
    count: int
    hits: list[PartnerHit]


class AlertEventPublic(BaseModel):
    """One step of an alert's history."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    alert_id: UUID
    event_type: str
    from_status: str | None
    to_status: str
    subject_id: str
    subject_name: str | None
    occurred_at: datetime
    details: dict[str, Any] | None


class AlertDetail(AlertPublic):
    """An alert with its history."""

    history: list[AlertEventPublic]


class OpenAlert(AlertPublic):
    """An alert without a disposition, with how long it has been open."""

    open_minutes: int


class Acknowledge(BaseModel):
    """The officer saw the alert."""

    note: str | None = Field(default=None, max_length=2000)


class Verify(BaseModel):
    """IACP C.4.a: the officer compared the read with the entry by eye."""

    characters_match: bool = Field(description="The read's characters match the entry's plate")
    state_matches: bool = Field(description="The plate's state matches the entry's state")
    note: str | None = Field(default=None, max_length=2000)


class Misread(BaseModel):
    """The officer found the read does not match the entry."""

    note: str = Field(min_length=1, max_length=2000, description="What was wrong")
    actual_plate: str | None = Field(default=None, description="The plate as the officer reads it")
    actual_state: str | None = None


class StatusCheck(BaseModel):
    """IACP C.4.b: the dispatch / MDT query confirming the entry is still active."""

    source: Literal["dispatch", "mdt", "ncic", "other"]
    result: Literal["confirmed", "not_confirmed", "cleared", "no_record"]
    reference: str | None = Field(default=None, max_length=120, description="Query or message id")
    note: str | None = Field(default=None, max_length=2000)


class Disposition(BaseModel):
    """IACP C.5: the outcome, from the administered list, with a note."""

    code: str = Field(min_length=1, max_length=32)
    note: str | None = Field(default=None, max_length=4000)


class DispositionCodePublic(BaseModel):
    """One administered disposition."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    label: str
    requires_note: bool
    active: bool
    updated_by: str | None
    updated_at: datetime


class DispositionCodeCreate(BaseModel):
    """A disposition to add or change."""

    code: str = Field(min_length=2, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1, max_length=120)
    requires_note: bool = False
    active: bool = True
