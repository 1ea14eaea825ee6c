"""SQL of the hot-list domain. Functions only flush; the request's session commits."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_hotlist.hotlists.models import (
    HotList,
    HotListConfig,
    HotListEntry,
    HotListVersion,
    ManualEntry,
    ShiftCheck,
)
from lpr_hotlist.live_index import HOTLIST_CHANNEL
from lpr_hotlist.settings import SCHEMA

COPY_BATCH = 20_000


async def get_list(
    session: AsyncSession, list_id: UUID, *, for_update: bool = False
) -> HotList | None:
    """A list by id."""
    query = select(HotList).where(col(HotList.id) == list_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_list_by_name(session: AsyncSession, *, agency: str, name: str) -> HotList | None:
    """A list of an agency by name."""
    query = select(HotList).where(col(HotList.agency) == agency, col(HotList.name) == name)
    return (await session.execute(query)).scalar_one_or_none()


async def lists_of(session: AsyncSession, agency: str) -> Sequence[HotList]:
    """Every list of an agency, by name."""
    query = select(HotList).where(col(HotList.agency) == agency).order_by(col(HotList.name))
    return (await session.execute(query)).scalars().all()


async def get_config(session: AsyncSession, *, for_update: bool = False) -> HotListConfig:
    """The one configuration row."""
    query = select(HotListConfig).where(col(HotListConfig.id) == 1)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one()


async def bump_generation(session: AsyncSession) -> int:
    """Raise the index generation and notify every replica once this transaction commits.

    The row lock it takes serialises concurrent changes of lists until commit.
    """
    generation = (
        await session.execute(
            update(HotListConfig)
            .where(col(HotListConfig.id) == 1)
            .values(generation=col(HotListConfig.generation) + 1)
            .returning(col(HotListConfig.generation))
        )
    ).scalar_one()
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": HOTLIST_CHANNEL, "payload": str(generation)},
    )
    return int(generation)


async def entries_of_version(
    session: AsyncSession, version_id: UUID, *, limit: int | None = None, offset: int = 0
) -> Sequence[HotListEntry]:
    """Entries of one version, in file order."""
    query = (
        select(HotListEntry)
        .where(col(HotListEntry.version_id) == version_id)
        .order_by(col(HotListEntry.source_line), col(HotListEntry.plate), col(HotListEntry.id))
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    return (await session.execute(query)).scalars().all()


async def count_entries(session: AsyncSession, version_id: UUID) -> int:
    """How many entries a version has."""
    query = (
        select(func.count())
        .select_from(HotListEntry)
        .where(col(HotListEntry.version_id) == version_id)
    )
    return int((await session.execute(query)).scalar_one())


async def entry_keys_of_version(
    session: AsyncSession, version_id: UUID | None
) -> list[tuple[str | None, str | None, str | None]]:
    """``(plate, state, pattern)`` of every entry of a version (none for no version)."""
    if version_id is None:
        return []
    query = select(
        col(HotListEntry.plate), col(HotListEntry.state), col(HotListEntry.pattern)
    ).where(col(HotListEntry.version_id) == version_id)
    return [(row[0], row[1], row[2]) for row in (await session.execute(query)).all()]


_ENTRY_COLUMNS = tuple(column.name for column in HotListEntry.__table__.columns)  # type: ignore[attr-defined]


async def insert_entries(
    session: AsyncSession,
    rows: Sequence[dict[str, Any]],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Insert entry rows with ``COPY`` in batches, reporting progress after each batch.

    ``COPY`` runs on the session's own connection, so the rows belong to its transaction.
    """
    if not rows:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    for start in range(0, len(rows), COPY_BATCH):
        batch = rows[start : start + COPY_BATCH]
        records = [
            tuple(
                json.dumps(row[name]) if name == "annotations" and row.get(name) else row.get(name)
                for name in _ENTRY_COLUMNS
            )
            for row in batch
        ]
        await driver.copy_records_to_table(
            HotListEntry.__tablename__,
            schema_name=SCHEMA,
            columns=_ENTRY_COLUMNS,
            records=records,
        )
        if progress is not None:
            progress(len(batch))


async def versions_of(session: AsyncSession, list_id: UUID) -> Sequence[HotListVersion]:
    """Every version of a list, newest first."""
    query = (
        select(HotListVersion)
        .where(col(HotListVersion.list_id) == list_id)
        .order_by(col(HotListVersion.number).desc())
    )
    return (await session.execute(query)).scalars().all()


async def version_by_number(
    session: AsyncSession, list_id: UUID, number: int
) -> HotListVersion | None:
    """One version of a list by its number."""
    query = select(HotListVersion).where(
        col(HotListVersion.list_id) == list_id,
        col(HotListVersion.number) == number,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def version_at(session: AsyncSession, list_id: UUID, seq: int) -> HotListVersion | None:
    """The version of a list that was current at generation ``seq``."""
    query = (
        select(HotListVersion)
        .where(col(HotListVersion.list_id) == list_id, col(HotListVersion.seq) <= seq)
        .order_by(col(HotListVersion.seq).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def version_by_id(session: AsyncSession, version_id: UUID) -> HotListVersion | None:
    """A version by id."""
    return await session.get(HotListVersion, version_id)


async def active_manual_entries(
    session: AsyncSession, list_id: UUID, now: datetime
) -> Sequence[ManualEntry]:
    """Manual entries of a list not removed and not yet expired."""
    query = (
        select(ManualEntry)
        .where(
            col(ManualEntry.list_id) == list_id,
            col(ManualEntry.removed_at).is_(None),
            col(ManualEntry.expires_at) > now,
        )
        .order_by(col(ManualEntry.created_at))
    )
    return (await session.execute(query)).scalars().all()


async def manual_entries_of(session: AsyncSession, list_id: UUID) -> Sequence[ManualEntry]:
    """Every manual entry of a list, removed ones included, newest first."""
    query = (
        select(ManualEntry)
        .where(col(ManualEntry.list_id) == list_id)
        .order_by(col(ManualEntry.created_at).desc())
    )
    return (await session.execute(query)).scalars().all()


async def latest_shift_check(
    session: AsyncSession,
    *,
    agency: str,
    since: datetime,
    unit_id: str | None = None,
    camera_id: str | None = None,
    user_id: str | None = None,
) -> ShiftCheck | None:
    """The latest shift check of a unit, camera or user since a time."""
    conditions = []
    if unit_id is not None:
        conditions.append(col(ShiftCheck.unit_id) == unit_id)
    if camera_id is not None:
        conditions.append(col(ShiftCheck.camera_id) == camera_id)
    if user_id is not None:
        conditions.append(col(ShiftCheck.user_id) == user_id)
    if not conditions:
        return None
    query = (
        select(ShiftCheck)
        .where(
            col(ShiftCheck.agency) == agency,
            col(ShiftCheck.checked_at) >= since,
            or_(*conditions),
        )
        .order_by(col(ShiftCheck.checked_at).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def shift_checks_of(
    session: AsyncSession, *, agency: str, stale: bool | None, limit: int
) -> Sequence[ShiftCheck]:
    """An agency's shift checks, newest first."""
    query = select(ShiftCheck).where(col(ShiftCheck.agency) == agency)
    if stale is not None:
        query = query.where(col(ShiftCheck.stale) == stale)
    query = query.order_by(col(ShiftCheck.checked_at).desc()).limit(limit)
    return (await session.execute(query)).scalars().all()
