"""API shapes of legal holds and retention runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from lpr_common.values import StorableDatetime


class TimeRange(BaseModel):
    """A half-open time range ``[start, end)``."""

    start: datetime | None = None
    end: datetime | None = None


class TimeRangeCreate(TimeRange):
    """The time range of a new hold: one PostgreSQL and date arithmetic can hold."""

    start: StorableDatetime | None = None
    end: StorableDatetime | None = None


class LegalHoldCreate(BaseModel):
    """Place a hold: on reads by id, or on a plate's reads within a time range.

    ``case_number`` and ``reason`` are checked by the service so that a missing one is
    refused with a problem naming the field (IACP B.1.b).
    """

    case_number: str | None = Field(default=None, max_length=100)
    reason: str | None = Field(default=None, max_length=2000)
    read_ids: list[UUID] | None = Field(default=None, max_length=10_000)
    plate: str | None = Field(default=None, max_length=32)
    time_range: TimeRangeCreate | None = None
    purpose: str | None = Field(default=None, description="the purpose the gateway checked")


class LegalHoldRelease(BaseModel):
    """Release a hold: an administrator, with the reason (or header ``X-LPR-Reason``)."""

    reason: str | None = Field(default=None, max_length=2000)


class LegalHoldPublic(BaseModel):
    """A legal hold and the reads it keeps."""

    id: UUID
    status: Literal["active", "released"]
    agency: str
    case_number: str
    reason: str
    placed_by: str
    placed_by_name: str | None
    placed_at: datetime
    plate: str | None
    time_range: TimeRange | None
    read_count: int
    read_ids: list[UUID]
    released_at: datetime | None
    released_by: str | None
    release_reason: str | None


class LegalHoldList(BaseModel):
    """Legal holds, newest first."""

    items: list[LegalHoldPublic]


class RetentionRunPublic(BaseModel):
    """One run of the purge job and its receipts to the audit log."""

    id: UUID
    trigger: str
    triggered_by: str | None
    started_at: datetime
    finished_at: datetime | None
    outcome: Literal["completed", "skipped", "failed"]
    detail: str | None
    periods: dict[str, int | None] | None
    receipts: list[dict[str, Any]]
    first_seq: int | None
    last_seq: int | None
    receipts_queued: bool = Field(
        default=False,
        description="the purge committed and its receipts are stored with it, but the audit "
        "log has not recorded them yet: they are resent until it has (first_seq and last_seq "
        "stay null until then)",
    )
    blobs_deleted: int | None = Field(default=None, description="only in the answer to a run")
    orphan_blobs_deleted: int | None = Field(
        default=None,
        description="image files of reads that never committed, deleted after the run "
        "(only in the answer to a run)",
    )


class RetentionRunList(BaseModel):
    """Retention runs, newest first."""

    items: list[RetentionRunPublic]
