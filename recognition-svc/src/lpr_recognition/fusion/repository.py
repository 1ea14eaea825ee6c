"""SQL of fusion. Functions only ``flush``; the caller owns the transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_recognition.fusion.models import Track, TrackMember
from lpr_recognition.reads.models import Read

# Serialises track assignment per camera across workers and replicas (an arbitrary
# constant of this service, the first half of a two-key advisory lock).
FUSION_LOCK_CLASS = 0x4C50_5203

_reads = Read.__table__  # type: ignore[attr-defined]


async def lock_camera(session: AsyncSession, camera_id: str) -> None:
    """Hold the camera's fusion lock until the transaction ends.

    Two frames of one vehicle recognized at once by two workers would otherwise each
    find no track and open two.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:class, hashtext(:camera))"),
        {"class": FUSION_LOCK_CLASS, "camera": camera_id},
    )


async def tracks_near(
    session: AsyncSession, *, camera_id: str, agency: str, captured_at: datetime, window: timedelta
) -> list[Track]:
    """Tracks of a camera that a frame captured at ``captured_at`` may join.

    A track spans at most ``window`` from its first to its last frame, with the new one.
    """
    result = await session.execute(
        select(Track).where(
            col(Track.camera_id) == camera_id,
            col(Track.agency) == agency,
            # first <= last, so the first condition pair bounds the index range.
            col(Track.first_captured_at) >= captured_at - window,
            col(Track.first_captured_at) <= captured_at + window,
            col(Track.last_captured_at) <= captured_at + window,
        )
    )
    return list(result.scalars())


async def members_of(
    session: AsyncSession, track_ids: Iterable[UUID]
) -> defaultdict[UUID, list[TrackMember]]:
    """The members of tracks, in capture order (an empty list for a track without)."""
    ids = list(track_ids)
    found: defaultdict[UUID, list[TrackMember]] = defaultdict(list)
    if not ids:
        return found
    result = await session.execute(
        select(TrackMember)
        .where(col(TrackMember.track_id).in_(ids))
        .order_by(col(TrackMember.captured_at), col(TrackMember.read_id))
    )
    for member in result.scalars():
        found[member.track_id].append(member)
    return found


async def tracks_of_read(session: AsyncSession, read_id: UUID) -> dict[int, Track]:
    """The track of each plate of a read that is on one, by plate index."""
    result = await session.execute(
        select(col(TrackMember.plate_index), Track)
        .join(Track, col(Track.id) == col(TrackMember.track_id))
        .where(col(TrackMember.read_id) == read_id)
    )
    return {int(index): track for index, track in result.tuples()}


async def preserve_reads(session: AsyncSession, reads: Sequence[tuple[UUID, datetime]]) -> None:
    """Mark reads preserved (IACP B.1.b), each found in its day's partition."""
    if not reads:
        return
    await session.execute(
        update(_reads)
        .where(tuple_(_reads.c.id, _reads.c.captured_at).in_(list(reads)))
        .values(preserved=True)
    )
