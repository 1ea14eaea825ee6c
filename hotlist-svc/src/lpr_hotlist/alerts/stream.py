"""The alert stream: every alert event of an agency, in order, resumable.

Events are ``alert.created`` (a read hit an entry), ``alert.transition`` (an officer's
step) and ``alert.updated`` (a later frame of the alert's vehicle pass joined it: its
``details`` carry the new ``member_read_ids`` and ``fused_plate``; docs/internal-api.md).
Event ids are ``alert_events.seq``. A client that reconnects with ``Last-Event-ID: n`` gets
every event after ``n`` from the database before new ones, so delivery is at least once.
Between events the stream waits for a NOTIFY relayed by :class:`~lpr_hotlist.live_index.AlertBus`
and polls anyway every few seconds, so a lost notification only delays an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lpr_hotlist.alerts import repository
from lpr_hotlist.alerts.schemas import AlertPublic
from lpr_hotlist.live_index import AlertBus

BATCH = 200


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which of an agency's alerts a subscriber wants."""

    agency: str
    unit_id: str | None = None
    camera_id: str | None = None
    bbox: tuple[float, float, float, float] | None = None


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """``min_lon,min_lat,max_lon,max_lat`` -> floats.

    Raises:
        ValueError: If it is not four numbers with min <= max.
    """
    parts = [float(p) for p in text.split(",")]
    if len(parts) != 4:
        raise ValueError("bbox needs four numbers: min_lon,min_lat,max_lon,max_lat")
    min_lon, min_lat, max_lon, max_lat = parts
    if min_lon > max_lon or min_lat > max_lat:
        raise ValueError("bbox minimums must not exceed maximums")
    return min_lon, min_lat, max_lon, max_lat


async def alert_events(
    sessionmaker: async_sessionmaker[AsyncSession],
    bus: AlertBus,
    wanted: StreamFilter,
    *,
    after: int,
    limit: int | None = None,
    poll_s: float = 5.0,
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield server-sent events (``id``, ``event``, ``data``) after event number ``after``.

    Args:
        sessionmaker: Each poll uses a short session of its own.
        bus: Wakes the stream when events were committed.
        wanted: The agency and optional unit, camera or area.
        after: Last event number the client has (0 for everything).
        limit: Stop after this many events (``None``: run until the client leaves).
        poll_s: Longest wait between two looks at the database.
    """
    sent = 0
    while True:
        # Take the waiter before querying, so a NOTIFY arriving meanwhile is not lost.
        waiter = bus.waiter()
        async with sessionmaker() as session:
            rows = await repository.events_after(
                session,
                agency=wanted.agency,
                after=after,
                limit=BATCH,
                unit_id=wanted.unit_id,
                camera_id=wanted.camera_id,
                bbox=wanted.bbox,
            )
        for event, alert in rows:
            assert event.seq is not None
            after = event.seq
            payload = {
                "seq": event.seq,
                "event_type": event.event_type,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "by": event.subject_id,
                "occurred_at": event.occurred_at.isoformat(),
                "details": event.details,
                "alert": AlertPublic.model_validate(alert).model_dump(mode="json"),
            }
            yield {
                "id": str(event.seq),
                "event": event.event_type,
                "data": json.dumps(payload, separators=(",", ":"), ensure_ascii=False),
            }
            sent += 1
            if limit is not None and sent >= limit:
                return
        if len(rows) == BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=poll_s)
