"""The session dependency commits on success and rolls back on error (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

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


async def _first_response(app: FastAPI, path: str, on_start: Any) -> int:
    """POST ``path`` straight through ASGI; the status the client sees first.

    ``on_start`` is called when the response starts.

    httpx's ASGI transport only answers once the app has returned, so it cannot see what a
    client over a socket sees: the status line leaving before the app has finished.
    """
    status = 0
    received = False

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:
            return {"type": "http.disconnect"}
        received = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start" and not status:
            status = message["status"]
            await on_start()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    try:
        await app(scope, receive, send)
    except Exception:  # the server answers 500, unless a status already left
        return status or 500
    return status


async def test_a_success_is_committed_before_the_response_leaves(
    engine: AsyncEngine, scratch_table: str
) -> None:
    """A client that has its answer can read what it wrote (no commit racing the response)."""
    app = FastAPI()
    install_problem_handlers(app)
    app.state.sessionmaker = build_sessionmaker(engine)

    @app.post("/notes/{note}", status_code=201)
    async def add(note: str, session: SessionDep) -> dict[str, str]:
        await session.execute(text(f"INSERT INTO {scratch_table} VALUES (:n)"), {"n": note})
        return {"note": note}

    seen: list[list[str]] = []

    async def look() -> None:
        async with engine.connect() as connection:
            rows = await connection.execute(text(f"SELECT note FROM {scratch_table}"))
            seen.append(list(rows.scalars()))

    assert await _first_response(app, "/notes/kept", look) == 201
    assert seen == [["kept"]]


async def test_a_commit_that_fails_is_answered_as_an_error(engine: AsyncEngine) -> None:
    """A constraint checked at commit refuses the request instead of a success for nothing."""
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE TABLE IF NOT EXISTS public.scratch_deferred "
                "(note text UNIQUE DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await connection.execute(text("TRUNCATE public.scratch_deferred"))
    try:
        app = FastAPI()
        install_problem_handlers(app)
        app.state.sessionmaker = build_sessionmaker(engine)

        @app.post("/notes/{note}", status_code=201)
        async def add(note: str, session: SessionDep) -> dict[str, str]:
            insert = text("INSERT INTO public.scratch_deferred VALUES (:n)")
            await session.execute(insert, {"n": note})
            await session.execute(insert, {"n": note})  # only refused when committing
            return {"note": note}

        async def nothing() -> None:
            return None

        # A unique key taken meanwhile is a conflict with what is stored (409), not a 500.
        assert await _first_response(app, "/notes/twice", nothing) == 409
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM public.scratch_deferred"))
        assert count == 0
    finally:
        async with engine.begin() as connection:
            await connection.execute(text("DROP TABLE public.scratch_deferred"))


def test_urls_are_normalised_and_redacted() -> None:
    assert async_url("postgresql://u:p@h:5/db") == "postgresql+asyncpg://u:p@h:5/db"
    assert redact_url("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"
