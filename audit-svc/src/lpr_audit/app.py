"""The audit service application."""

from __future__ import annotations

from fastapi import FastAPI

from lpr_audit.settings import Settings
from lpr_common.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the audit service app."""
    return create_service_app(
        name="audit",
        title="LPR audit service",
        description="The append-only, hash-chained access log, the dissemination log, retention receipts and transparency reports.",
        settings=settings or Settings(),
        peers=[],
    )


app = create_app()
