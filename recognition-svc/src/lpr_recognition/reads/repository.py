"""SQL of the reads domain. Functions only ``flush``; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_recognition.reads.models import (
    OutboxKind,
    OutboxMessage,
    Plate,
    Read,
    ReadKey,
    ReadStatus,
)

_reads = Read.__table__  # type: ignore[attr-defined]
_plates = Plate.__table__  # type: ignore[attr-defined]
_keys = ReadKey.__table__  # type: ignore[attr-defined]
_outbox = OutboxMessage.__table__  # type: ignore[attr-defined]

# Rows per multi-row statement: far below PostgreSQL's 65535 bind parameters.
_ROWS_PER_STATEMENT = 1000


async def get_read_key(
    session: AsyncSession, *, camera_id: str, camera_read_id: str
) -> ReadKey | None:
    """The idempotency record of a camera's read id, if that id was seen."""
    return await session.get(ReadKey, (camera_id, camera_read_id))


async def claim_read_key(session: AsyncSession, key: ReadKey) -> bool:
    """Insert the idempotency record; False when the camera's read id is already taken."""
    values = key.model_dump(exclude={"created_at"})
    statement = (
        insert(_keys)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["camera_id", "camera_read_id"])
        .returning(_keys.c.read_id)
    )
    inserted = (await session.execute(statement)).scalar_one_or_none()
    return inserted is not None


async def get_read_keys(
    session: AsyncSession, *, camera_id: str, camera_read_ids: Sequence[str]
) -> dict[str, ReadKey]:
    """The idempotency records of those of a camera's read ids that were seen, by read id."""
    if not camera_read_ids:
        return {}
    result = await session.execute(
        select(ReadKey).where(
            col(ReadKey.camera_id) == camera_id,
            col(ReadKey.camera_read_id).in_(list(camera_read_ids)),
        )
    )
    return {key.camera_read_id: key for key in result.scalars()}


async def claim_read_keys(session: AsyncSession, keys: Sequence[ReadKey]) -> set[tuple[str, str]]:
    """Insert idempotency records; return the (camera, read id) pairs this call took.

    A pair missing from the answer was taken meanwhile (the same read posted concurrently).
    """
    claimed: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _ROWS_PER_STATEMENT):
        chunk = keys[start : start + _ROWS_PER_STATEMENT]
        statement = (
            insert(_keys)
            .values([key.model_dump(exclude={"created_at"}) for key in chunk])
            .on_conflict_do_nothing(index_elements=["camera_id", "camera_read_id"])
            .returning(_keys.c.camera_id, _keys.c.camera_read_id)
        )
        claimed.update((row[0], row[1]) for row in await session.execute(statement))
    return claimed


async def add_reads(session: AsyncSession, reads: Sequence[Read]) -> None:
    """Insert reads in one go (their days' partitions must exist)."""
    if reads:
        await session.execute(insert(_reads), [read.model_dump() for read in reads])


async def add_read(session: AsyncSession, read: Read) -> None:
    """Insert a read (its day's partition must exist)."""
    await session.execute(insert(_reads).values(**read.model_dump()))


async def add_plates(session: AsyncSession, plates: Sequence[Plate]) -> None:
    """Insert plates (of one read or of a batch) in one go."""
    if plates:
        await session.execute(insert(_plates), [plate.model_dump() for plate in plates])


async def add_outbox(
    session: AsyncSession,
    *,
    kind: OutboxKind,
    payload: dict[str, Any],
    now: datetime,
    read_id: UUID | None = None,
    captured_at: datetime | None = None,
) -> None:
    """Queue a message for another service, in the caller's transaction."""
    await session.execute(
        insert(_outbox).values(
            kind=kind.value,
            payload=payload,
            read_id=read_id,
            captured_at=captured_at,
            created_at=now,
            next_attempt_at=now,
        )
    )


async def add_outbox_messages(
    session: AsyncSession,
    messages: Sequence[tuple[OutboxKind, dict[str, Any], Read]],
    *,
    now: datetime,
) -> None:
    """Queue messages about reads (kind, payload, read) in one go, in the caller's transaction."""
    if not messages:
        return
    await session.execute(
        insert(_outbox),
        [
            {
                "kind": kind.value,
                "payload": payload,
                "read_id": read.id,
                "captured_at": read.captured_at,
                "created_at": now,
                "next_attempt_at": now,
            }
            for kind, payload, read in messages
        ],
    )


async def get_read(session: AsyncSession, read_id: UUID) -> Read | None:
    """A read by id (looked up in every partition: the id alone does not name the day)."""
    return (await session.execute(select(Read).where(_reads.c.id == read_id))).scalar_one_or_none()


async def read_statuses(
    session: AsyncSession, reads: Sequence[tuple[UUID, datetime]]
) -> dict[UUID, ReadStatus]:
    """The current status of reads given as ``(id, captured_at)`` (which names the partition).

    Selected as columns, not entities: a read this session loaded earlier must not answer
    with the status it had then.
    """
    statuses: dict[UUID, ReadStatus] = {}
    for start in range(0, len(reads), _ROWS_PER_STATEMENT):
        chunk = reads[start : start + _ROWS_PER_STATEMENT]
        result = await session.execute(
            select(_reads.c.id, _reads.c.status).where(
                tuple_(_reads.c.id, _reads.c.captured_at).in_(chunk)
            )
        )
        statuses.update((row[0], ReadStatus(row[1])) for row in result)
    return statuses


async def get_plates(session: AsyncSession, read: Read) -> list[Plate]:
    """The plates of a read, in index order."""
    result = await session.execute(
        select(Plate)
        .where(col(Plate.read_id) == read.id, col(Plate.captured_at) == read.captured_at)
        .order_by(Plate.plate_index)  # type: ignore[arg-type]
    )
    return list(result.scalars())


async def claim_due_reads(
    session: AsyncSession, *, limit: int, now: datetime, lease: timedelta
) -> list[Read]:
    """Take pending reads whose time has come, hiding them from other workers for ``lease``.

    ``SKIP LOCKED`` lets several workers (or replicas) claim side by side; the lease
    (``next_attempt_at`` pushed ahead) frees a read again if its worker dies mid-way.
    """
    due = (
        select(_reads.c.id, _reads.c.captured_at)
        .where(
            _reads.c.status == ReadStatus.pending.value,
            _reads.c.next_attempt_at <= now,
            _reads.c.blob_key.is_not(None),
        )
        .order_by(_reads.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    statement = (
        update(_reads)
        .where(tuple_(_reads.c.id, _reads.c.captured_at).in_(select(due.c.id, due.c.captured_at)))
        .values(attempts=_reads.c.attempts + 1, next_attempt_at=now + lease)
        .returning(*_reads.c)
    )
    rows = (await session.execute(statement)).mappings().all()
    return [Read.model_validate(dict(row)) for row in rows]


async def update_read(session: AsyncSession, read: Read, **values: Any) -> None:
    """Set columns of one read (its partition found from its capture time)."""
    await session.execute(
        update(_reads)
        .where(_reads.c.id == read.id, _reads.c.captured_at == read.captured_at)
        .values(**values)
    )


async def claim_outbox(
    session: AsyncSession, *, kind: OutboxKind, limit: int, now: datetime, lease: timedelta
) -> list[OutboxMessage]:
    """Take due outbox messages of one kind, hiding them from other workers for ``lease``."""
    due = (
        select(_outbox.c.id)
        .where(_outbox.c.kind == kind.value, _outbox.c.next_attempt_at <= now)
        .order_by(_outbox.c.next_attempt_at, _outbox.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("due")
    )
    statement = (
        update(_outbox)
        .where(_outbox.c.id.in_(select(due.c.id)))
        .values(attempts=_outbox.c.attempts + 1, next_attempt_at=now + lease)
        .returning(*_outbox.c)
    )
    rows = (await session.execute(statement)).mappings().all()
    return sorted((OutboxMessage.model_validate(dict(row)) for row in rows), key=_by_id)


def _by_id(message: OutboxMessage) -> int:
    return message.id or 0


async def delete_outbox(session: AsyncSession, ids: Sequence[int]) -> None:
    """Forget delivered messages."""
    await session.execute(delete(_outbox).where(_outbox.c.id.in_(list(ids))))


async def postpone_outbox(
    session: AsyncSession, ids: Sequence[int], *, next_attempt_at: datetime, error: str
) -> None:
    """Record a failed delivery and when to try again."""
    await session.execute(
        update(_outbox)
        .where(_outbox.c.id.in_(list(ids)))
        .values(next_attempt_at=next_attempt_at, last_error=error)
    )


async def count_outbox(session: AsyncSession, *, kind: OutboxKind, read_id: UUID) -> int:
    """Messages of one kind still queued for a read."""
    statement = select(func.count()).where(
        and_(_outbox.c.kind == kind.value, _outbox.c.read_id == read_id)
    )
    return int((await session.execute(statement)).scalar_one())
