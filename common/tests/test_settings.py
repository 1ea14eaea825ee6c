"""Settings: embedded defaults work, production refuses them."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from lpr_common.settings import LprSettings


def test_defaults_point_at_the_embedded_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "LPR_DATABASE_URL", "LPR_DATA_DIR", "LPR_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    settings = LprSettings()
    assert settings.database_url.startswith("postgresql://postgres@127.0.0.1:")
    assert settings.gateway_url.endswith(":8000")
    assert settings.keys_dir == settings.data_dir / "keys"


def test_production_refuses_the_embedded_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("LPR_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        LprSettings()
    monkeypatch.setenv("DATABASE_URL", "postgresql://lpr:pw@db.internal:5432/lpr")
    assert LprSettings().database_url.endswith("db.internal:5432/lpr")
