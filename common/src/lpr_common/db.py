"""The async database layer: SQLModel on asyncpg, one schema per service.

The session dependency owns the transaction: it commits when the request succeeds and
rolls back when it fails. Repositories only ``flush``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import Depends, Request
from sqlalchemy import MetaData, text
from sqlalchemy.exc import SQLAlchemyError
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


def build_engine(url: str, *, pool_size: int = 10, **kwargs: Any) -> AsyncEngine:
    """Build the service's engine (call it in the lifespan, never at import time)."""
    return create_async_engine(
        async_url(url), pool_size=pool_size, pool_pre_ping=True, max_overflow=pool_size, **kwargs
    )


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
    """Yield a session for one request: commit on success, roll back on error."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with factory() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session)]
