"""Settings of the audit service."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "audit"
WRITER_ROLE = "lpr_audit_writer"


class Settings(LprSettings):
    """Audit service settings; service-specific ones take the ``LPR_AUDIT_`` prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")

    agency: str = "CA0010000"
    # The role every connection switches to (SET ROLE): INSERT and SELECT only, so the
    # service itself cannot rewrite history. Empty keeps the login role (when the login
    # role already is an INSERT/SELECT-only role).
    audit_db_role: str = WRITER_ROLE
    # Most records linked in one transaction; bigger batches amortise the commit.
    audit_max_batch: int = Field(default=5000, ge=1)
    # Most events one request may carry.
    audit_max_request_events: int = Field(default=10000, ge=1)
    # Signed checkpoints: every interval, and sooner once this many records were appended.
    audit_checkpoint_interval_s: float = Field(default=60.0, gt=0)
    audit_checkpoint_every_records: int = Field(default=10000, ge=1)
    # Misuse report: shift hours (start inclusive, end exclusive) on the agency's clock,
    # an IANA time zone such as "America/Los_Angeles", and thresholds.
    audit_shift_start_hour: int = Field(default=6, ge=0, le=23)
    audit_shift_end_hour: int = Field(default=22, ge=0, le=24)
    audit_shift_timezone: str = "UTC"

    @field_validator("audit_shift_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown IANA time zone {value!r}") from error
        return value

    audit_misuse_min_searches: int = Field(default=5, ge=1)
    audit_misuse_peer_factor: float = Field(default=3.0, gt=0)
    audit_misuse_distinct_cases: int = Field(default=3, ge=2)
    audit_misuse_off_shift_share: float = Field(default=0.25, gt=0, le=1)
    audit_misuse_denied_share: float = Field(default=0.3, gt=0, le=1)
    audit_misuse_min_requests: int = Field(default=5, ge=1)
