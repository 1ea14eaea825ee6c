"""Settings shared by every service.

Every setting has a working embedded default so that a fresh machine runs the whole
platform with no configuration. Deployments override them through the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_PORTS = {"gateway": 8000, "recognition": 8001, "hotlist": 8002, "audit": 8003}
DEFAULT_DATABASE_PORT = 8432


def embedded_database_url() -> str:
    """URL of the embedded PostgreSQL that ``lprctl up`` starts (port ``LPR_DATABASE_PORT``)."""
    port = os.environ.get("LPR_DATABASE_PORT", str(DEFAULT_DATABASE_PORT))
    return f"postgresql://postgres@127.0.0.1:{port}/lpr"


def default_data_dir() -> Path:
    """Return the embedded data directory: ``./.lpr`` under the working directory."""
    return Path.cwd() / ".lpr"


class LprSettings(BaseSettings):
    """Base settings: database, data directory, peers and telemetry.

    The well-known variables (``DATABASE_URL``, ``TRITON_URL``, ``LPR_DATA_DIR``, ...) keep
    their plain names so that one environment file configures every service.
    """

    model_config = SettingsConfigDict(extra="ignore", env_prefix="LPR_")

    environment: Literal["dev", "test", "production"] = "dev"
    # ORI of the agency that runs this platform and owns its data (``LPR_AGENCY``).
    agency: str = "CA0010000"
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = Field(
        default_factory=embedded_database_url,
        validation_alias=AliasChoices("DATABASE_URL", "LPR_DATABASE_URL"),
    )
    database_pool_size: int = 10
    gateway_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['gateway']}"
    recognition_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['recognition']}"
    hotlist_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['hotlist']}"
    audit_url: str = f"http://127.0.0.1:{DEFAULT_PORTS['audit']}"
    otlp_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT")
    )
    otel_console: bool = False
    # Maximum age of a signed request context; short, because it is minted per request.
    context_max_age_s: int = 120

    @property
    def keys_dir(self) -> Path:
        """Directory holding generated keys (never committed, 0700)."""
        return self.data_dir / "keys"

    @model_validator(mode="after")
    def _refuse_embedded_defaults_in_production(self) -> LprSettings:
        # A production deployment must say where its database is; the embedded default
        # (trust authentication on loopback) is for a developer's machine only.
        if self.environment == "production" and "@127.0.0.1:" in self.database_url:
            raise ValueError("DATABASE_URL must be set explicitly when LPR_ENVIRONMENT=production")
        return self
