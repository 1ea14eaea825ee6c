"""What cameras send and what the reads API answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from lpr_common.plates import InvalidPlate, InvalidState, normalize_plate, normalize_state
from lpr_common.values import Text, storable_datetime
from lpr_recognition.reads.models import ReadStatus


class EdgePlate(BaseModel):
    """A plate the camera read on board."""

    model_config = ConfigDict(extra="forbid")

    text: Text = Field(min_length=1, max_length=32, description="Plate as the camera read it")
    confidence: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    state: Text | None = Field(default=None, description="Issuing state or province code")

    @field_validator("text")
    @classmethod
    def _plate(cls, value: str) -> str:
        try:
            return normalize_plate(value)
        except InvalidPlate as exc:
            raise ValueError(str(exc)) from None

    @field_validator("state")
    @classmethod
    def _state(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_state(value)
        except InvalidState as exc:
            raise ValueError(str(exc)) from None


MAX_UNIT_ID_LENGTH: Final = 64
"""What hot-list matching keeps of a read's unit (``alerts.unit_id`` is ``varchar(64)``)."""


class ReadMetadata(BaseModel):
    """The JSON ``metadata`` part of a read.

    A posted read's metadata arrives inside a multipart body, which the service's NUL
    screen does not read: its strings are :data:`~lpr_common.values.Text`.
    """

    model_config = ConfigDict(extra="forbid")

    camera_read_id: Text = Field(
        min_length=1,
        max_length=128,
        description="The camera's own id of this read; idempotency key",
    )
    captured_at: Annotated[AwareDatetime, AfterValidator(storable_datetime)] = Field(
        description="Capture time with its UTC offset"
    )
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)
    heading: float | None = Field(
        default=None, ge=0, le=360, allow_inf_nan=False, description="Degrees from north"
    )
    speed: float | None = Field(default=None, ge=0, allow_inf_nan=False, description="km/h")
    lane: int | None = Field(default=None, ge=0, le=64)
    unit_id: Text | None = Field(
        default=None, max_length=MAX_UNIT_ID_LENGTH, description="Mobile unit, if any"
    )
    edge_plate: EdgePlate | None = None

    def canonical(self) -> dict[str, Any]:
        """The metadata as stored for idempotency: JSON types, UTC time, no unset fields."""
        content = self.model_dump(mode="json", exclude_none=True)
        content["captured_at"] = self.captured_at.astimezone(UTC).isoformat()
        return content


class BatchRead(ReadMetadata):
    """A read with the camera's plate and no image."""

    edge_plate: EdgePlate


class ReadBatch(BaseModel):
    """Reads from a camera that reads plates on board."""

    model_config = ConfigDict(extra="forbid")

    reads: list[BatchRead] = Field(min_length=1)


class ReadAccepted(BaseModel):
    """The answer to a posted read."""

    read_id: UUID
    status: ReadStatus


class BatchReadAccepted(ReadAccepted):
    """One read of a batch, accepted."""

    camera_read_id: str


class BatchAccepted(BaseModel):
    """The answer to a posted batch, in the order of the request."""

    reads: list[BatchReadAccepted]


class Candidate(BaseModel):
    """One reading of a plate."""

    text: str
    confidence: float


class TrackPublic(BaseModel):
    """The vehicle pass a plate belongs to: the camera's frames of it, fused into one plate."""

    id: UUID
    fused_text: str = Field(description="The plate voted over the frames, weighted by confidence")
    confidence: float = Field(description="Mean of the fused characters' confidences")
    character_confidences: list[float]
    read_ids: list[UUID] = Field(description="The reads (frames) of the pass, in capture order")
    first_captured_at: datetime
    last_captured_at: datetime


class PlatePublic(BaseModel):
    """A plate found on a read."""

    index: int
    text: str
    confidence: float
    box: list[int] | None = Field(default=None, description="[x, y, width, height] in pixels")
    region: str | None = None
    state: str | None = None
    source: str = Field(description="recognition (Triton) or edge (the camera's own OCR)")
    candidates: list[Candidate] = Field(default_factory=list)
    track: TrackPublic | None = Field(
        default=None, description="Multi-frame fusion: the pass this plate is part of"
    )


class ReadPublic(BaseModel):
    """A read and what was found on it."""

    id: UUID
    camera_read_id: str
    camera_id: str
    deployment_id: str | None
    unit_id: str | None
    agency: str
    captured_at: datetime
    received_at: datetime
    latitude: float
    longitude: float
    heading: float | None
    speed: float | None
    lane: int | None
    status: ReadStatus
    preserved: bool
    image_available: bool
    image_sha256: str | None
    edge_plate: EdgePlate | None
    plates: list[PlatePublic]
    attempts: int
    last_error: str | None
