"""Fixtures of the audit service tests: the app, signed contexts, the checkpoint key."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from lpr_audit.app import create_app
from lpr_audit.chain import load_or_create_checkpoint_key
from lpr_audit.settings import Settings
from lpr_common.context import CONTEXT_HEADER, CONTEXT_KEY_NAME, ContextSigner, RequestContext
from lpr_common.keys import key_id, load_or_create_ed25519
from lpr_common.service import service_signer
from lprctl.pytest_plugin import app_client

ContextHeaders = Callable[..., dict[str, str]]


@pytest.fixture
def audit_settings(service_env: dict[str, str]) -> Settings:
    """Settings pointing at the test database and data directory."""
    return Settings()


@pytest.fixture
def checkpoint_key(audit_settings: Settings) -> Ed25519PrivateKey:
    """The checkpoint signing key the service uses."""
    return load_or_create_checkpoint_key(audit_settings.keys_dir)


@pytest.fixture(autouse=True)
async def _only_this_suites_checkpoints(
    engine: AsyncEngine, checkpoint_key: Ed25519PrivateKey
) -> None:
    """Remove checkpoints that other suites' services signed with keys of their own.

    The test session shares one database: an audit-svc started by another suite (with its
    own data directory) may have signed a checkpoint over the chain's tail. This service
    rightly refuses to export or verify past a checkpoint by a key it does not trust, so
    a range next to that tail would fail for a reason outside the test. Production has
    one set of keys; tests that check foreign keys sign their own checkpoints.
    """
    trusted = key_id(checkpoint_key.public_key())
    async with engine.begin() as connection:
        # The log's tables refuse deletes (append-only triggers); a fixture may go round them.
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(
            text("DELETE FROM audit.checkpoints WHERE key_id <> :trusted"), {"trusted": trusted}
        )


@pytest.fixture
def context_headers(audit_settings: Settings) -> ContextHeaders:
    """Mint the signed context header the gateway would send for one request."""
    signer = ContextSigner(load_or_create_ed25519(audit_settings.keys_dir, CONTEXT_KEY_NAME))

    def mint(
        method: str,
        path: str,
        *,
        roles: tuple[str, ...] = ("auditor",),
        subject_id: str = "auditor-1",
        kind: str = "user",
        agency: str = "CA0010000",
    ) -> dict[str, str]:
        context = RequestContext.model_validate(
            {
                "subject_kind": kind,
                "subject_id": subject_id,
                "agency": agency,
                "roles": list(roles),
                "method": method,
                "path": path,
                "issued_at": datetime.now(UTC),
            }
        )
        # A service signs as itself (its own key); everyone else's context is the gateway's.
        chosen = (
            service_signer(audit_settings.keys_dir, subject_id) if kind == "service" else signer
        )
        return {CONTEXT_HEADER: chosen.sign(context)}

    return mint


@pytest.fixture
def service_headers(context_headers: ContextHeaders) -> Callable[[str, str], dict[str, str]]:
    """Mint the context another platform service sends on internal calls."""

    def mint(method: str, path: str) -> dict[str, str]:
        return context_headers(
            method, path, roles=("service",), subject_id="gateway", kind="service", agency="*"
        )

    return mint


@pytest.fixture
def app(audit_settings: Settings) -> FastAPI:
    """A fresh audit app."""
    return create_app(audit_settings)


@pytest.fixture
async def client(app: FastAPI, session: AsyncSession) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client; what requests write through the session is rolled back.

    Chain appends go through the service's own writer and are committed, as in production;
    tests use unique values so they do not see each other's records.
    """
    async with app_client(app, session) as running:
        yield running
