"""Rules of the reads domain: ingestion (idempotent, stored before acknowledged) and viewing."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from lpr_common.audit_client import AuditEvent
from lpr_common.context import RequestContext
from lpr_common.errors import Conflict, FieldError, InvalidInput, NotFound, PolicyDenied
from lpr_recognition.blobs import BlobStore
from lpr_recognition.fusion.service import (
    FusionConfig,
    StoredFrame,
    TrackView,
    join_tracks_of_frames,
)
from lpr_recognition.reads import repository
from lpr_recognition.reads.images import CheckedImage
from lpr_recognition.reads.models import OutboxKind, Plate, Read, ReadKey, ReadStatus
from lpr_recognition.reads.partitions import capture_day, ensure_partitions
from lpr_recognition.reads.schemas import (
    BatchRead,
    Candidate,
    EdgePlate,
    PlatePublic,
    ReadMetadata,
    ReadPublic,
    TrackPublic,
)

COMPONENT = "recognition"


@dataclass(frozen=True)
class Camera:
    """The camera posting, as the gateway authenticated it."""

    camera_id: str
    agency: str
    deployment_id: str | None
    request_id: str


@dataclass(frozen=True)
class Ingested:
    """The outcome of posting one read."""

    read_id: UUID
    status: ReadStatus
    created: bool
    camera_read_id: str


def camera_of(context: RequestContext) -> Camera:
    """The posting camera from the signed context; only cameras post reads."""
    camera_id = context.camera_id or (
        context.subject_id if context.subject_kind == "camera" else None
    )
    if context.subject_kind != "camera" or not camera_id:
        raise PolicyDenied("only an authenticated camera posts reads", rule="reads.camera_only")
    return Camera(
        camera_id=camera_id,
        agency=context.agency,
        deployment_id=context.deployment_id,
        request_id=str(context.request_id),
    )


def validation_error(exc: ValidationError, prefix: str) -> InvalidInput:
    """A 422 naming each bad field of a model parsed by hand (``prefix.field``)."""
    errors = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        field = f"{prefix}.{location}" if location else prefix
        errors.append(FieldError(field=field, reason=str(error["msg"])))
    return InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)


def parse_metadata(raw: str | bytes, model: type[ReadMetadata] = ReadMetadata) -> ReadMetadata:
    """Parse the ``metadata`` part; 422 naming each bad field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        if any(e["type"] == "json_invalid" for e in exc.errors()):
            raise InvalidInput.field("metadata", "not valid JSON") from None
        raise validation_error(exc, "metadata") from None


def check_capture_time(
    captured_at: datetime, *, now: datetime, tolerance_s: float, field: str
) -> None:
    """Refuse a capture time too far in the future for clock drift to explain."""
    if captured_at > now + timedelta(seconds=tolerance_s):
        raise InvalidInput.field(
            field, f"more than {tolerance_s:.0f} s in the future (server time {now.isoformat()})"
        )


def _content_sha256(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _differences(stored: dict[str, Any], posted: dict[str, Any], prefix: str) -> list[FieldError]:
    errors = []
    for key in sorted(set(stored) | set(posted)):
        if stored.get(key) != posted.get(key):
            field = "image" if key == "image_sha256" else f"{prefix}.{key}"
            errors.append(
                FieldError(
                    field=field,
                    reason="differs from the read first posted with this camera_read_id",
                )
            )
    return errors


def _replay(existing: ReadKey, content: dict[str, Any], prefix: str) -> UUID:
    """The original read id if ``content`` is what was first posted, else 409."""
    if existing.content_sha256 == _content_sha256(content):
        return existing.read_id
    errors = _differences(existing.content, content, prefix)
    raise Conflict(
        f"camera_read_id {existing.camera_read_id!r} was already used for a different read: "
        + ", ".join(e.field for e in errors),
        errors=errors,
    )


def _ingested_event(read: Read, camera: Camera, source: str) -> dict[str, Any]:
    event = AuditEvent(
        component=COMPONENT,
        event_type="read.ingested",
        outcome="success",
        subject_kind="camera",
        subject_id=camera.camera_id,
        agency=camera.agency,
        resource=f"read:{read.id}",
        action="create",
        method="POST",
        path="/v1/reads" if source == "image" else "/v1/reads/batch",
        request_id=camera.request_id,
        result_count=1,
        details={
            "read_id": str(read.id),
            "camera_read_id": read.camera_read_id,
            "deployment_id": read.deployment_id,
            "captured_at": read.captured_at.isoformat(),
            "image_sha256": read.image_sha256,
            "source": source,
        },
    )
    return event.model_dump(mode="json")


def _new_read(metadata: ReadMetadata, camera: Camera, now: datetime) -> Read:
    edge = metadata.edge_plate
    return Read(
        id=uuid4(),
        captured_at=metadata.captured_at.astimezone(UTC),
        received_at=now,
        camera_id=camera.camera_id,
        camera_read_id=metadata.camera_read_id,
        agency=camera.agency,
        deployment_id=camera.deployment_id,
        unit_id=metadata.unit_id,
        latitude=metadata.latitude,
        longitude=metadata.longitude,
        heading=metadata.heading,
        speed=metadata.speed,
        lane=metadata.lane,
        edge_plate=edge.text if edge else None,
        edge_plate_confidence=edge.confidence if edge else None,
        edge_plate_state=edge.state if edge else None,
        status=ReadStatus.pending.value,
        next_attempt_at=now,
    )


async def _status(session: AsyncSession, read_id: UUID) -> ReadStatus:
    read = await repository.get_read(session, read_id)
    return ReadStatus(read.status) if read else ReadStatus.pending


async def ingest_read(
    *,
    session: AsyncSession,
    engine: AsyncEngine,
    blobs: BlobStore,
    camera: Camera,
    metadata: ReadMetadata,
    image: bytes,
    checked: CheckedImage,
    now: datetime,
) -> Ingested:
    """Store a read with an image: blob first, then the row; replay returns the original."""
    sha256 = hashlib.sha256(image).hexdigest()
    content = {**metadata.canonical(), "image_sha256": sha256}
    existing = await repository.get_read_key(
        session, camera_id=camera.camera_id, camera_read_id=metadata.camera_read_id
    )
    if existing is not None:
        read_id = _replay(existing, content, "metadata")
        return Ingested(read_id, await _status(session, read_id), False, metadata.camera_read_id)
    await ensure_partitions(engine, [capture_day(metadata.captured_at)])
    # The image is durable before the row can commit: an acknowledged read always has it.
    _, key = await blobs.put(image)
    read = _new_read(metadata, camera, now)
    read.image_sha256, read.blob_key = sha256, key
    read.image_content_type = checked.content_type
    read.image_width, read.image_height, read.image_size = (
        checked.width,
        checked.height,
        checked.size,
    )
    claimed = await repository.claim_read_key(
        session,
        ReadKey(
            camera_id=camera.camera_id,
            camera_read_id=metadata.camera_read_id,
            read_id=read.id,
            captured_at=read.captured_at,
            content_sha256=_content_sha256(content),
            content=content,
        ),
    )
    if not claimed:  # the same read id posted concurrently; the first one won
        raced = await repository.get_read_key(
            session, camera_id=camera.camera_id, camera_read_id=metadata.camera_read_id
        )
        assert raced is not None
        read_id = _replay(raced, content, "metadata")
        return Ingested(read_id, await _status(session, read_id), False, metadata.camera_read_id)
    await repository.add_read(session, read)
    await repository.add_outbox(
        session,
        kind=OutboxKind.audit,
        payload=_ingested_event(read, camera, "image"),
        now=now,
        read_id=read.id,
        captured_at=read.captured_at,
    )
    return Ingested(read.id, ReadStatus.pending, True, metadata.camera_read_id)


def edge_plate_row(read: Read) -> Plate:
    """The camera's own reading of the plate, stored like a recognized one."""
    assert read.edge_plate is not None
    confidence = read.edge_plate_confidence if read.edge_plate_confidence is not None else 1.0
    return Plate(
        read_id=read.id,
        captured_at=read.captured_at,
        plate_index=0,
        text=read.edge_plate,
        normalized_text=read.edge_plate,
        confidence=confidence,
        state=read.edge_plate_state,
        source="edge",
        candidates=[{"text": read.edge_plate, "confidence": confidence}],
    )


async def _answer_replays(
    session: AsyncSession, outcomes: list[Ingested | None], replayed: Sequence[tuple[int, ReadKey]]
) -> None:
    """Fill in the outcome of each read posted before, with its read's current status."""
    statuses = await repository.read_statuses(
        session, [(key.read_id, key.captured_at) for _, key in replayed]
    )
    for position, key in replayed:
        status = statuses.get(key.read_id, ReadStatus.pending)
        outcomes[position] = Ingested(key.read_id, status, False, key.camera_read_id)


async def ingest_batch(
    *,
    session: AsyncSession,
    engine: AsyncEngine,
    camera: Camera,
    reads: Sequence[BatchRead],
    now: datetime,
    fusion: FusionConfig | None = None,
) -> list[Ingested]:
    """Store edge-OCR reads (no image): all of them or, on any refusal, none.

    The batch is written in a handful of statements whatever its size (one per table, not
    per read). Each read's plate joins its vehicle's track (multi-frame fusion), in the
    order the camera sent them.
    """
    seen: dict[str, int] = {}
    for position, metadata in enumerate(reads):
        if metadata.camera_read_id in seen:
            raise InvalidInput.field(
                f"reads.{position}.camera_read_id",
                f"repeats reads.{seen[metadata.camera_read_id]} in the same batch",
            )
        seen[metadata.camera_read_id] = position
    outcomes: list[Ingested | None] = [None] * len(reads)
    fresh: list[tuple[int, BatchRead, dict[str, Any]]] = []
    existing = await repository.get_read_keys(
        session, camera_id=camera.camera_id, camera_read_ids=list(seen)
    )
    replayed: list[tuple[int, ReadKey]] = []
    for position, metadata in enumerate(reads):
        content = metadata.canonical()
        key = existing.get(metadata.camera_read_id)
        if key is not None:
            _replay(key, content, f"reads.{position}")
            replayed.append((position, key))
        else:
            fresh.append((position, metadata, content))
    if not fresh:
        await _answer_replays(session, outcomes, replayed)
        return [outcome for outcome in outcomes if outcome is not None]
    await ensure_partitions(engine, {capture_day(m.captured_at) for _, m, _ in fresh})
    drafts = [
        (position, metadata, content, _new_read(metadata, camera, now))
        for position, metadata, content in fresh
    ]
    claimed = await repository.claim_read_keys(
        session,
        [
            ReadKey(
                camera_id=camera.camera_id,
                camera_read_id=metadata.camera_read_id,
                read_id=read.id,
                captured_at=read.captured_at,
                content_sha256=_content_sha256(content),
                content=content,
            )
            for _, metadata, content, read in drafts
        ],
    )
    stored: list[Read] = []
    for position, metadata, content, read in drafts:
        if (camera.camera_id, metadata.camera_read_id) not in claimed:
            # The same read id posted concurrently; the first one won.
            # The claim waited for that request to commit, so its read is visible now, in
            # whatever status it has reached: the answer reports that, not a guess.
            raced = await repository.get_read_key(
                session, camera_id=camera.camera_id, camera_read_id=metadata.camera_read_id
            )
            assert raced is not None
            _replay(raced, content, f"reads.{position}")
            replayed.append((position, raced))
            continue
        # The camera already read the plate: no recognition, straight to the handoff.
        read.status, read.recognized_at = ReadStatus.recognized.value, now
        stored.append(read)
        outcomes[position] = Ingested(read.id, ReadStatus.recognized, True, metadata.camera_read_id)
    await _answer_replays(session, outcomes, replayed)
    plates = [edge_plate_row(read) for read in stored]
    await repository.add_reads(session, stored)
    await repository.add_plates(session, plates)
    await join_tracks_of_frames(
        session,
        frames=[StoredFrame(read, [plate]) for read, plate in zip(stored, plates, strict=True)],
        config=fusion or FusionConfig(),
        now=now,
    )
    await repository.add_outbox_messages(
        session,
        [
            message
            for read in stored
            for message in (
                (OutboxKind.match, {}, read),
                (OutboxKind.audit, _ingested_event(read, camera, "edge"), read),
            )
        ],
        now=now,
    )
    return [outcome for outcome in outcomes if outcome is not None]


MOU_LOOKBACK_RULE = "mou-lookback"
"""The rule that holds another agency to its MOU's lookback, named as the gateway names it."""


def under_mou(context: RequestContext) -> bool:
    """True when another agency calls under an MOU (IACP D.2)."""
    return context.subject_kind == "partner" or context.mou_id is not None


def mou_not_before(context: RequestContext) -> datetime | None:
    """The earliest capture time an MOU caller may see; ``None`` for anyone else.

    The gateway states it on the signed context (the decision time less the MOU's
    lookback), so it holds on lookups by id too, where no time range is stated.

    Raises:
        PolicyDenied: The context of a caller under an MOU does not state it (minted by a
            gateway older than this rule): without it nothing bounds the data's age.
    """
    if not under_mou(context):
        return None
    if context.not_before is None:
        raise PolicyDenied(
            "the signed context of a caller under an MOU states no lookback limit "
            "(not_before); the gateway must state the MOU's lookback",
            rule=MOU_LOOKBACK_RULE,
        )
    return context.not_before


def visible_to(context: RequestContext, read: Read) -> bool:
    """Whether the signed caller may see this read (the gateway decided on the purpose)."""
    if context.subject_kind == "service":
        return True
    if context.subject_kind == "camera":
        return (context.camera_id or context.subject_id) == read.camera_id
    if context.subject_kind == "partner":
        # Another agency under an MOU: the gateway checked its scope and logs the release;
        # a read captured before the MOU's lookback is as absent to it as a purged one.
        return (
            context.mou_id is not None
            and context.not_before is not None
            and read.captured_at >= context.not_before
        )
    return context.agency == read.agency


async def get_visible_read(session: AsyncSession, context: RequestContext, read_id: UUID) -> Read:
    """The read, or 404 when it does not exist or the caller may not see it.

    Raises:
        PolicyDenied: A caller under an MOU whose context states no lookback limit.
        NotFound: No such read, or none the caller may see (another agency's, or one
            captured before its MOU's lookback).
    """
    mou_not_before(context)
    read = await repository.get_read(session, read_id)
    if read is None or not visible_to(context, read):
        raise NotFound(f"no read {read_id}")
    return read


def public_track(view: TrackView) -> TrackPublic:
    """The API form of a track."""
    track = view.track
    return TrackPublic(
        id=track.id,
        fused_text=track.fused_text,
        confidence=track.fused_confidence,
        character_confidences=list(track.character_confidences),
        read_ids=view.read_ids,
        first_captured_at=track.first_captured_at,
        last_captured_at=track.last_captured_at,
    )


def public_plate(plate: Plate, track: TrackView | None = None) -> PlatePublic:
    """The API form of a stored plate."""
    return PlatePublic(
        index=plate.plate_index,
        text=plate.text,
        confidence=plate.confidence,
        box=plate.box,
        region=plate.region,
        state=plate.state,
        source=plate.source,
        candidates=[Candidate.model_validate(c) for c in plate.candidates],
        track=public_track(track) if track is not None else None,
    )


def public_read(
    read: Read, plates: Sequence[Plate], tracks: Mapping[int, TrackView] | None = None
) -> ReadPublic:
    """The API form of a stored read (with the track of each plate on one)."""
    edge = (
        EdgePlate.model_construct(
            text=read.edge_plate, confidence=read.edge_plate_confidence, state=read.edge_plate_state
        )
        if read.edge_plate
        else None
    )
    return ReadPublic(
        id=read.id,
        camera_read_id=read.camera_read_id,
        camera_id=read.camera_id,
        deployment_id=read.deployment_id,
        unit_id=read.unit_id,
        agency=read.agency,
        captured_at=read.captured_at,
        received_at=read.received_at,
        latitude=read.latitude,
        longitude=read.longitude,
        heading=read.heading,
        speed=read.speed,
        lane=read.lane,
        status=ReadStatus(read.status),
        preserved=read.preserved,
        image_available=read.blob_key is not None,
        image_sha256=read.image_sha256,
        edge_plate=edge,
        plates=[public_plate(p, (tracks or {}).get(p.plate_index)) for p in plates],
        attempts=read.attempts,
        last_error=read.last_error,
    )
