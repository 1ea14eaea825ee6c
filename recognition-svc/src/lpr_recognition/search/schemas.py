"""API shapes of the read search (``POST /v1/reads/search``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from lpr_common.values import StorableDatetime

FOUO: Final = "FOUO"
"""For Official Use Only: the marking of every answer carrying LPR data."""


class MatchMode(StrEnum):
    """How ``plate`` is compared with the plates read."""

    exact = "exact"
    pattern = "pattern"
    ocr_equivalent = "ocr_equivalent"


class TimeRange(BaseModel):
    """When the vehicle was seen; ``start`` is required, ``end`` defaults to now."""

    model_config = ConfigDict(extra="forbid")

    start: StorableDatetime | None = Field(default=None, description="ISO 8601 with a UTC offset")
    end: StorableDatetime | None = Field(default=None, description="ISO 8601 with a UTC offset")


class Coordinates(BaseModel):
    """A point in WGS 84 degrees."""

    model_config = ConfigDict(extra="forbid")

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class BoundingBox(BaseModel):
    """A box of latitudes and longitudes (WGS 84 degrees)."""

    model_config = ConfigDict(extra="forbid")

    south: float = Field(ge=-90, le=90)
    west: float = Field(ge=-180, le=180)
    north: float = Field(ge=-90, le=90)
    east: float = Field(ge=-180, le=180)


class Area(BaseModel):
    """Where: a bounding box, or a center with a radius in metres."""

    model_config = ConfigDict(extra="forbid")

    bbox: BoundingBox | None = None
    center: Coordinates | None = None
    radius_m: float | None = Field(default=None, gt=0)


class SearchRequest(BaseModel):
    """A historical search for a case."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "purpose": "stolen_vehicle",
                    "case_number": "PD-2026-000123",
                    "plate": "7ABC123",
                    "match": "exact",
                    "time_range": {
                        "start": "2026-11-01T00:00:00Z",
                        "end": "2026-11-29T00:00:00Z",
                    },
                    "limit": 50,
                }
            ]
        },
    )

    purpose: str | None = Field(default=None, description="code from GET /v1/purposes")
    case_number: str | None = Field(default=None, description="e.g. PD-2026-000123")
    offense: str | None = Field(default=None, description="named offense, when the purpose asks")
    plate: str | None = Field(default=None, description="a plate, or a pattern with * and ?")
    match: MatchMode | None = Field(
        default=None, description="exact (default), pattern (default with * or ?), ocr_equivalent"
    )
    state: str | None = Field(default=None, description="issuing state/province code")
    time_range: TimeRange | None = None
    area: Area | None = None
    cameras: list[str] | None = Field(default=None, max_length=100)
    deployments: list[str] | None = Field(default=None, max_length=100)
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, description="next_cursor of the previous page")


class ResultLinks(BaseModel):
    """Where to fetch the read, its image and the plate crop (through the gateway, audited)."""

    read: str
    image: str | None
    crop: str | None


class SearchResult(BaseModel):
    """One plate seen on one read."""

    read_id: UUID
    plate_index: int
    plate: str
    state: str | None
    confidence: float
    source: str
    captured_at: datetime
    latitude: float
    longitude: float
    heading: float | None
    camera_id: str
    deployment_id: str | None
    agency: str
    match: MatchMode
    substitutions: str | None = Field(
        default=None, description="OCR substitutions that made it match, e.g. 'O≈0'"
    )
    links: ResultLinks


class SearchPage(BaseModel):
    """A page of results, newest first; follow ``next_cursor`` for the next."""

    marking: Literal["FOUO"] = "FOUO"
    purpose: str
    case_number: str
    count: int
    limit: int
    next_cursor: str | None
    results: list[SearchResult]
