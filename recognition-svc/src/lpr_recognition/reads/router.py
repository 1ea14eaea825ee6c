"""Routes of the reads domain: cameras post reads; callers look at reads, images and crops."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import cv2
import numpy as np
from fastapi import APIRouter, File, Form, Request, Response, UploadFile
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import ContextDep, RequestContext
from lpr_common.db import SessionDep
from lpr_common.errors import FieldError, NotFound, PayloadTooLarge, ServiceUnavailable
from lpr_recognition.blobs import BlobError, BlobStore
from lpr_recognition.fusion.service import FusionConfig, tracks_of_read
from lpr_recognition.reads import repository, service
from lpr_recognition.reads.images import check_image
from lpr_recognition.reads.models import Read
from lpr_recognition.reads.schemas import (
    BatchAccepted,
    BatchReadAccepted,
    ReadAccepted,
    ReadBatch,
    ReadPublic,
)
from lpr_recognition.search.marking import MARKING_HEADER, WATERMARK_HEADER, watermark
from lpr_recognition.search.schemas import FOUO
from lpr_recognition.settings import Settings

router = APIRouter(prefix="/v1/reads", tags=["reads"])

# Room for the metadata part and multipart framing on top of the image limit.
_MULTIPART_OVERHEAD = 256 * 1024


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _blobs(request: Request) -> BlobStore:
    blobs: BlobStore = request.app.state.blobs
    return blobs


async def _commit_and_wake_workers(request: Request, session: AsyncSession) -> None:
    """Commit the new reads, then wake the recognition workers to claim them.

    ``SessionDep`` would commit only after the endpoint returns: a worker woken before
    that claims in its own transaction, finds nothing, and sleeps ``worker_poll_s``. The
    dependency's own commit is then a no-op.
    """
    await session.commit()
    wakeup: asyncio.Event | None = getattr(request.app.state, "recognition_wakeup", None)
    if wakeup is not None:
        wakeup.set()


def _data_headers(read: Read, data_class: str) -> dict[str, str]:
    return {
        "X-LPR-Result-Count": "1",
        "X-LPR-Data-Class": data_class,
        "X-LPR-Record-Ids": str(read.id),
        "X-LPR-Owner-Agency": read.agency,
        MARKING_HEADER: FOUO,
    }


async def _marked_image(
    context: RequestContext, read: Read, data: bytes, media_type: str
) -> tuple[bytes, str, dict[str, str]]:
    """The image as the caller may have it: watermarked FOUO when it leaves the agency (D)."""
    if context.subject_kind == "service" or context.agency == read.agency:
        return data, media_type, {}
    marked, marked_type = await asyncio.to_thread(watermark, data, context.agency)
    return marked, marked_type, {WATERMARK_HEADER: f"{FOUO}; recipient={context.agency}"}


@router.post(
    "",
    status_code=202,
    response_model=ReadAccepted,
    responses={200: {"model": ReadAccepted, "description": "The read was already posted"}},
)
async def post_read(
    request: Request,
    context: ContextDep,
    session: SessionDep,
    image: Annotated[UploadFile, File(description="The JPEG or PNG image of the read")],
    metadata: Annotated[str, Form(description="JSON: camera_read_id, captured_at, latitude, ...")],
) -> JSONResponse:
    """Store a camera read and its image; recognition follows."""
    camera = service.camera_of(context)
    settings = _settings(request)
    parsed = service.parse_metadata(metadata)
    now = datetime.now(UTC)
    service.check_capture_time(
        parsed.captured_at,
        now=now,
        tolerance_s=settings.future_tolerance_s,
        field="metadata.captured_at",
    )
    data = await image.read(settings.max_image_bytes + 1)
    checked = await asyncio.to_thread(
        check_image,
        data,
        declared_type=image.content_type,
        max_bytes=settings.max_image_bytes,
        max_pixels=settings.max_image_pixels,
    )
    outcome = await service.ingest_read(
        session=session,
        engine=request.app.state.engine,
        blobs=_blobs(request),
        camera=camera,
        metadata=parsed,
        image=data,
        checked=checked,
        now=now,
    )
    if outcome.created:
        await _commit_and_wake_workers(request, session)
    body = ReadAccepted(read_id=outcome.read_id, status=outcome.status)
    return JSONResponse(body.model_dump(mode="json"), status_code=202 if outcome.created else 200)


@router.post("/batch", status_code=202)
async def post_read_batch(
    request: Request, context: ContextDep, session: SessionDep, batch: ReadBatch
) -> BatchAccepted:
    """Store reads whose plate the camera read on board (no images)."""
    camera = service.camera_of(context)
    settings = _settings(request)
    if len(batch.reads) > settings.batch_max_reads:
        raise PayloadTooLarge(
            f"reads: {len(batch.reads)} reads, at most {settings.batch_max_reads} per batch",
            errors=[
                FieldError(field="reads", reason=f"more than {settings.batch_max_reads} reads")
            ],
        )
    now = datetime.now(UTC)
    for position, read in enumerate(batch.reads):
        service.check_capture_time(
            read.captured_at,
            now=now,
            tolerance_s=settings.future_tolerance_s,
            field=f"reads.{position}.captured_at",
        )
    outcomes = await service.ingest_batch(
        session=session,
        engine=request.app.state.engine,
        camera=camera,
        reads=batch.reads,
        now=now,
        fusion=FusionConfig.of(settings),
    )
    await _commit_and_wake_workers(request, session)
    return BatchAccepted(
        reads=[
            BatchReadAccepted(read_id=o.read_id, status=o.status, camera_read_id=o.camera_read_id)
            for o in outcomes
        ]
    )


@router.get("/{read_id}")
async def get_read(
    read_id: UUID, context: ContextDep, session: SessionDep, response: Response
) -> ReadPublic:
    """Show a read, its status and the plates found on it."""
    read = await service.get_visible_read(session, context, read_id)
    plates = await repository.get_plates(session, read)
    tracks = await tracks_of_read(session, read.id)
    response.headers.update(_data_headers(read, "reads"))
    return service.public_read(read, plates, tracks)


async def _image_of(request: Request, read: Read) -> bytes:
    if read.blob_key is None:
        raise NotFound(f"read {read.id} has no image")
    try:
        return await _blobs(request).get(read.blob_key)
    except BlobError as exc:
        raise ServiceUnavailable(f"image of read {read.id} unavailable: {exc}") from exc


@router.get(
    "/{read_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
async def get_read_image(
    request: Request, read_id: UUID, context: ContextDep, session: SessionDep
) -> Response:
    """Send the image of a read as the camera posted it."""
    read = await service.get_visible_read(session, context, read_id)
    data = await _image_of(request, read)
    data, media_type, marked = await _marked_image(
        context, read, data, read.image_content_type or "application/octet-stream"
    )
    return Response(
        data,
        media_type=media_type,
        headers={
            **_data_headers(read, "images"),
            "X-LPR-Image-SHA256": read.image_sha256 or "",
            **marked,
        },
    )


def _crop_jpeg(data: bytes, box: list[int]) -> bytes:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    height, width = image.shape[:2]
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(width, x + w), min(height, y + h)
    ok, encoded = cv2.imencode(".jpg", image[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError("crop could not be encoded")
    return bytes(encoded.tobytes())


@router.get(
    "/{read_id}/plates/{index}/crop",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_plate_crop(
    request: Request, read_id: UUID, index: int, context: ContextDep, session: SessionDep
) -> Response:
    """Send the part of a read's image that holds one of its plates."""
    read = await service.get_visible_read(session, context, read_id)
    plates = {p.plate_index: p for p in await repository.get_plates(session, read)}
    plate = plates.get(index)
    if plate is None or not plate.box:
        raise NotFound(f"read {read_id} has no plate {index} with a box")
    data = await _image_of(request, read)
    crop = await asyncio.to_thread(_crop_jpeg, data, plate.box)
    crop, media_type, marked = await _marked_image(context, read, crop, "image/jpeg")
    return Response(
        crop, media_type=media_type, headers={**_data_headers(read, "images"), **marked}
    )
