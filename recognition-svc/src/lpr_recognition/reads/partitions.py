"""Daily partitions of ``reads`` and ``plates``, made on demand.

A read can arrive for any day (cameras upload a backlog after an outage), so the partition
for a capture day is created, if missing, just before the first read of that day is
inserted. Partitions are named ``<table>_pYYYYMMDD`` and cover one UTC day, which is what
retention (dropping whole days) and search (pruning by time range) rely on.

Creation runs on its own connection and commits at once: the DDL then never rolls back
with a refused request, and it does not hold locks on the parent table for the length of
the request's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from lpr_recognition.settings import SCHEMA

PARTITIONED_TABLES = ("reads", "plates")  # parents before children: plates references reads
# Serialises partition creation across processes (an arbitrary constant of this service).
_LOCK_KEY = 0x4C50_5201


def capture_day(captured_at: datetime) -> date:
    """The UTC day whose partition holds a read captured at ``captured_at``."""
    return captured_at.astimezone(UTC).date()


def partition_name(table: str, day: date) -> str:
    """``reads_p20261129`` for ``reads`` on 2026-11-29."""
    return f"{table}_p{day:%Y%m%d}"


async def _missing(connection: AsyncConnection, days: Iterable[date]) -> list[date]:
    wanted = sorted(set(days))
    names = [f"{SCHEMA}.{partition_name(t, d)}" for d in wanted for t in PARTITIONED_TABLES]
    result = await connection.execute(
        text(
            "SELECT name FROM unnest(CAST(:names AS text[])) AS name WHERE to_regclass(name) IS NULL"
        ),
        {"names": names},
    )
    absent = {row[0] for row in result}
    return [
        d
        for d in wanted
        if any(f"{SCHEMA}.{partition_name(t, d)}" in absent for t in PARTITIONED_TABLES)
    ]


async def ensure_partitions(engine: AsyncEngine, days: Iterable[date]) -> None:
    """Make sure the partitions of every day in ``days`` exist (idempotent, concurrency-safe)."""
    async with engine.connect() as connection:
        missing = await _missing(connection, days)
        await connection.rollback()
        if not missing:
            return
        try:
            async with connection.begin():
                await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
                await connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}
                )
                for day in missing:
                    start = datetime.combine(day, time(), tzinfo=UTC)
                    end = start + timedelta(days=1)
                    for table in PARTITIONED_TABLES:
                        await connection.execute(
                            text(
                                f'CREATE TABLE IF NOT EXISTS "{SCHEMA}"."{partition_name(table, day)}" '
                                f'PARTITION OF "{SCHEMA}"."{table}" '
                                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                            )
                        )
        except DBAPIError:
            # Another process may have made them between our check and our lock.
            if await _missing(connection, missing):
                raise
