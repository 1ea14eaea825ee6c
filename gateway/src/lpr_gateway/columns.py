"""Column helpers shared by the gateway's tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, Column, DateTime, String, func


def utcnow() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def timestamp_column(*, nullable: bool = False, server_now: bool = False) -> Any:
    """A ``timestamptz`` column (SQLModel would otherwise make a naive timestamp)."""
    return Column(
        DateTime(timezone=True),
        nullable=nullable,
        server_default=func.now() if server_now else None,
    )


def text_array_column() -> Any:
    """A ``text[]`` column, never NULL."""
    return Column(ARRAY(String), nullable=False, server_default="{}")


def not_null(value: Any) -> Any:
    """``value`` unless it is None: a change may leave a NOT NULL column out, not empty it.

    For a field validator of an update schema; it runs only on fields the client sent.

    Raises:
        ValueError: ``value`` is None.
    """
    if value is None:
        raise ValueError("may not be null")
    return value
