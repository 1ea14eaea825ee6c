"""Settings of the audit service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "audit"


class Settings(LprSettings):
    """Audit service settings; service-specific ones take the ``LPR_AUDIT_`` prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")
