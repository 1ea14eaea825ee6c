"""Column helpers shared by the hot-list tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB


def utcnow() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def timestamp_column(*, nullable: bool = False, index: bool = False) -> Any:
    """A ``timestamptz`` column (SQLModel maps ``datetime`` to a naive one by default)."""
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


def json_column(*, nullable: bool = True) -> Any:
    """A JSONB column."""
    return Column(JSONB, nullable=nullable)
