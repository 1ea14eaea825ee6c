"""Settings of the recognition service."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "recognition"

DEFAULT_TRITON_GRPC_PORT = 8101


class Settings(LprSettings):
    """Recognition service settings (environment variables ``LPR_<FIELD>``, plus ``TRITON_URL``)."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_", populate_by_name=True)

    triton_url: str = Field(
        default=f"localhost:{DEFAULT_TRITON_GRPC_PORT}",
        validation_alias=AliasChoices("TRITON_URL", "LPR_TRITON_URL"),
        description="gRPC host:port of Triton; `lprctl up` starts the CPU server here when unset",
    )
    triton_timeout_s: float = 30.0
    # False runs an ingest-only service: reads are stored and stay pending, and readiness
    # does not ask Triton (whole-stack tests that need no recognition, maintenance).
    recognition_enabled: bool = True
    workers_enabled: bool = True
    recognition_concurrency: int = Field(default=2, ge=1)
    # Jurisdiction whose plate rules the OCR applies ("us", "eu", "br" or empty for none).
    recognition_region: str | None = "us"
    # A claimed read is invisible to other workers this long; a crash mid-way frees it after.
    recognition_lease_s: float = 120.0
    worker_poll_s: float = 0.5
    retry_base_s: float = 1.0
    retry_max_s: float = 60.0
    blob_dir_override: Path | None = Field(
        default=None, validation_alias=AliasChoices("LPR_BLOB_DIR", "BLOB_DIR")
    )
    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(default=40_000_000, ge=1)
    # Camera clocks drift; a read stamped later than this ahead of our clock is refused.
    future_tolerance_s: float = 300.0
    batch_max_reads: int = Field(default=100, ge=1)
    handoff_batch_size: int = Field(default=20, ge=1)
    audit_batch_size: int = Field(default=100, ge=1)
    # Multi-frame fusion: a camera's reads of one passing vehicle, captured within this
    # many seconds of each other and close in text, are fused into one track.
    fusion_enabled: bool = True
    fusion_window_s: float = Field(default=3.0, ge=0, le=60)
    # Edits (beyond OCR look-alikes, which are free) between two readings of one vehicle.
    fusion_max_edits: int = Field(default=1, ge=0, le=2)

    @property
    def blob_dir(self) -> Path:
        """Directory of the content-addressed image blobs (default ``$LPR_DATA_DIR/blobs``)."""
        return self.blob_dir_override or self.data_dir / "blobs"
