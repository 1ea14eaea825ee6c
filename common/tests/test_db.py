"""The session dependency commits on success and rolls back on error (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lpr_common.db import SessionDep, async_url, build_sessionmaker, redact_url
from lpr_common.errors import InvalidInput, install_problem_handlers
from lprctl.pytest_plugin import app_client


@pytest.fixture
async def scratch_table(engine: AsyncEngine) -> AsyncIterator[str]:
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE IF NOT EXISTS public.scratch (note text)"))
        await connection.execute(text("TRUNCATE public.scratch"))
    yield "public.scratch"
    async with engine.begin() as connection:
        await connection.execute(text("DROP TABLE public.scratch"))


async def test_session_commits_on_success_and_rolls_back_on_error(
    engine: AsyncEngine, scratch_table: str
) -> None:
    app = FastAPI()
    install_problem_handlers(app)
    app.state.sessionmaker = build_sessionmaker(engine)

    @app.post("/notes/{note}")
    async def add(note: str, session: SessionDep) -> dict[str, str]:
        await session.execute(text(f"INSERT INTO {scratch_table} VALUES (:n)"), {"n": note})
        if note == "bad":
            raise InvalidInput.field("note", "refused after the insert")
        return {"note": note}

    async with app_client(app) as client:
        assert (await client.post("/notes/good")).status_code == 200
        assert (await client.post("/notes/bad")).status_code == 422
    async with engine.connect() as connection:
        notes = (
            (await connection.execute(text(f"SELECT note FROM {scratch_table}"))).scalars().all()
        )
    assert notes == ["good"]


def test_urls_are_normalised_and_redacted() -> None:
    assert async_url("postgresql://u:p@h:5/db") == "postgresql+asyncpg://u:p@h:5/db"
    assert redact_url("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"
