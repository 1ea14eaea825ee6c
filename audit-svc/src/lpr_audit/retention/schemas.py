"""Retention classes, their documented defaults, and the receipt of a purge."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from pydantic import BaseModel, Field

from lpr_audit.chain import EXACT_INTEGER_LIMIT
from lpr_common.values import StorableDatetime

MINUTES_PER_DAY: Final = 24 * 60


class RetentionClass(StrEnum):
    """What a retention period applies to."""

    NON_HIT_READS = "non_hit_reads"
    HIT_READS = "hit_reads"
    PRESERVED_READS = "preserved_reads"
    IMAGES = "images"
    AUDIT_RECORDS = "audit_records"


DEFAULT_MINUTES: Final[dict[RetentionClass, int | None]] = {
    # Common state limits for reads that hit nothing run from minutes (NH) to 60 days (MN);
    # 30 days keeps investigative value while staying well inside most of them.
    RetentionClass.NON_HIT_READS: 30 * MINUTES_PER_DAY,
    # Reads tied to a hit are evidence of an alert and its disposition: one year.
    RetentionClass.HIT_READS: 365 * MINUTES_PER_DAY,
    # Legal hold: kept until an administrator releases it with a reason (no period).
    RetentionClass.PRESERVED_READS: None,
    # Images of non-preserved reads go with the reads that hit nothing.
    RetentionClass.IMAGES: 30 * MINUTES_PER_DAY,
    # CJIS 5.4.7: audit records are kept at least one year.
    RetentionClass.AUDIT_RECORDS: 365 * MINUTES_PER_DAY,
}

MINIMUM_MINUTES: Final[dict[RetentionClass, int]] = {
    RetentionClass.NON_HIT_READS: 1,
    RetentionClass.HIT_READS: 1,
    RetentionClass.PRESERVED_READS: 1,
    RetentionClass.IMAGES: 1,
    RetentionClass.AUDIT_RECORDS: 365 * MINUTES_PER_DAY,
}

# No class needs more than a century (of 365.25 days). Recognition's purge subtracts the
# period from now: a period of millions of years would run past year 1 and stop every purge.
MAXIMUM_YEARS: Final = 100
MAXIMUM_MINUTES: Final = 36_525 * MINUTES_PER_DAY

# Only a legal hold may be kept with no period at all.
OPEN_ENDED: Final = frozenset({RetentionClass.PRESERVED_READS})

DESCRIPTIONS: Final[dict[RetentionClass, str]] = {
    RetentionClass.NON_HIT_READS: "reads that matched no hot-list entry",
    RetentionClass.HIT_READS: "reads tied to a hit (an alert)",
    RetentionClass.PRESERVED_READS: "reads preserved for a case (legal hold), until released",
    RetentionClass.IMAGES: "images of reads that are not preserved",
    RetentionClass.AUDIT_RECORDS: "access and dissemination log records (at least one year)",
}


class RetentionSettingPublic(BaseModel):
    """The period in force for one class, and who set it."""

    retention_class: RetentionClass
    period_minutes: int | None = Field(description="null: kept until released")
    period_days: float | None
    default_minutes: int | None
    minimum_minutes: int
    maximum_minutes: int
    description: str
    changed_by: str | None
    changed_at: datetime | None
    reason: str | None


class RetentionSettingsPublic(BaseModel):
    """Every class's period in force."""

    settings: list[RetentionSettingPublic]


class RetentionSettingsUpdate(BaseModel):
    """New periods for some classes, with the reason for the change."""

    periods: dict[RetentionClass, int | None] = Field(min_length=1)
    reason: str = Field(min_length=5, max_length=1000)


class RetentionReceipt(BaseModel):
    """What one purge deleted, provable later without keeping what was deleted.

    ``deleted_ids_sha256`` is the lowercase hex SHA-256 of the deleted read ids (lowercase
    hyphenated UUIDs) sorted ascending and joined with ``"\\n"`` (no trailing newline).
    """

    retention_class: RetentionClass
    range_start: StorableDatetime
    range_end: StorableDatetime
    deleted_count: int = Field(ge=0, le=EXACT_INTEGER_LIMIT)
    preserved_count: int = Field(ge=0, le=EXACT_INTEGER_LIMIT)
    deleted_ids_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    purged_at: StorableDatetime = Field(default_factory=lambda: datetime.now(UTC))
    period_minutes: int | None = Field(
        default=None, le=EXACT_INTEGER_LIMIT, description="the period applied"
    )
    details: dict[str, Any] | None = None
    receipt_id: UUID | None = Field(
        default=None,
        description="the sender's stable id for this receipt: its access-log event id, so "
        "a receipt resent after a lost answer is recorded once",
    )


class ReceiptBatch(BaseModel):
    """Receipts to append to the access log chain."""

    receipts: list[RetentionReceipt] = Field(min_length=1, max_length=1000)
