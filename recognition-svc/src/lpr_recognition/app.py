"""The recognition service application."""

from __future__ import annotations

from fastapi import FastAPI

from lpr_common.service import create_service_app
from lpr_recognition.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the recognition service app."""
    return create_service_app(
        name="recognition",
        title="LPR recognition service",
        description="Reads: ingest, image blobs, plate recognition through Triton, historical search and read retention.",
        settings=settings or Settings(),
        peers=["hotlist", "audit"],
    )


app = create_app()
