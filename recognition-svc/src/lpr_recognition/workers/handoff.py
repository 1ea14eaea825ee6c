"""Delivery of the outbox: plates to hot-list matching, ``read.ingested`` events to audit.

Messages are written in the same transaction as the change they report, so a message
exists exactly when its change committed; they are deleted once the peer has taken
them, and retried with backoff until then. Both peers deduplicate (hotlist-svc on the
``Idempotency-Key``, audit-svc on the event id), so delivering twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lpr_common.audit_client import AuditClient, AuditEvent
from lpr_common.deployment_results import DeploymentResults
from lpr_common.errors import LprError
from lpr_recognition.fusion import repository as fusion_repository
from lpr_recognition.fusion.service import TrackView, tracks_of_read
from lpr_recognition.reads import repository
from lpr_recognition.reads.models import OutboxKind, OutboxMessage, Plate, Read, ReadStatus
from lpr_recognition.workers.backoff import retry_delay

_logger = logging.getLogger(__name__)

MATCHES_PATH = "/internal/v1/matches"
# Answers that say the request itself is wrong (docs/internal-api.md: "do not retry it").
PERMANENT_REFUSALS = frozenset({400, 422})


class HandoffRefused(Exception):
    """hotlist-svc did not take the read."""


MAX_CANDIDATES = 12


def _plate_body(plate: Plate, track: TrackView | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": plate.plate_index,
        "text": plate.normalized_text,
        "confidence": plate.confidence,
        "state": plate.state,
        "region": plate.region,
        "box": plate.box,
        "candidates": plate.candidates,
    }
    if track is None:
        return body
    # The fused plate is what is matched; this frame's own readings and every other
    # frame's text follow as alternatives, so a hit on any frame still counts.
    fused = track.track
    candidates: dict[str, dict[str, Any]] = {}
    for candidate in (
        {"text": fused.fused_text, "confidence": fused.fused_confidence},
        {"text": plate.normalized_text, "confidence": plate.confidence},
        *plate.candidates,
        *({"text": m.text, "confidence": m.confidence} for m in track.members),
    ):
        candidates.setdefault(str(candidate.get("text")), candidate)
    body.update(
        text=fused.fused_text,
        confidence=fused.fused_confidence,
        candidates=list(candidates.values())[:MAX_CANDIDATES],
        track_id=str(fused.id),
        track_read_ids=[str(i) for i in track.read_ids],
    )
    return body


def match_request(
    read: Read, plates: list[Plate], tracks: Mapping[int, TrackView] | None = None
) -> dict[str, Any]:
    """The body of ``POST /internal/v1/matches`` (docs/internal-api.md).

    A plate on a track (multi-frame fusion) is sent as the track's fused plate, with its
    ``track_id``: hotlist-svc raises one alert per track and hot-list entry.
    """
    return {
        "read_id": str(read.id),
        "agency": read.agency,
        "camera_id": read.camera_id,
        "deployment_id": read.deployment_id,
        "unit_id": read.unit_id,
        "captured_at": read.captured_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "latitude": read.latitude,
        "longitude": read.longitude,
        "heading": read.heading,
        "image_available": read.blob_key is not None,
        "plates": [
            _plate_body(plate, (tracks or {}).get(plate.plate_index))
            for plate in plates
            if plate.normalized_text
        ],
    }


class HandoffWorker:
    """Sends recognized reads to hotlist-svc and queued audit events to audit-svc."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        hotlist: httpx.AsyncClient | None,
        audit: AuditClient | None,
        batch_size: int,
        audit_batch_size: int,
        lease_s: float,
        retry_base_s: float,
        retry_max_s: float,
        timeout_s: float = 10.0,
        deployment_results: DeploymentResults | None = None,
    ) -> None:
        """Configure the worker; a missing peer client leaves its messages queued."""
        self._sessionmaker = sessionmaker
        self._deployment_results = deployment_results
        self._hotlist = hotlist
        self._audit = audit
        self._batch_size = batch_size
        self._audit_batch_size = audit_batch_size
        self._lease = timedelta(seconds=lease_s)
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._timeout_s = timeout_s

    async def run_once(self) -> int:
        """Deliver what is due of both kinds; return how many messages were delivered."""
        matches, events = await asyncio.gather(self.deliver_matches(), self.deliver_audit())
        return matches + events

    async def _claim(self, kind: OutboxKind, limit: int) -> list[OutboxMessage]:
        async with self._sessionmaker() as session, session.begin():
            return await repository.claim_outbox(
                session, kind=kind, limit=limit, now=datetime.now(UTC), lease=self._lease
            )

    async def _postpone(
        self, messages: list[OutboxMessage], error: str, read: Read | None = None
    ) -> None:
        attempts = max(m.attempts for m in messages)
        delay = retry_delay(attempts, self._retry_base_s, self._retry_max_s)
        async with self._sessionmaker() as session, session.begin():
            await repository.postpone_outbox(
                session,
                [m.id for m in messages if m.id is not None],
                next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
                error=error[:1000],
            )
            if read is not None:
                await repository.update_read(session, read, last_error=f"handoff: {error}"[:1000])

    async def deliver_matches(self) -> int:
        """Hand recognized reads to hot-list matching; mark them matched (and preserved on a hit)."""
        if self._hotlist is None:
            return 0
        messages = await self._claim(OutboxKind.match, self._batch_size)
        results = await asyncio.gather(*(self._deliver_match(m) for m in messages))
        return sum(results)

    async def _deliver_match(self, message: OutboxMessage) -> int:
        assert self._hotlist is not None
        assert message.id is not None
        async with self._sessionmaker() as session:
            read = await repository.get_read(session, message.read_id) if message.read_id else None
            plates = await repository.get_plates(session, read) if read else []
            # Read at delivery: later frames of the vehicle may have changed the fused plate.
            tracks = await tracks_of_read(session, read.id) if read else {}
        if read is None:  # purged by retention meanwhile: nothing left to match
            async with self._sessionmaker() as session, session.begin():
                await repository.delete_outbox(session, [message.id])
            return 1
        try:
            response = await self._hotlist.post(
                MATCHES_PATH,
                json=match_request(read, plates, tracks),
                headers={"Idempotency-Key": str(read.id)},
                timeout=self._timeout_s,
            )
            if response.status_code in PERMANENT_REFUSALS:
                await self._give_up(message, read, f"HTTP {response.status_code} {response.text}")
                return 0
            if response.status_code != 200:
                raise HandoffRefused(f"hotlist-svc answered HTTP {response.status_code}")
            alerts = response.json().get("alerts") or []
        except (httpx.HTTPError, HandoffRefused, ValueError) as exc:
            await self._postpone([message], f"{type(exc).__name__}: {exc}", read)
            return 0
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            values: dict[str, Any] = {
                "status": ReadStatus.matched.value,
                "matched_at": now,
                "last_error": None,
            }
            if alerts:
                # IACP B.1.b: a read tied to a hit is kept beyond the retention period,
                # and so is every frame of the same vehicle pass.
                values["preserved"] = True
                await fusion_repository.preserve_reads(
                    session,
                    sorted(
                        {(m.read_id, m.captured_at) for t in tracks.values() for m in t.members}
                    ),
                )
            await repository.update_read(session, read, **values)
            await repository.delete_outbox(session, [message.id])
        return 1

    async def _give_up(self, message: OutboxMessage, read: Read, error: str) -> None:
        # hotlist-svc refused the request itself: the same body would be refused again.
        _logger.error("hotlist-svc refused the handoff of read %s: %s", read.id, error)
        async with self._sessionmaker() as session, session.begin():
            await repository.update_read(
                session, read, last_error=f"handoff refused: {error}"[:1000]
            )
            await repository.delete_outbox(session, [message.id] if message.id else [])

    async def deliver_audit(self) -> int:
        """Send queued ``read.ingested`` events to the access log in one batch."""
        if self._audit is None:
            return 0
        messages = await self._claim(OutboxKind.audit, self._audit_batch_size)
        if not messages:
            return 0
        events = [AuditEvent.model_validate(m.payload) for m in messages]
        try:
            await self._audit.record(*events)
        except LprError as exc:
            await self._postpone(messages, exc.detail or type(exc).__name__)
            return 0
        async with self._sessionmaker() as session, session.begin():
            await repository.delete_outbox(session, [m.id for m in messages if m.id is not None])
        if self._deployment_results is not None:
            # A read.ingested event leaves the outbox once per stored read: count it then
            # (IACP B.1.e), off the ingest path.
            for event in events:
                if event.event_type == "read.ingested":
                    self._deployment_results.add(
                        (event.details or {}).get("deployment_id"),
                        reads=event.result_count or 1,
                    )
        return len(messages)
