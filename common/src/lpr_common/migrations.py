"""Alembic, one history per service, driven from code.

Each service keeps ``src/lpr_<name>/migrations/`` with an ``env.py`` that calls
:func:`run_env` and date-stamped revision files. :func:`upgrade` applies them; it is what
``python -m lpr_<name>.migrate``, ``lprctl`` and the test fixtures call.
"""

from __future__ import annotations

import asyncio
from importlib import resources

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from lpr_common.db import async_url


def alembic_config(package: str, schema: str, database_url: str) -> Config:
    """Build the Alembic configuration of one service, with no ini file."""
    location = resources.files(package) / "migrations"
    config = Config()
    config.set_main_option("script_location", str(location))
    config.set_main_option("sqlalchemy.url", async_url(database_url).replace("%", "%%"))
    config.attributes["schema"] = schema
    return config


def upgrade(package: str, schema: str, database_url: str, revision: str = "head") -> None:
    """Apply a service's migrations up to ``revision`` (synchronous; no running loop)."""
    command.upgrade(alembic_config(package, schema, database_url), revision)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's ``env.py``: run the migrations online over asyncpg."""
    config = context.config
    schema: str = config.attributes["schema"]

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(config.get_main_option("sqlalchemy.url") or "")
        try:
            async with engine.begin() as connection:
                await connection.run_sync(do_run)
        finally:
            await engine.dispose()

    asyncio.run(run_async())
