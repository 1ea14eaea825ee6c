"""Fixtures of the hot-list service tests: the app, signed contexts, a recording audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_hotlist.app import create_app
from lpr_hotlist.settings import Settings
from lpr_hotlist.testing import Api, AuditLog, use_audit_log
from lprctl.pytest_plugin import app_client


@pytest.fixture
def settings(service_env: dict[str, str]) -> Settings:
    """Settings pointing at the test database and data directory."""
    # No background flush of the audit outbox: a test flushes by hand, and rows another
    # suite committed to the shared database are not sent to this test's audit log.
    return Settings(hotlist_stream_poll_s=0.2, hotlist_audit_outbox_flush_s=3600)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """A fresh hot-list app."""
    return create_app(settings)


@pytest.fixture
def audit_log() -> AuditLog:
    """What the app records in the audit log during a test."""
    return AuditLog()


@pytest.fixture
async def client(
    app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client whose writes are rolled back after the test."""
    async with app_client(app, session) as running:
        use_audit_log(app, audit_log)
        yield running


@pytest.fixture
def api(client: httpx.AsyncClient) -> Api:
    """The API helper over the rolled-back client."""
    return Api(client)
