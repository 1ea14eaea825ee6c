"""Queries over the chain tables by their indexed columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_audit.ledger.repository import _fields
from lpr_audit.ledger.tables import AccessEvent, DisseminationEntry

ACCESS_TABLE = cast(Table, AccessEvent.__table__)  # type: ignore[attr-defined]
DISSEMINATION_TABLE = cast(Table, DisseminationEntry.__table__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A row of a chain table."""

    seq: int
    prev_hash: str
    hash: str
    fields: dict[str, Any]


async def page(
    session: AsyncSession,
    table: Table,
    *,
    equals: dict[str, Any],
    start: datetime | None,
    end: datetime | None,
    after_seq: int | None,
    limit: int,
) -> list[StoredEntry]:
    """Return up to ``limit`` rows matching every filter, in seq order after ``after_seq``."""
    conditions: list[ColumnElement[bool]] = []
    for name, value in equals.items():
        if value is not None:
            conditions.append(table.c[name] == value)
    if start is not None:
        conditions.append(table.c.occurred_at >= start)
    if end is not None:
        conditions.append(table.c.occurred_at < end)
    if after_seq is not None:
        conditions.append(table.c.seq > after_seq)
    statement = (
        select(table.c.seq, table.c.prev_hash, table.c.hash, table.c.fields)
        .where(*conditions)
        .order_by(table.c.seq)
        .limit(limit)
    )
    result = await session.execute(statement)
    return [StoredEntry(int(r[0]), r[1], r[2], _fields(r[3])) for r in result]


@dataclass(frozen=True, slots=True)
class SearchRow:
    """What the misuse rules need of one request."""

    subject_id: str
    action: str | None
    outcome: str
    case_number: str | None
    plate: str | None
    occurred_at: datetime


async def decisions(session: AsyncSession, start: datetime, end: datetime) -> list[SearchRow]:
    """Return the gateway's user decisions (``access.decision``) in ``[start, end)``."""
    table = ACCESS_TABLE
    statement = (
        select(
            table.c.subject_id,
            table.c.action,
            table.c.outcome,
            table.c.case_number,
            table.c.plate,
            table.c.occurred_at,
        )
        .where(
            table.c.event_type == "access.decision",
            table.c.subject_id.is_not(None),
            table.c.fields["subject_kind"].astext == "user",
            table.c.occurred_at >= start,
            table.c.occurred_at < end,
        )
        .order_by(table.c.seq)
    )
    result = await session.execute(statement)
    return [SearchRow(r[0], r[1], r[2], r[3], r[4], r[5]) for r in result]
