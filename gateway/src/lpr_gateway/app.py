"""The gateway application: the only door of the platform."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import jwt
from fastapi import APIRouter, Depends, FastAPI, Response

import lpr_gateway.tables  # noqa: F401  (every table on the metadata)
from lpr_common.keys import load_or_create_ed25519
from lpr_common.lanes import add_lanes
from lpr_common.service import create_service_app
from lpr_gateway.access.audit import outbox_flusher, result_log
from lpr_gateway.access.forward import (
    forwarding_lanes,
    forwarding_router,
    stream_end_records,
    upstream_clients,
)
from lpr_gateway.access.guard import guard
from lpr_gateway.access.partner_docs import PARTNER_TAG_METADATA
from lpr_gateway.access.subjects import subject_cache_listener
from lpr_gateway.cameras.router import (
    cameras_router,
    checks_router,
    deployments_router,
    internal_router,
)
from lpr_gateway.governance.policy_store import policy_engine
from lpr_gateway.governance.router import (
    agencies_router,
    approvals_router,
    mous_router,
    policy_router,
    purposes_router,
)
from lpr_gateway.identity.router import auth_router, users_router
from lpr_gateway.security import TokenIssuer
from lpr_gateway.settings import JWT_KEY_NAME, Settings

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

OPENAPI_TAGS = [
    {"name": "auth", "description": "OAuth2 tokens for users and partner agencies."},
    {"name": "users", "description": "Users, roles and training records (IACP B.1.d, C.2)."},
    {"name": "agencies", "description": "Agencies."},
    {"name": "mous", "description": "MOUs and partner clients (IACP D.2)."},
    {"name": "cameras", "description": "Cameras and their keys (IACP B.1.e)."},
    {"name": "deployments", "description": "Deployments and special details (B.1.e, C.7)."},
    {"name": "equipment checks", "description": "Equipment checks (IACP B.2, B.3)."},
    {"name": "approvals", "description": "Data-access requests and decisions (B.1.f)."},
    {"name": "purposes", "description": "Administered public-safety purposes (A.1-2)."},
    {"name": "policy", "description": "Runtime policy rows."},
    {"name": "recognition", "description": "Forwarded to recognition-svc."},
    {"name": "hotlist", "description": "Forwarded to hotlist-svc."},
    {"name": "audit", "description": "Forwarded to audit-svc."},
    PARTNER_TAG_METADATA,
]


def guarded(router: APIRouter) -> APIRouter:
    """Wrap a router so that every one of its operations depends on the guard."""
    wrapper = APIRouter(dependencies=[Depends(guard)])
    wrapper.include_router(router)
    return wrapper


def catch_all_router() -> APIRouter:
    """Unknown paths: still authenticated where possible and audited, then 404."""
    router = APIRouter(dependencies=[Depends(guard)])

    @router.api_route("/{path:path}", methods=ALL_METHODS, include_in_schema=False)
    async def unknown() -> Response:  # pragma: no cover - the guard raises first
        """Refuse an unknown operation."""
        return Response(status_code=404)

    return router


@asynccontextmanager
async def identity_keys(app: FastAPI) -> AsyncIterator[None]:
    """Lifespan hook: the token signing key and the identity provider's key set."""
    settings: Settings = app.state.settings
    app.state.token_issuer = TokenIssuer(
        load_or_create_ed25519(settings.keys_dir, JWT_KEY_NAME),
        issuer=settings.gateway_token_issuer,
        ttl=timedelta(seconds=settings.gateway_token_ttl_s),
    )
    app.state.oidc_jwks = (
        jwt.PyJWKClient(settings.gateway_oidc_jwks_url, cache_keys=True, lifespan=300, timeout=5)
        if settings.gateway_oidc_jwks_url
        else None
    )
    yield


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the gateway app."""
    routers = [
        guarded(router)
        for router in (
            auth_router,
            users_router,
            agencies_router,
            mous_router,
            cameras_router,
            deployments_router,
            checks_router,
            approvals_router,
            purposes_router,
            policy_router,
            forwarding_router(),
        )
    ]
    app = create_service_app(
        name="gateway",
        title="LPR gateway",
        description=(
            "The only door: authenticates every caller, decides every request with the "
            "Casbin policy, audits every decision and routes to the owning service."
        ),
        settings=settings or Settings(),
        peers=["audit"],
        routers=[*routers, internal_router, catch_all_router()],
        lifespan_hooks=[
            identity_keys,
            upstream_clients,
            stream_end_records,
            policy_engine,
            subject_cache_listener,
            outbox_flusher,
            result_log,
        ],
        openapi_tags=OPENAPI_TAGS,
        # The guard refuses U+0000 itself, so that the refusal is audited.
        refuse_nul=False,
    )
    add_lanes(app, forwarding_lanes(), refuse_nul=False)
    return app


app = create_app()
