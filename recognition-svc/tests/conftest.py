"""Fixtures of the reads tests: the app, a camera's signed context, small real images."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import CONTEXT_KEY_NAME, ContextSigner
from lpr_common.keys import load_or_create_ed25519
from lpr_common.migrations import upgrade
from lpr_recognition.app import create_app
from lpr_recognition.settings import SCHEMA, Settings
from lpr_recognition.testing import Camera
from lprctl.pytest_plugin import app_client


@pytest.fixture
def signer(service_env: dict[str, str]) -> ContextSigner:
    """The platform's context signer (the key the app verifies with)."""
    settings = Settings()
    return ContextSigner(load_or_create_ed25519(settings.keys_dir, CONTEXT_KEY_NAME))


@pytest.fixture
def camera(signer: ContextSigner) -> Camera:
    """A fresh camera."""
    return Camera(camera_id=str(uuid.uuid4()), signer=signer, deployment_id=str(uuid.uuid4()))


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    """An empty blob directory for one test."""
    return tmp_path / "blobs"


@pytest.fixture
def make_settings(service_env: dict[str, str], blob_dir: Path) -> Callable[..., Settings]:
    """Settings of an ingest-only app (no Triton, no workers) with overrides."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "recognition_enabled": False,
            "workers_enabled": False,
            "blob_dir_override": blob_dir,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
async def client(
    session: AsyncSession, make_settings: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of an ingest-only app whose writes roll back with the test."""
    async with app_client(create_app(make_settings()), session) as http:
        yield http


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def isolated_database_url(migrated_database_url: str) -> Iterator[str]:
    """A database of its own, for tests whose workers commit and claim any due read.

    The shared test database may hold reads of a running whole stack, whose workers
    would compete with the worker under test.
    """
    name = f"lpr_reads_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(migrated_database_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    asyncio.run(_admin(migrated_database_url, f'CREATE DATABASE "{name}"'))
    upgrade("lpr_recognition", SCHEMA, url)
    yield url
    asyncio.run(_admin(migrated_database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))
