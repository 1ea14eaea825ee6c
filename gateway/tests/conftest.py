"""Fixtures of the gateway tests: the real gateway app on the real test database.

Peers:
- audit-svc: its real app, in-process, when it serves ``POST /internal/v1/events``;
  until that route lands, a stand-in that implements the documented contract
  (docs/internal-api.md) and verifies the signed service context like the real one.
  Either way a spy on the transport records what the gateway sent, and can point the
  gateway at a dead port to take the audit log "down".
- recognition and hot lists: an upstream app implementing the documented answer headers
  and verifying the signed context with the real verifier; it stands for the services'
  public routes, which other engineers are building now.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import ContextDep, InternalContextDep
from lpr_common.errors import install_problem_handlers
from lpr_common.service import context_keys
from lpr_gateway.app import create_app
from lpr_gateway.cameras.models import Camera, Deployment, DeploymentStatus
from lpr_gateway.governance.models import MouRecord
from lpr_gateway.identity.models import PartnerClient, TrainingRecord, User
from lpr_gateway.security import TokenClaims, TokenIssuer, hash_camera_key, hash_password
from lpr_gateway.settings import Settings
from lprctl.postgres import free_port
from lprctl.pytest_plugin import app_client

PLATFORM_AGENCY = "CA0010000"
PARTNER_AGENCY = "NV0020000"


class AuditSpy(httpx.AsyncBaseTransport):
    """Records what the gateway sends to audit-svc; ``down`` sends it to a dead port."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.dead = httpx.AsyncHTTPTransport()
        self.dead_port = free_port()
        self.down = False
        self.events: list[dict[str, Any]] = []
        self.disseminations: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            request.url = request.url.copy_with(host="127.0.0.1", port=self.dead_port)
            return await self.dead.handle_async_request(request)
        response = await self.inner.handle_async_request(request)
        if response.status_code < 300:
            payload = json.loads(request.content)
            if request.url.path == "/internal/v1/events":
                self.events.extend(payload["events"])
            elif request.url.path == "/internal/v1/disseminations":
                self.disseminations.extend(payload["records"])
        return response

    def of(self, event_type: str = "access.decision") -> list[dict[str, Any]]:
        """Events of one type, in order."""
        return [e for e in self.events if e["event_type"] == event_type]

    def last(self, event_type: str = "access.decision") -> dict[str, Any]:
        """The last event of one type."""
        return self.of(event_type)[-1]


def _audit_contract_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    state = {"seq": 0}

    @app.post("/internal/v1/events", status_code=201)
    async def events(body: dict[str, Any], _: InternalContextDep) -> dict[str, int]:
        count = len(body["events"])
        first = state["seq"] + 1
        state["seq"] += count
        return {"accepted": count, "first_seq": first, "last_seq": state["seq"]}

    @app.post("/internal/v1/disseminations", status_code=201)
    async def disseminations(body: dict[str, Any], _: InternalContextDep) -> dict[str, int]:
        return {"accepted": len(body["records"])}

    return app


def _real_audit_app() -> FastAPI | None:
    try:
        from lpr_audit.app import create_app as create_audit_app
    except ImportError:
        return None
    app = create_audit_app()
    return app if "/internal/v1/events" in route_paths(app) else None


def route_paths(app: FastAPI) -> set[str]:
    """Paths an app serves (FastAPI >= 0.160 keeps included routers as branches)."""
    paths: set[str] = set()
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            paths.update(context.path_format for context in contexts())
        elif isinstance(route, APIRoute):
            paths.add(route.path_format)
    return paths


def upstream_app(name: str) -> FastAPI:
    """Answers like the services' public routes do (docs/internal-api.md)."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.api_route("/v1/{path:path}", methods=["GET", "POST", "PATCH", "DELETE"])
    async def echo(path: str, request: Request, context: ContextDep) -> Response:
        if path == "alerts/stream":

            async def events() -> AsyncIterator[bytes]:
                for number in range(3):
                    yield f'id: {number}\nevent: alert\ndata: {{"n": {number}}}\n\n'.encode()
                    await asyncio.sleep(0.01)

            return StreamingResponse(events(), media_type="text/event-stream")
        if path == "reads/missing":
            return JSONResponse(
                {"type": "about:blank", "title": "Not found", "status": 404, "detail": "no read"},
                status_code=404,
                media_type="application/problem+json",
            )
        body = await request.body()
        headers = {
            "X-LPR-Result-Count": "2",
            "X-LPR-Record-Ids": "r-1,r-2",
            "X-LPR-Owner-Agency": PLATFORM_AGENCY,
        }
        if path.startswith("reads"):
            headers["X-LPR-Data-Class"] = "images" if path.endswith("image") else "reads"
        return JSONResponse(
            {
                "service": name,
                "context": context.model_dump(mode="json"),
                "received_headers": dict(request.headers),
                "body": body.decode(errors="replace"),
                "query": dict(request.query_params),
                "received_path": request.scope["path"],
            },
            status_code=201 if request.method == "POST" else 200,
            headers=headers,
        )

    return app


@dataclass
class Gateway:
    """The gateway under test and what it talks to."""

    app: FastAPI
    client: httpx.AsyncClient
    session: AsyncSession
    audit: AuditSpy
    settings: Settings
    created: list[Any] = field(default_factory=list)

    @property
    def issuer(self) -> TokenIssuer:
        """The gateway's token issuer."""
        issuer: TokenIssuer = self.app.state.token_issuer
        return issuer

    def token(self, user: User, *, now: datetime | None = None) -> dict[str, str]:
        """Bearer header for a user."""
        token = self.issuer.issue(
            TokenClaims(sub=str(user.id), agency=user.agency, roles=list(user.roles), kind="user"),
            now=now,
        )
        return {"Authorization": f"Bearer {token}"}

    async def results(self) -> list[dict[str, Any]]:
        """The ``access.result`` events, once every one posted so far was sent."""
        await self.app.state.result_log.drain()
        return self.audit.of("access.result")

    def partner_token(self, client: PartnerClient) -> dict[str, str]:
        """Bearer header for a partner client."""
        token = self.issuer.issue(
            TokenClaims(
                sub=client.client_id,
                agency=client.agency,
                roles=["partner"],
                kind="partner",
                mou=str(client.mou_id),
            )
        )
        return {"Authorization": f"Bearer {token}"}

    async def user(
        self,
        username: str,
        roles: list[str],
        *,
        training_days: int | None = 365,
        agency: str = PLATFORM_AGENCY,
        password: str | None = None,
        repairer: bool = False,
    ) -> User:
        """A user with training expiring in ``training_days`` (negative: expired)."""
        user = User(
            username=username,
            agency=agency,
            roles=roles,
            authorised_repairer=repairer,
            password_hash=hash_password(password) if password else None,
        )
        self.session.add(user)
        await self.session.flush()
        if training_days is not None:
            now = datetime.now(UTC)
            self.session.add(
                TrainingRecord(
                    user_id=user.id,
                    course="LPR operator training",
                    completed_on=(now - timedelta(days=400)).date(),
                    expires_at=now + timedelta(days=training_days),
                )
            )
            await self.session.flush()
        return user

    async def deployment(
        self, *, special: bool = False, approved: bool = True, days: tuple[int, int] = (-1, 30)
    ) -> Deployment:
        """A deployment around now."""
        now = datetime.now(UTC)
        deployment = Deployment(
            agency=PLATFORM_AGENCY,
            name="Main St corridor",
            kind="location",
            location="Main St & 1st",
            purpose="stolen vehicles on the corridor",
            starts_at=now + timedelta(days=days[0]),
            ends_at=now + timedelta(days=days[1]),
            special_detail=special,
            status=DeploymentStatus.APPROVED.value if approved else DeploymentStatus.PENDING.value,
        )
        self.session.add(deployment)
        await self.session.flush()
        return deployment

    async def camera(
        self, deployment: Deployment | None, *, key: str, require_signature: bool = False
    ) -> Camera:
        """A camera with a known key."""
        camera = Camera(
            agency=PLATFORM_AGENCY,
            name=f"cam-{key[-6:]}",
            kind="fixed",
            deployment_id=deployment.id if deployment else None,
            key_hash=hash_camera_key(key),
            require_signature=require_signature,
        )
        self.session.add(camera)
        await self.session.flush()
        return camera

    async def partner(
        self,
        *,
        status: str = "active",
        data_classes: tuple[str, ...] = ("reads", "hits"),
        purposes: tuple[str, ...] = ("stolen_vehicle", "amber_alert"),
        lookback: int = 30,
    ) -> PartnerClient:
        """A partner client under an MOU with the platform's agency."""
        today = datetime.now(UTC).date()
        mou = MouRecord(
            owner_agency=PLATFORM_AGENCY,
            partner_agency=PARTNER_AGENCY,
            status=status,
            data_classes=list(data_classes),
            purposes=list(purposes),
            max_lookback_days=lookback,
            signed_on=today - timedelta(days=10),
            expires_on=today + timedelta(days=300),
        )
        self.session.add(mou)
        await self.session.flush()
        client = PartnerClient(
            client_id=f"nv-{mou.id.hex[:8]}",
            secret_hash=hash_password("partner-secret-value"),
            agency=PARTNER_AGENCY,
            mou_id=mou.id,
        )
        self.session.add(client)
        await self.session.flush()
        return client


def gateway_settings(**overrides: Any) -> Settings:
    """Settings of a gateway under test (environment from ``service_env``)."""
    return Settings(agency=PLATFORM_AGENCY, gateway_outbox_flush_s=0.2, **overrides)


@pytest.fixture
async def audit_spy(service_env: dict[str, str]) -> AsyncIterator[AuditSpy]:
    """The audit peer, observed."""
    real = _real_audit_app()
    if real is None:
        app = _audit_contract_app()
        app.state.context_verifier = context_keys(Settings(), "audit")[1]
        yield AuditSpy(httpx.ASGITransport(app=app))
        return
    async with real.router.lifespan_context(real):
        yield AuditSpy(httpx.ASGITransport(app=real))


async def open_gateway(
    settings: Settings, session: AsyncSession, audit_spy: AuditSpy
) -> AsyncIterator[Gateway]:
    """Run a gateway app wired to the test database session and the peers."""
    app = create_app(settings)
    transports: dict[str, httpx.AsyncBaseTransport] = {"audit-log": audit_spy}
    for name in ("recognition", "hotlist", "audit"):
        upstream = upstream_app(name)
        upstream.state.context_verifier = context_keys(settings, name)[1]
        transports[name] = httpx.ASGITransport(app=upstream)
    app.state.upstream_transports = transports
    async with app_client(app, session) as client:
        yield Gateway(app, client, session, audit_spy, settings)


@pytest.fixture
async def gateway(
    service_env: dict[str, str], session: AsyncSession, audit_spy: AuditSpy
) -> AsyncIterator[Gateway]:
    """The gateway with default test settings."""
    async for opened in open_gateway(gateway_settings(), session, audit_spy):
        yield opened


def problem(response: httpx.Response) -> dict[str, Any]:
    """The problem body of a refused request."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    return body


def refused_fields(response: httpx.Response, status: int = 422) -> set[str]:
    """The fields a refusal names, once it is checked to be a ``status`` problem."""
    assert response.status_code == status, response.text
    return {error["field"] for error in problem(response).get("errors") or []}


def user_id_of(event: dict[str, Any]) -> UUID:
    """The subject id of an event as a UUID."""
    return UUID(event["subject_id"])
