"""The hot-list service application."""

from __future__ import annotations

from fastapi import FastAPI

from lpr_common.deployment_results import deployment_results_lifespan
from lpr_common.service import create_service_app
from lpr_hotlist.alerts.router import dispositions_router, internal_router
from lpr_hotlist.alerts.router import router as alerts_router
from lpr_hotlist.audit_outbox import audit_outbox_lifespan
from lpr_hotlist.hotlists.router import router as hotlists_router
from lpr_hotlist.hotlists.router import shift_router
from lpr_hotlist.live_index import live_index_lifespan
from lpr_hotlist.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the hot-list service app."""
    settings = settings or Settings()
    return create_service_app(
        name="hotlist",
        title="LPR hot-list service",
        description="Hot lists, matching, alerts and the officer's verification workflow.",
        settings=settings,
        routers=[
            hotlists_router,
            shift_router,
            alerts_router,
            dispositions_router,
            internal_router,
        ],
        peers=["audit"],
        lifespan_hooks=[
            live_index_lifespan(settings),
            deployment_results_lifespan("hotlist"),
            audit_outbox_lifespan(settings),
        ],
        openapi_tags=[
            {
                "name": "hot lists",
                "description": "Lists, versions, imports, manual entries (C.3, C.6)",
            },
            {"name": "shift checks", "description": "Current hot lists at shift start (C.3)"},
            {"name": "alerts", "description": "Alerts and the officer's workflow (C.4, C.5)"},
            {"name": "dispositions", "description": "The administered list of dispositions (C.5)"},
            {"name": "internal", "description": "Service-to-service routes"},
        ],
    )


app = create_app()
