"""Settings of the gateway."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "gateway"


class Settings(LprSettings):
    """Gateway settings; service-specific ones take the ``LPR_GATEWAY_`` prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")
