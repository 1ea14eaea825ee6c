"""SQL of alerts, their events, disposition codes and matched reads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import ColumnElement, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped
from sqlmodel import col

from lpr_hotlist.alerts.models import Alert, AlertEvent, AlertStatus, DispositionCode, MatchedRead
from lpr_hotlist.hotlists.models import HotList, HotListEntry
from lpr_hotlist.live_index import ALERT_CHANNEL

# Any constant works; it only has to be the same for every writer of alert events.
_ALERT_EVENTS_LOCK = 0x4C50_5241  # "LPRA"


async def claim_read(session: AsyncSession, *, read_id: UUID, agency: str) -> bool:
    """Mark a read as matched; False if it already was (then its alerts are the answer).

    A concurrent claim of the same read waits here until the first one commits.
    """
    statement = (
        pg_insert(MatchedRead)
        .values(read_id=read_id, agency=agency, alert_count=0, matched_at=datetime.now(UTC))
        .on_conflict_do_nothing()
        .returning(col(MatchedRead.read_id))
    )
    return (await session.execute(statement)).scalar_one_or_none() is not None


async def set_alert_count(session: AsyncSession, read_id: UUID, count: int) -> None:
    """Record how many alerts a read raised."""
    matched = await session.get(MatchedRead, read_id)
    if matched is not None:
        matched.alert_count = count
        session.add(matched)


async def alerts_of_read(session: AsyncSession, read_id: UUID) -> Sequence[Alert]:
    """A read's alerts, strongest first: those it raised and those of its pass it joined."""
    query = (
        select(Alert)
        .where(
            or_(
                col(Alert.read_id) == read_id,
                col(Alert.member_read_ids).contains([str(read_id)]),
            )
        )
        .order_by(col(Alert.rank), col(Alert.created_at))
    )
    return (await session.execute(query)).scalars().all()


# Any constant works; the first half of the two-key advisory lock of a vehicle pass.
_TRACK_LOCK_CLASS = 0x4C50_5254  # "LPRT"


async def lock_track(session: AsyncSession, track_id: UUID) -> None:
    """Hold a vehicle pass's lock until commit, so its frames raise one alert per entry."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:class, hashtext(:track))"),
        {"class": _TRACK_LOCK_CLASS, "track": str(track_id)},
    )


async def alert_of_track(session: AsyncSession, *, track_id: UUID, entry_id: UUID) -> Alert | None:
    """The alert a vehicle pass raised for an entry, if any, locked for update.

    Locked so that its ``alert.updated`` event carries the status it has at commit, not
    one an officer's transition is changing meanwhile.
    """
    query = (
        select(Alert)
        .where(col(Alert.track_id) == track_id, col(Alert.entry_id) == entry_id)
        .with_for_update()
    )
    return (await session.execute(query)).scalars().first()


async def current_entries_by_id(
    session: AsyncSession, ids: Sequence[UUID]
) -> dict[UUID, tuple[HotListEntry, int]]:
    """For each matched entry id, the entry of its list's current version standing for it.

    A replica's index may still be of an earlier generation than the database. Entries of
    replaced versions stay stored, and every version stores all of its entries anew, so an
    id from such an index is mapped to the current version's entry with the same plate,
    state and pattern; an entry the current version no longer holds (a removed or replaced
    entry) is left out. A stale index can thus miss a new entry but never alert on a removed
    one, nor lose an entry that the new version kept.

    Returns:
        ``{matched id: (current entry, current version number of its list)}``.
    """
    if not ids:
        return {}
    query = (
        select(HotListEntry, col(HotList.current_version_id), col(HotList.current_version))
        .join(HotList, col(HotList.id) == col(HotListEntry.list_id))
        .where(col(HotListEntry.id).in_(ids))
    )
    found: dict[UUID, tuple[HotListEntry, int]] = {}
    for entry, current_version_id, number in (await session.execute(query)).tuples().all():
        if entry.version_id == current_version_id:
            found[entry.id] = (entry, number)
        elif current_version_id is not None:
            kept = await _same_entry_in_version(session, entry, current_version_id)
            if kept is not None:
                found[entry.id] = (kept, number)
    return found


async def _same_entry_in_version(
    session: AsyncSession, entry: HotListEntry, version_id: UUID
) -> HotListEntry | None:
    """The version's entry with ``entry``'s plate, state and pattern (first in file order)."""
    query = (
        select(HotListEntry)
        .where(
            col(HotListEntry.version_id) == version_id,
            _equal_or_both_null(col(HotListEntry.plate), entry.plate),
            _equal_or_both_null(col(HotListEntry.state), entry.state),
            _equal_or_both_null(col(HotListEntry.pattern), entry.pattern),
        )
        .order_by(col(HotListEntry.source_line), col(HotListEntry.id))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


def _equal_or_both_null(column: Mapped[str | None], value: str | None) -> ColumnElement[bool]:
    # ``=`` rather than ``IS NOT DISTINCT FROM`` where it can, so the plate index is used.
    return column.is_(None) if value is None else column == value


async def get_alert(
    session: AsyncSession, alert_id: UUID, *, for_update: bool = False
) -> Alert | None:
    """An alert by id."""
    return await session.get(Alert, alert_id, with_for_update=for_update)


async def append_events(session: AsyncSession, events: Sequence[AlertEvent]) -> None:
    """Add alert events so that their sequence numbers follow commit order, and wake streams.

    The transaction-scoped advisory lock makes writers of events take turns until commit,
    so no event with a lower number can become visible after one with a higher number; a
    stream resuming after ``Last-Event-ID`` therefore never skips one.
    """
    if not events:
        return
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ALERT_EVENTS_LOCK})
    for event in events:
        session.add(event)
    await session.flush()
    for agency in sorted({e.agency for e in events}):
        await session.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": ALERT_CHANNEL, "payload": agency},
        )


async def events_of(session: AsyncSession, alert_id: UUID) -> Sequence[AlertEvent]:
    """An alert's history, oldest first."""
    query = (
        select(AlertEvent).where(col(AlertEvent.alert_id) == alert_id).order_by(col(AlertEvent.seq))
    )
    return (await session.execute(query)).scalars().all()


async def last_event_seq(session: AsyncSession, agency: str) -> int:
    """The newest event number of an agency (0 when none)."""
    query = select(func.coalesce(func.max(col(AlertEvent.seq)), 0)).where(
        col(AlertEvent.agency) == agency
    )
    return int((await session.execute(query)).scalar_one() or 0)


async def events_after(
    session: AsyncSession,
    *,
    agency: str,
    after: int,
    limit: int,
    unit_id: str | None = None,
    camera_id: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> Sequence[tuple[AlertEvent, Alert]]:
    """An agency's events after a sequence number, with their alerts, filtered by area or unit."""
    query = (
        select(AlertEvent, Alert)
        .join(Alert, col(Alert.id) == col(AlertEvent.alert_id))
        .where(col(AlertEvent.agency) == agency, col(AlertEvent.seq) > after)
        .order_by(col(AlertEvent.seq))
        .limit(limit)
    )
    if unit_id is not None:
        query = query.where(col(Alert.unit_id) == unit_id)
    if camera_id is not None:
        query = query.where(col(Alert.camera_id) == camera_id)
    if bbox is not None:
        min_lon, min_lat, max_lon, max_lat = bbox
        query = query.where(
            col(Alert.longitude).between(min_lon, max_lon),
            col(Alert.latitude).between(min_lat, max_lat),
        )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def alerts_of_agency(
    session: AsyncSession, *, agency: str, status: str | None, limit: int, offset: int
) -> Sequence[Alert]:
    """An agency's alerts, newest first."""
    query = select(Alert).where(col(Alert.agency) == agency)
    if status is not None:
        query = query.where(col(Alert.status) == status)
    query = query.order_by(col(Alert.created_at).desc()).offset(offset).limit(limit)
    return (await session.execute(query)).scalars().all()


async def alerts_for_plate(
    session: AsyncSession,
    *,
    agency: str,
    plate: str,
    limit: int,
    since: datetime | None = None,
    without_misreads: bool = False,
) -> Sequence[Alert]:
    """An agency's alerts whose read showed a plate, newest first.

    Args:
        since: Only reads captured at or after this time.
        without_misreads: Leave out alerts an officer flagged as a misread.
    """
    query = select(Alert).where(col(Alert.agency) == agency, col(Alert.read_plate) == plate)
    if since is not None:
        query = query.where(col(Alert.captured_at) >= since)
    if without_misreads:
        # An unflagged alert holds SQL NULL or, written through the ORM, JSON null.
        query = query.where(func.coalesce(func.jsonb_typeof(col(Alert.misread)), "null") == "null")
    query = query.order_by(col(Alert.created_at).desc()).limit(limit)
    return (await session.execute(query)).scalars().all()


async def open_alerts(session: AsyncSession, *, agency: str, before: datetime) -> Sequence[Alert]:
    """Alerts without a disposition raised before a time, oldest first."""
    query = (
        select(Alert)
        .where(
            col(Alert.agency) == agency,
            col(Alert.status) != AlertStatus.DISPOSITIONED.value,
            col(Alert.created_at) <= before,
        )
        .order_by(col(Alert.created_at))
    )
    return (await session.execute(query)).scalars().all()


async def disposition_codes(session: AsyncSession) -> Sequence[DispositionCode]:
    """The administered dispositions."""
    query = select(DispositionCode).order_by(col(DispositionCode.code))
    return (await session.execute(query)).scalars().all()


async def disposition_code(session: AsyncSession, code: str) -> DispositionCode | None:
    """One disposition by code."""
    return await session.get(DispositionCode, code)
