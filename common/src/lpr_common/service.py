"""The frame of every service: lifespan, health and readiness, errors, telemetry."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from lpr_common.audit_client import AuditClient
from lpr_common.body_digest import DigestBody
from lpr_common.context import (
    CONTEXT_KEY_NAME,
    ContextSigner,
    ContextVerifier,
    service_context_auth,
    service_key_name,
)
from lpr_common.db import build_engine, build_sessionmaker, check_database
from lpr_common.errors import PROBLEM_RESPONSES, LprError, install_problem_handlers
from lpr_common.http import build_client
from lpr_common.keys import load_ed25519_public, load_or_create_ed25519
from lpr_common.nul import RefuseNul
from lpr_common.settings import LprSettings
from lpr_common.telemetry import instrument_app, instrument_engine, setup_tracing

_logger = logging.getLogger(__name__)

LifespanHook = Callable[[FastAPI], AbstractAsyncContextManager[None]]


class Health(BaseModel):
    """Liveness or readiness answer."""

    status: str
    service: str
    checks: dict[str, str] = {}


def service_signer(keys_dir: Path, service: str) -> ContextSigner:
    """``service``'s own signer for the calls it makes as itself (key made at first start)."""
    return ContextSigner(load_or_create_ed25519(keys_dir, service_key_name(service)))


class ServiceKeys:
    """The services' public keys, read from the keys directory when first needed.

    Read lazily because the services start in any order: a key that is not there yet is
    looked for again on the next call.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._keys: dict[str, Ed25519PublicKey] = {}

    def __call__(self, service: str) -> Ed25519PublicKey | None:
        key = self._keys.get(service)
        if key is None:
            path = self._directory / f"{service_key_name(service)}.pub.pem"
            if not path.exists():
                return None
            key = self._keys[service] = load_ed25519_public(path)
        return key


def gateway_public_key(settings: LprSettings) -> Ed25519PublicKey:
    """The public half of the gateway's context key.

    Outside production a missing key pair is created (one data directory serves every
    service there); in production the public key must have been provisioned.
    """
    path = settings.keys_dir / f"{CONTEXT_KEY_NAME}.pub.pem"
    if path.exists():
        return load_ed25519_public(path)
    if settings.environment == "production":
        raise RuntimeError(
            f"{path} is missing: provision the gateway's public context key "
            "(k8s/README.md, Secrets)"
        )
    return load_or_create_ed25519(settings.keys_dir, CONTEXT_KEY_NAME).public_key()


def context_keys(settings: LprSettings, service: str) -> tuple[ContextSigner, ContextVerifier]:
    """``service``'s own signer, and the verifier of the contexts it receives."""
    verifier = ContextVerifier(
        gateway_public_key(settings),
        max_age=timedelta(seconds=settings.context_max_age_s),
        service_keys=ServiceKeys(settings.keys_dir),
        # Every signer in production states the body (the gateway, ContextAuth); a context
        # without it is one a test minted, or one to refuse.
        require_body_digest=settings.environment == "production",
    )
    return service_signer(settings.keys_dir, service), verifier


def peer_url(settings: LprSettings, peer: str) -> str:
    """Base URL of a peer service by its short name (gateway, recognition, hotlist, audit)."""
    url: str = getattr(settings, f"{peer}_url")
    return url


async def _check_peer(client: httpx.AsyncClient) -> str:
    try:
        response = await client.get("/healthz", timeout=2.0)
    except httpx.HTTPError as exc:
        return f"unreachable: {type(exc).__name__}"
    return "ok" if response.status_code == 200 else f"status {response.status_code}"


def create_service_app(
    *,
    name: str,
    title: str,
    description: str,
    settings: LprSettings,
    routers: Sequence[APIRouter] = (),
    peers: Sequence[str] = (),
    lifespan_hooks: Sequence[LifespanHook] = (),
    readiness_checks: Sequence[Callable[[FastAPI], Any]] = (),
    openapi_tags: list[dict[str, Any]] | None = None,
    refuse_nul: bool = True,
) -> FastAPI:
    """Build a service app: engine, peers and hooks opened in the lifespan, closed after.

    Args:
        name: short service name (also the OpenTelemetry service name).
        title: OpenAPI title.
        description: OpenAPI description.
        settings: the service's settings.
        routers: the domain routers.
        peers: peer services this one calls; their clients land in ``app.state.peers``
            and their health is part of readiness.
        lifespan_hooks: extra async context managers entered after the engine is built.
        readiness_checks: async callables raising :class:`LprError` when not ready.
        openapi_tags: OpenAPI tag descriptions.
        refuse_nul: answer 422 to a request holding U+0000 in a text field
            (:mod:`lpr_common.nul`); the gateway screens in its guard instead, audited.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Spans cost every request a few hundred microseconds per hop (ASGI, httpx and
        # SQL spans); with nowhere to export them they would be built only to be dropped.
        tracing = bool(settings.otlp_endpoint) or settings.otel_console
        engine = build_engine(settings.database_url, pool_size=settings.database_pool_size)
        if tracing:
            provider = setup_tracing(
                f"lpr-{name}", otlp_endpoint=settings.otlp_endpoint, console=settings.otel_console
            )
            instrument_app(app, provider)
            instrument_engine(engine, provider)
        app.state.settings = settings
        app.state.engine = engine
        app.state.sessionmaker = build_sessionmaker(engine)
        signer, verifier = context_keys(settings, name)
        app.state.service_signer = signer
        app.state.context_verifier = verifier
        if name == "gateway":
            # Only the gateway holds the key that signs users', partners' and cameras'
            # contexts; the other services hold its public half.
            app.state.context_signer = ContextSigner(
                load_or_create_ed25519(settings.keys_dir, CONTEXT_KEY_NAME)
            )
        # Peer clients sign a service context on every call they make.
        app.state.peers = {
            peer: build_client(peer_url(settings, peer), auth=service_context_auth(signer, name))
            for peer in peers
        }
        if "audit" in app.state.peers:
            app.state.audit = AuditClient(app.state.peers["audit"])
        async with AsyncExitStack() as stack:
            for peer_client in app.state.peers.values():
                stack.push_async_callback(peer_client.aclose)
            stack.push_async_callback(engine.dispose)
            for hook in lifespan_hooks:
                await stack.enter_async_context(hook(app))
            # What start-up built (modules, the app, models, policy) lives as long as the
            # process: moved out of the collector's reach, a full collection no longer
            # walks it in the middle of someone's request. Once per process: a process
            # that starts many apps (the tests) would otherwise never free the old ones.
            if gc.get_freeze_count() == 0:
                gc.collect()
                gc.freeze()
            yield

    app = FastAPI(
        title=title,
        description=description,
        version="0.1.0",
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
        openapi_tags=openapi_tags,
    )
    install_problem_handlers(app)
    if refuse_nul:
        app.add_middleware(RefuseNul)
    # Outside RefuseNul (which reads JSON and form bodies whole): the digest of the body a
    # signed context is checked against is taken as the body first streams in.
    app.add_middleware(DigestBody)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> Health:
        """Report that the process is alive."""
        return Health(status="alive", service=name)

    @app.get("/readyz", tags=["health"], response_model=Health)
    async def readyz(request: Request) -> JSONResponse:
        """Report whether the database and the peers this service needs answer."""
        checks: dict[str, str] = {}
        try:
            await check_database(request.app.state.engine)
            checks["database"] = "ok"
        except LprError as exc:
            checks["database"] = exc.detail or "unavailable"
        peer_clients: dict[str, httpx.AsyncClient] = request.app.state.peers
        results = await asyncio.gather(*(_check_peer(c) for c in peer_clients.values()))
        checks.update(dict(zip(peer_clients, results, strict=True)))
        for check in readiness_checks:
            check_name = getattr(check, "__name__", "check")
            try:
                await check(request.app)
                checks[check_name] = "ok"
            except LprError as exc:
                checks[check_name] = exc.detail or "not ready"
        ready = all(value == "ok" for value in checks.values())
        body = Health(status="ready" if ready else "not ready", service=name, checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ready else 503)

    for router in routers:
        app.include_router(router)
    return app
