"""SQL of fusion. Functions only ``flush``; the caller owns the transaction."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_recognition.fusion.models import Track, TrackMember
from lpr_recognition.reads.models import Read

# Serialises track assignment per camera across workers and replicas (an arbitrary
# constant of this service, the first half of a two-key advisory lock).
FUSION_LOCK_CLASS = 0x4C50_5203

_reads = Read.__table__  # type: ignore[attr-defined]
_tracks = Track.__table__  # type: ignore[attr-defined]
_members = TrackMember.__table__  # type: ignore[attr-defined]


async def lock_cameras(session: AsyncSession, camera_ids: Iterable[str]) -> None:
    """Hold the fusion lock of each camera until the transaction ends.

    Two frames of one vehicle recognized at once by two workers would otherwise each
    find no track and open two. The locks are taken in sorted order, so two transactions
    that lock the same cameras never wait on each other in a cycle.
    """
    for camera_id in sorted(set(camera_ids)):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:class, hashtext(:camera))"),
            {"class": FUSION_LOCK_CLASS, "camera": camera_id},
        )


async def tracks_spanning(
    session: AsyncSession,
    *,
    camera_id: str,
    agency: str,
    earliest: datetime,
    latest: datetime,
    window: timedelta,
) -> list[tuple[Track, list[TrackMember]]]:
    """Tracks of a camera that a frame captured from ``earliest`` to ``latest`` may join.

    One query for a whole batch of frames: a superset of what each frame may join (a
    track spans at most ``window`` from its first to its last frame, with the new one),
    each track with its members in capture order.
    """
    result = await session.execute(
        select(Track, TrackMember)
        .outerjoin(TrackMember, col(TrackMember.track_id) == col(Track.id))
        .where(
            col(Track.camera_id) == camera_id,
            col(Track.agency) == agency,
            # first <= last, so the first condition pair bounds the index range.
            col(Track.first_captured_at) >= earliest - window,
            col(Track.first_captured_at) <= latest + window,
            col(Track.last_captured_at) <= latest + window,
        )
        .order_by(col(Track.id), col(TrackMember.captured_at), col(TrackMember.read_id))
    )
    found: dict[UUID, tuple[Track, list[TrackMember]]] = {}
    for track, member in result.tuples():
        _, members = found.setdefault(track.id, (track, []))
        if member is not None:
            members.append(member)
    return list(found.values())


async def add_tracks(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new tracks (rows of every column) in one go; they are not in the session."""
    if rows:
        await session.execute(insert(_tracks), list(rows))


async def add_members(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert track members (rows of every column) in one go; their tracks must exist."""
    if rows:
        await session.execute(insert(_members), list(rows))


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
