"""The recognition worker: pending reads in, plates out, through Triton.

Reads are claimed with ``FOR UPDATE SKIP LOCKED`` and a lease, recognized with a
concurrency limit, and their plates stored with the status change and the handoff
message in one transaction. A failure (Triton down, a timeout) leaves the read pending
with its error and a later ``next_attempt_at``; nothing is lost because nothing but
the database says what is left to do.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from lpr_common.plates import InvalidPlate, normalize_plate
from lpr_recognition.blobs import BlobError, BlobStore
from lpr_recognition.fusion.service import FusionConfig, join_tracks
from lpr_recognition.inference.errors import InvalidImage, RecognitionUnavailable
from lpr_recognition.inference.pipeline import PlateResult
from lpr_recognition.reads import repository
from lpr_recognition.reads.models import OutboxKind, Plate, Read, ReadStatus
from lpr_recognition.workers.backoff import retry_delay

_logger = logging.getLogger(__name__)


class Recognizer(Protocol):
    """Reads the plates in an image (``TritonRecognizer`` in the service)."""

    async def recognize(self, image_bytes: bytes, region: str | None = None) -> list[PlateResult]:
        """Every plate in the image, best first."""
        ...


def _normalized(text: str) -> str:
    try:
        return normalize_plate(text)
    except InvalidPlate:
        return ""


def plate_rows(read: Read, results: list[PlateResult]) -> list[Plate]:
    """Rows for every plate found (unreadable ones too: their box still says a car was there)."""
    return [
        Plate(
            read_id=read.id,
            captured_at=read.captured_at,
            plate_index=index,
            text=result.text,
            normalized_text=_normalized(result.text),
            confidence=float(result.confidence),
            detection_confidence=float(result.detection_confidence),
            box=[int(v) for v in result.box],
            region=result.region,
            source="recognition",
            candidates=[
                {"text": text, "confidence": float(confidence)}
                for text, confidence in result.candidates
            ],
        )
        for index, result in enumerate(results)
    ]


class RecognitionWorker:
    """Claims pending reads and records what Triton finds on them."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        blobs: BlobStore,
        recognizer: Recognizer,
        region: str | None,
        concurrency: int,
        lease_s: float,
        retry_base_s: float,
        retry_max_s: float,
        fusion: FusionConfig | None = None,
    ) -> None:
        """Configure the worker (see the service settings of the same names)."""
        self._sessionmaker = sessionmaker
        self._blobs = blobs
        self._recognizer = recognizer
        self._region = region
        self._concurrency = concurrency
        self._lease = timedelta(seconds=lease_s)
        self._retry_base_s = retry_base_s
        self._retry_max_s = retry_max_s
        self._fusion = fusion or FusionConfig()

    async def run_once(self) -> int:
        """Claim up to ``concurrency`` due reads and process them; return how many."""
        async with self._sessionmaker() as session, session.begin():
            reads = await repository.claim_due_reads(
                session, limit=self._concurrency, now=datetime.now(UTC), lease=self._lease
            )
        await asyncio.gather(*(self._process(read) for read in reads))
        return len(reads)

    async def _process(self, read: Read) -> None:
        assert read.blob_key is not None
        error: str | None = None
        try:
            image = await self._blobs.get(read.blob_key)
            results = await self._recognizer.recognize(image, self._region)
        except InvalidImage as exc:
            # Checked at ingestion, so this is a model-side refusal: record it, do not loop.
            results, error = [], f"image could not be recognized: {exc}"
        except (RecognitionUnavailable, BlobError) as exc:
            await self._postpone(read, f"{type(exc).__name__}: {exc}")
            return
        except Exception as exc:
            _logger.exception("recognition of read %s failed", read.id)
            await self._postpone(read, f"{type(exc).__name__}: {exc}")
            return
        await self._record(read, results, error)

    async def _record(self, read: Read, results: list[PlateResult], error: str | None) -> None:
        now = datetime.now(UTC)
        plates = plate_rows(read, results)
        async with self._sessionmaker() as session, session.begin():
            current = await repository.get_read(session, read.id)
            # Another worker finished it after our lease ran out: keep its result.
            if current is None or current.status != ReadStatus.pending.value:
                return
            await repository.update_read(
                session,
                read,
                status=ReadStatus.recognized.value,
                recognized_at=now,
                last_error=error,
                next_attempt_at=now,
            )
            await repository.add_plates(session, plates)
            # The frame joins its vehicle's track now; its handoff (queued below) sends
            # the track's fused plate as it stands when delivered.
            await join_tracks(
                session,
                read=read,
                plates=plates,
                config=self._fusion,
                now=now,
                character_confidences={
                    index: result.character_confidences for index, result in enumerate(results)
                },
            )
            if any(p.normalized_text for p in plates):
                await repository.add_outbox(
                    session,
                    kind=OutboxKind.match,
                    payload={},
                    now=now,
                    read_id=read.id,
                    captured_at=read.captured_at,
                )

    async def _postpone(self, read: Read, error: str) -> None:
        delay = retry_delay(read.attempts, self._retry_base_s, self._retry_max_s)
        now = datetime.now(UTC)
        async with self._sessionmaker() as session, session.begin():
            await repository.update_read(
                session,
                read,
                next_attempt_at=now + timedelta(seconds=delay),
                last_error=error[:1000],
            )
