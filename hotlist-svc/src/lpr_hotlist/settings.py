"""Settings of the hot-list service."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from lpr_common.settings import LprSettings

SCHEMA = "hotlist"


class Settings(LprSettings):
    """Hot-list service settings; service-specific ones take the ``LPR_HOTLIST_`` prefix."""

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")
