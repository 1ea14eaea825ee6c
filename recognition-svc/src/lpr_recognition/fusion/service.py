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

A camera's edge-OCR batch (up to 100 reads) joins in one pass: one lock and one query of
candidate tracks per camera, the choices made in memory, new tracks and members inserted
in one statement each; the recognition worker joins one read the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from lpr_recognition.fusion import repository
from lpr_recognition.fusion.models import Track, TrackMember
from lpr_recognition.fusion.vote import Frame, FusedPlate, distance, fuse
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


_LOCKED = "lpr_fusion_locked_cameras"


async def _lock_cameras_once(session: AsyncSession, camera_ids: set[str]) -> None:
    # The locks are held until the transaction ends: each camera's is taken once per
    # transaction. Remembered per transaction (a session may run several, one after another).
    transaction = session.sync_session.get_transaction()
    held: tuple[object, set[str]] | None = session.info.get(_LOCKED)
    if held is None or held[0] is not transaction:
        held = (transaction, set())
        session.info[_LOCKED] = held
    await repository.lock_cameras(session, camera_ids - held[1])
    held[1].update(camera_ids)


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """A stored read and its plates, to put on tracks.

    ``character_confidences``: per plate index, the recognizer's confidence of each
    character of the plate's text; plates without (edge OCR) use their overall
    confidence for every character.
    """

    read: Read
    plates: Sequence[Plate]
    character_confidences: Mapping[int, Sequence[float]] | None = None


@dataclass(frozen=True, slots=True)
class _Vote:
    """A member of a track as the join works on it (a plain record, not a table row)."""

    read_id: UUID
    plate_index: int
    captured_at: datetime
    confidence: float
    frame: Frame

    @classmethod
    def of(cls, member: TrackMember) -> _Vote:
        return cls(
            member.read_id,
            member.plate_index,
            member.captured_at,
            member.confidence,
            frame_of(member),
        )


@dataclass(slots=True, eq=False)
class _Pass:
    """A track as it stands in this transaction: loaded (``row``) or opened here (None).

    The join works on these plain records and writes the tracks it changed once at the
    end: building and instrumenting a table row per frame cost more than the SQL.
    """

    id: UUID
    row: Track | None
    camera_id: str
    agency: str
    first: datetime
    last: datetime
    fused_text: str
    votes: list[_Vote]
    fused: FusedPlate | None = None

    @classmethod
    def loaded(cls, track: Track, members: Sequence[TrackMember]) -> _Pass:
        return cls(
            track.id,
            track,
            track.camera_id,
            track.agency,
            track.first_captured_at,
            track.last_captured_at,
            track.fused_text,
            [_Vote.of(m) for m in members],
        )

    def open_to(self, captured_at: datetime, window: timedelta) -> bool:
        # The span condition of repository.tracks_spanning, for one frame.
        return (
            captured_at - window <= self.first <= captured_at + window
            and self.last <= captured_at + window
        )

    def closeness(
        self, text: str, captured_at: datetime, max_edits: int
    ) -> tuple[int, float] | None:
        """(fewest edits to the fused text or a frame's, nearest frame in s), or None: too far."""
        edits = [
            d
            for d in (
                distance(other, text, max_edits=max_edits)
                for other in {self.fused_text, *(v.frame.text for v in self.votes)}
            )
            if d is not None
        ]
        if not edits:
            return None
        gap = min(abs((v.captured_at - captured_at).total_seconds()) for v in self.votes)
        return min(edits), gap

    def add(self, vote: _Vote) -> None:
        """Take a frame and vote the plate again over all of them."""
        self.votes.append(vote)
        self.fused = fuse([v.frame for v in self.votes])
        self.fused_text = self.fused.text
        self.first = min(self.first, vote.captured_at)
        self.last = max(self.last, vote.captured_at)

    def columns(self, now: datetime) -> dict[str, Any]:
        """The columns the join sets on the track."""
        assert self.fused is not None
        return {
            "first_captured_at": self.first,
            "last_captured_at": self.last,
            "fused_text": self.fused.text,
            "fused_confidence": self.fused.confidence,
            "character_confidences": list(self.fused.confidences),
            "member_count": len(self.votes),
            "updated_at": now,
        }


async def join_tracks_of_frames(
    session: AsyncSession, *, frames: Sequence[StoredFrame], config: FusionConfig, now: datetime
) -> list[UUID]:
    """Put each readable plate of stored reads on its vehicle's track; return the track ids.

    The frames join in the order given, each seeing the tracks the ones before it opened
    or grew, as if each were joined in a transaction of its own. The cost is per batch,
    not per frame: one lock per camera (taken in sorted order), one query of candidate
    tracks per camera and agency, one insert of new tracks, one of members, and an update
    of each loaded track that grew.
    """
    if not config.enabled:
        return []
    readable = [(f, [p for p in f.plates if p.normalized_text]) for f in frames]
    readable = [(frame, plates) for frame, plates in readable if plates]
    if not readable:
        return []
    await _lock_cameras_once(session, {frame.read.camera_id for frame, _ in readable})
    window = timedelta(seconds=config.window_s)
    spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
    for frame, _ in readable:
        key, at = (frame.read.camera_id, frame.read.agency), frame.read.captured_at
        earliest, latest = spans.get(key, (at, at))
        spans[key] = (min(earliest, at), max(latest, at))
    passes: dict[tuple[str, str], list[_Pass]] = {}
    for (camera_id, agency), (earliest, latest) in spans.items():
        found = await repository.tracks_spanning(
            session,
            camera_id=camera_id,
            agency=agency,
            earliest=earliest,
            latest=latest,
            window=window,
        )
        passes[camera_id, agency] = [_Pass.loaded(t, m) for t, m in found]

    joined: list[UUID] = []
    grown: dict[UUID, _Pass] = {}
    members: list[dict[str, Any]] = []
    for frame, plates in readable:
        read = frame.read
        camera_passes = passes[read.camera_id, read.agency]
        open_passes = [c for c in camera_passes if c.open_to(read.captured_at, window)]
        for plate in plates:
            text = plate.normalized_text
            scored = [
                (score, c.first, str(c.id), c)
                for c in open_passes
                if (score := c.closeness(text, read.captured_at, config.max_edits)) is not None
            ]
            if scored:
                chosen = min(scored, key=lambda s: s[:3])[3]
                # Two plates of one read are two vehicles: never on one track.
                open_passes = [c for c in open_passes if c is not chosen]
            else:
                chosen = _Pass(
                    uuid4(),
                    None,
                    read.camera_id,
                    read.agency,
                    read.captured_at,
                    read.captured_at,
                    text,
                    [],
                )
                camera_passes.append(chosen)
            confidences = (frame.character_confidences or {}).get(plate.plate_index, ())
            vote = _Vote(
                read.id,
                plate.plate_index,
                read.captured_at,
                plate.confidence,
                frame_of_plate(plate, confidences),
            )
            chosen.add(vote)
            grown[chosen.id] = chosen
            joined.append(chosen.id)
            members.append(
                {
                    "read_id": vote.read_id,
                    "plate_index": vote.plate_index,
                    "captured_at": vote.captured_at,
                    "track_id": chosen.id,
                    "text": text,
                    "confidence": vote.confidence,
                    "character_confidences": list(vote.frame.confidences),
                }
            )
    opened: list[dict[str, Any]] = []
    for track in grown.values():
        columns = track.columns(now)
        if track.row is None:
            opened.append(
                {
                    "id": track.id,
                    "camera_id": track.camera_id,
                    "agency": track.agency,
                    "created_at": now,
                    **columns,
                }
            )
        else:
            for name, value in columns.items():
                setattr(track.row, name, value)
    # Loaded tracks that grew are updated by the flush (few: those a batch continues).
    await session.flush()
    await repository.add_tracks(session, opened)
    await repository.add_members(session, members)
    return joined


async def join_tracks(
    session: AsyncSession,
    *,
    read: Read,
    plates: Sequence[Plate],
    config: FusionConfig,
    now: datetime,
    character_confidences: Mapping[int, Sequence[float]] | None = None,
) -> list[UUID]:
    """Put each readable plate of one stored read on its vehicle's track; return the track ids.

    Args:
        character_confidences: Per plate index, the recognizer's confidence of each
            character of the plate's text; plates without (edge OCR) use their overall
            confidence for every character.
    """
    return await join_tracks_of_frames(
        session,
        frames=[StoredFrame(read, plates, character_confidences)],
        config=config,
        now=now,
    )


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
