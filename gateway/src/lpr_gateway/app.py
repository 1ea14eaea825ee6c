"""The gateway application."""

from __future__ import annotations

from fastapi import FastAPI

from lpr_common.service import create_service_app
from lpr_gateway.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app."""
    return create_service_app(
        name="gateway",
        title="LPR gateway",
        description="The only door: authenticates every caller, decides every request with the Casbin policy, audits every decision and routes to the owning service.",
        settings=settings or Settings(),
        peers=["audit"],
    )


app = create_app()
