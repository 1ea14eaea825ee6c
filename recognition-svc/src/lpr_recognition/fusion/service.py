"""Rules of fusion: which track a frame's plate joins, and the fused plate of a track.

A camera sends several frames of one passing vehicle within a few seconds. When a read's
plates are stored (recognized by Triton, or read on board by the camera), each readable
plate joins the track of its vehicle, in the same transaction:

- a track of the same camera and agency, whose frames with this one span at most the
  window (``LPR_FUSION_WINDOW_S``, by capture time, so arrival order does not matter),
- whose fused text or one of whose frames is close to this plate (OCR look-alikes free,
  up to ``LPR_FUSION_MAX_EDITS`` other edits, :func:`lpr_recognition.fusion.vote.distance`),
- the closest such track (fewest edits, then nearest in time); two plates of one read are
  two vehicles and never join one track. With none, the plate opens a new track.

The track's fused plate is then voted again over all its frames
(:func:`lpr_recognition.fusion.vote.fuse`). Assignment runs under the camera's
transaction-scoped advisory lock, so two workers (or replicas) recognizing frames of one
vehicle at once take turns, and the second sees the first one's track.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from lpr_recognition.fusion import repository
from lpr_recognition.fusion.models import Track, TrackMember
from lpr_recognition.fusion.vote import Frame, distance, fuse
from lpr_recognition.reads.models import Plate, Read
from lpr_recognition.settings import Settings


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """How frames are grouped into tracks (the service settings ``LPR_FUSION_*``)."""

    enabled: bool = True
    window_s: float = 3.0
    max_edits: int = 1

    @classmethod
    def of(cls, settings: Settings) -> FusionConfig:
        """The configuration in the service settings."""
        return cls(
            enabled=settings.fusion_enabled,
            window_s=settings.fusion_window_s,
            max_edits=settings.fusion_max_edits,
        )


def frame_of(member: TrackMember) -> Frame:
    """A member's vote."""
    return Frame.of(member.text, member.confidence, member.character_confidences)


def revote(track: Track, members: Sequence[TrackMember], now: datetime) -> None:
    """Vote the track's plate again over its members and update its span and counts."""
    fused = fuse([frame_of(m) for m in members])
    track.fused_text = fused.text
    track.fused_confidence = fused.confidence
    track.character_confidences = list(fused.confidences)
    track.member_count = len(members)
    track.first_captured_at = min(m.captured_at for m in members)
    track.last_captured_at = max(m.captured_at for m in members)
    track.updated_at = now


def _closeness(
    track: Track, members: Sequence[TrackMember], text: str, captured_at: datetime, max_edits: int
) -> tuple[int, float] | None:
    edits = [
        d
        for d in (
            distance(other, text, max_edits=max_edits)
            for other in {track.fused_text, *(m.text for m in members)}
        )
        if d is not None
    ]
    if not edits:
        return None
    gap = min(abs((m.captured_at - captured_at).total_seconds()) for m in members)
    return min(edits), gap


_LOCKED = "lpr_fusion_locked_cameras"


async def _lock_camera_once(session: AsyncSession, camera_id: str) -> None:
    # The lock is held until the transaction ends: a batch of one camera's reads takes it
    # once. Remembered per transaction (a session may run several, one after another).
    transaction = session.sync_session.get_transaction()
    held: tuple[object, set[str]] | None = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = (transaction, set())
        session.info[_LOCKED] = held
    if camera_id not in held[1]:
        await repository.lock_camera(session, camera_id)
        held[1].add(camera_id)


async def join_tracks(
    session: AsyncSession,
    *,
    read: Read,
    plates: Sequence[Plate],
    config: FusionConfig,
    now: datetime,
    character_confidences: Mapping[int, Sequence[float]] | None = None,
) -> list[Track]:
    """Put each readable plate of a stored read on its vehicle's track; return the tracks.

    Args:
        character_confidences: Per plate index, the recognizer's confidence of each
            character of the plate's text; plates without (edge OCR) use their overall
            confidence for every character.
    """
    readable = [p for p in plates if p.normalized_text]
    if not config.enabled or not readable:
        return []
    await _lock_camera_once(session, read.camera_id)
    tracks = await repository.tracks_near(
        session,
        camera_id=read.camera_id,
        agency=read.agency,
        captured_at=read.captured_at,
        window=timedelta(seconds=config.window_s),
    )
    members = await repository.members_of(session, (t.id for t in tracks))
    joined: list[Track] = []
    joined_ids: set[UUID] = set()
    for plate in readable:
        scored = [
            (score, track.first_captured_at, str(track.id), track)
            for track in tracks
            if track.id not in joined_ids
            and (
                score := _closeness(
                    track,
                    members[track.id],
                    plate.normalized_text,
                    read.captured_at,
                    config.max_edits,
                )
            )
            is not None
        ]
        fresh = not scored
        if scored:
            track = min(scored, key=lambda s: s[:3])[3]
        else:
            track = Track(
                id=uuid4(),
                camera_id=read.camera_id,
                agency=read.agency,
                first_captured_at=read.captured_at,
                last_captured_at=read.captured_at,
                fused_text=plate.normalized_text,
                fused_confidence=plate.confidence,
                created_at=now,
                updated_at=now,
            )
            tracks.append(track)
        confidences = (character_confidences or {}).get(plate.plate_index, ())
        member = TrackMember(
            read_id=read.id,
            plate_index=plate.plate_index,
            captured_at=read.captured_at,
            track_id=track.id,
            text=plate.normalized_text,
            confidence=plate.confidence,
            character_confidences=list(frame_of_plate(plate, confidences).confidences),
        )
        members[track.id].append(member)
        revote(track, members[track.id], now)
        if fresh:
            session.add(track)
        session.add(member)
        joined.append(track)
        joined_ids.add(track.id)
    await session.flush()
    return joined


def frame_of_plate(plate: Plate, character_confidences: Sequence[float] = ()) -> Frame:
    """A stored plate's vote (its normalized text)."""
    return Frame.of(plate.normalized_text, plate.confidence, character_confidences)


@dataclass(frozen=True, slots=True)
class TrackView:
    """A track with its members, as the handoff and the API show it."""

    track: Track
    members: list[TrackMember]

    @property
    def read_ids(self) -> list[UUID]:
        """The reads on the track, in capture order, each once."""
        return list(dict.fromkeys(m.read_id for m in self.members))


async def tracks_of_read(session: AsyncSession, read_id: UUID) -> dict[int, TrackView]:
    """The track of each plate of a read that is on one, with its members, by plate index."""
    tracks = await repository.tracks_of_read(session, read_id)
    members = await repository.members_of(session, (t.id for t in tracks.values()))
    return {index: TrackView(t, members[t.id]) for index, t in tracks.items()}
