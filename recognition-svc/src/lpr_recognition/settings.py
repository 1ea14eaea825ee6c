"""Settings of the recognition service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "recognition"


class Settings(LprSettings):
    """Recognition service settings; service-specific ones take the ``LPR_RECOGNITION_`` prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")
