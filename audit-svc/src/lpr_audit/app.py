"""The audit service application."""

from __future__ import annotations

from fastapi import FastAPI

from lpr_audit.access_log import router as access_log
from lpr_audit.access_log.schemas import DisseminationBatch, EventBatch
from lpr_audit.deps import append_lane
from lpr_audit.dissemination import router as dissemination
from lpr_audit.ledger.service import ledger_lifespan
from lpr_audit.reports import router as reports
from lpr_audit.retention import router as retention
from lpr_audit.settings import Settings
from lpr_common.lanes import add_lanes
from lpr_common.service import create_service_app


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the audit service app."""
    app = create_service_app(
        name="audit",
        title="LPR audit service",
        description="The append-only, hash-chained access log, the dissemination log, retention receipts and transparency reports.",
        settings=settings or Settings(),
        routers=[
            access_log.internal_router,
            dissemination.internal_router,
            retention.internal_router,
            access_log.router,
            dissemination.router,
            retention.router,
            reports.router,
        ],
        peers=[],
        lifespan_hooks=[ledger_lifespan],
    )
    add_lanes(
        app,
        {
            ("POST", "/internal/v1/events"): append_lane(EventBatch, access_log.append_events),
            ("POST", "/internal/v1/disseminations"): append_lane(
                DisseminationBatch, dissemination.append_disseminations
            ),
        },
    )
    return app


app = create_app()
