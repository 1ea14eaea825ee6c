"""Bounds of the query parameters the hot-list routes share."""

from __future__ import annotations

from typing import Final

MAX_OFFSET: Final = 10_000_000
"""The furthest a page may start: beyond any list's entries or any agency's alerts (a
256 MiB import holds some 4 million lines), within what PostgreSQL's OFFSET takes."""

MAX_OPEN_MINUTES: Final = 60 * 24 * 366 * 10
"""The longest an alert may have been open to be asked about: ten years, in minutes."""
