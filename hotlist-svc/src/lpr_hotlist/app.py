"""The hot-list service application."""

from __future__ import annotations

from fastapi import FastAPI

from lpr_common.service import create_service_app
from lpr_hotlist.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the hot-list service app."""
    return create_service_app(
        name="hotlist",
        title="LPR hot-list service",
        description="Hot lists, matching, alerts and the officer's verification workflow.",
        settings=settings or Settings(),
        peers=["audit"],
    )


app = create_app()
