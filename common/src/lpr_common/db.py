"""The async database layer: SQLModel on asyncpg, one schema per service.

The session dependency owns the transaction: it commits when the request succeeds and
rolls back when it fails. Repositories only ``flush``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy import MetaData, event, text
from sqlalchemy.exc import DisconnectionError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlmodel import SQLModel

from lpr_common.errors import ServiceUnavailable

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every service's tables hang off SQLModel's one metadata, each in its own schema.
SQLModel.metadata.naming_convention = NAMING_CONVENTION


def service_metadata(schema: str) -> MetaData:
    """Return a metadata view holding only the tables of one service's schema."""
    view = MetaData(naming_convention=NAMING_CONVENTION, schema=schema)
    for table in SQLModel.metadata.tables.values():
        if table.schema == schema:
            table.to_metadata(view)
    return view


def async_url(url: str) -> str:
    """Turn a ``postgresql://`` URL into the asyncpg dialect SQLAlchemy needs."""
    parts = urlsplit(url)
    scheme = parts.scheme
    if scheme in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}:
        scheme = "postgresql+asyncpg"
    return urlunsplit((scheme, parts.netloc, parts.path, parts.query, parts.fragment))


def plain_url(url: str) -> str:
    """Turn a SQLAlchemy URL back into the ``postgresql://`` form asyncpg accepts."""
    parts = urlsplit(url)
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def redact_url(url: str) -> str:
    """Hide the password of a database URL for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


PING_AFTER_IDLE_S = 5.0
"""A pooled connection idle longer than this is pinged before it is handed out again."""


def _check_liveness(engine: AsyncEngine, ping_after_idle_s: float) -> None:
    """Hand out only live connections, without a round trip for connections in steady use.

    SQLAlchemy's ``pool_pre_ping`` costs three round trips on asyncpg (BEGIN, a query,
    ROLLBACK) at every checkout, which is most of a short request's database time. A
    connection the server closed (restart, idle timeout) is seen as closed by asyncpg
    without a round trip; one that sat idle for a while is pinged as before. A dead one
    raises ``DisconnectionError``, and the pool replaces it with a fresh connection.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync_engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise DisconnectionError("connection closed by the server")
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < ping_after_idle_s:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("connection failed its ping") from exc


def build_engine(
    url: str, *, pool_size: int = 10, ping_after_idle_s: float = PING_AFTER_IDLE_S, **kwargs: Any
) -> AsyncEngine:
    """Build the service's engine (call it in the lifespan, never at import time)."""
    engine = create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, **kwargs
    )
    _check_liveness(engine, ping_after_idle_s)
    return engine


def build_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Build the session factory bound to an engine."""
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_database(engine: AsyncEngine) -> None:
    """Raise :class:`ServiceUnavailable` unless the database answers."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        raise ServiceUnavailable(f"database unavailable: {type(exc).__name__}") from exc


SessionFactory = Callable[[], AsyncSession]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session for one request: commit on success, roll back on error.

    Used through :data:`SessionDep`, whose ``scope="function"`` commits before the response
    is sent: a client that has its 201 can read what it created, and a failed commit is
    answered as an error instead of after a success already sent.
    """
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


# FastAPI's default ("request") scope runs the commit after the response has gone out.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
