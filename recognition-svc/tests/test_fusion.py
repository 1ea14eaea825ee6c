"""Multi-frame fusion: a camera's frames of one passing vehicle become one track.

Edge-OCR batches run in the rolled-back test transaction; the recognition worker (which
commits, several frames at once) runs against a database of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from lpr_common.context import ContextSigner
from lpr_common.db import build_engine, build_sessionmaker
from lpr_recognition.app import create_app
from lpr_recognition.blobs import LocalBlobStore
from lpr_recognition.fusion.service import FusionConfig, tracks_of_read
from lpr_recognition.inference.pipeline import PlateResult
from lpr_recognition.reads import repository
from lpr_recognition.settings import Settings
from lpr_recognition.testing import Camera, jpeg_bytes, metadata, user_headers
from lpr_recognition.workers.handoff import match_request
from lpr_recognition.workers.recognition import RecognitionWorker
from lprctl.pytest_plugin import app_client


def edge_read(plate: str, confidence: float, captured_at: datetime) -> dict[str, Any]:
    return metadata(
        captured_at=captured_at.isoformat(),
        edge_plate={"text": plate, "confidence": confidence, "state": "CA"},
    )


async def post_batch(
    client: httpx.AsyncClient, camera: Camera, reads: list[dict[str, Any]]
) -> list[str]:
    path = "/v1/reads/batch"
    response = await client.post(path, json={"reads": reads}, headers=camera.headers("POST", path))
    assert response.status_code == 202, response.text
    return [r["read_id"] for r in response.json()["reads"]]


@pytest.fixture
def make_camera(signer: ContextSigner) -> Callable[[], Camera]:
    return lambda: Camera(camera_id=str(uuid.uuid4()), signer=signer)


async def shown(client: httpx.AsyncClient, signer: ContextSigner, read_id: str) -> dict[str, Any]:
    path = f"/v1/reads/{read_id}"
    response = await client.get(path, headers=user_headers(signer, "GET", path))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_three_frames_of_one_camera_within_the_window_are_one_track(
    client: httpx.AsyncClient, camera: Camera, signer: ContextSigner, session: AsyncSession
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=30)
    # Posted out of capture order; the middle frame misread 5 as S, less surely.
    frames = [
        edge_read("6HP995", 0.8, start + timedelta(seconds=1.6)),
        edge_read("6HP995", 0.9, start),
        edge_read("6HP99S", 0.5, start + timedelta(seconds=0.8)),
    ]
    last, first, middle = await post_batch(client, camera, frames)

    reads = {i: await shown(client, signer, i) for i in (first, middle, last)}
    tracks = {i: r["plates"][0]["track"] for i, r in reads.items()}
    assert len({t["id"] for t in tracks.values()}) == 1
    track = tracks[first]
    assert track["fused_text"] == "6HP995"
    assert track["read_ids"] == [first, middle, last]  # capture order
    assert track["character_confidences"][-1] == pytest.approx((0.8 + 0.9) / 3)
    assert track["character_confidences"][0] == pytest.approx((0.8 + 0.9 + 0.5) / 3)
    assert track["first_captured_at"] < track["last_captured_at"]
    # Each read is stored as it was read: fusion only adds the track.
    assert reads[middle]["plates"][0]["text"] == "6HP99S"
    assert reads[middle]["plates"][0]["candidates"] == [{"text": "6HP99S", "confidence": 0.5}]
    assert reads[middle]["edge_plate"]["text"] == "6HP99S"
    assert reads[middle]["status"] == "recognized"
    stored = await session.execute(
        text(
            "SELECT normalized_text FROM recognition.plates WHERE read_id = ANY(:ids) "
            "ORDER BY captured_at"
        ),
        {"ids": [first, middle, last]},
    )
    assert [row[0] for row in stored] == ["6HP995", "6HP99S", "6HP995"]


async def test_another_camera_a_later_pass_or_another_plate_is_another_track(
    client: httpx.AsyncClient,
    camera: Camera,
    signer: ContextSigner,
    make_camera: Callable[[], Camera],
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=60)
    first, near, other_plate, later = await post_batch(
        client,
        camera,
        [
            edge_read("KLM4567", 0.9, start),
            edge_read("KLM457", 0.6, start + timedelta(seconds=1)),  # one dropped character
            edge_read("XYZ9876", 0.9, start + timedelta(seconds=0.5)),  # a second vehicle
            edge_read("KLM4567", 0.9, start + timedelta(seconds=10)),  # past the window
        ],
    )
    (elsewhere,) = await post_batch(client, make_camera(), [edge_read("KLM4567", 0.9, start)])

    track = {
        i: (await shown(client, signer, i))["plates"][0]["track"]
        for i in (first, near, other_plate, later, elsewhere)
    }
    assert track[first]["id"] == track[near]["id"]
    assert track[first]["fused_text"] == "KLM4567"
    assert track[first]["read_ids"] == [first, near]
    assert len({track[i]["id"] for i in (first, other_plate, later, elsewhere)}) == 4
    for alone in (other_plate, later, elsewhere):
        assert track[alone]["read_ids"] == [alone]


async def test_a_later_batch_continues_the_track_of_an_earlier_one(
    client: httpx.AsyncClient, camera: Camera, signer: ContextSigner
) -> None:
    start = datetime.now(UTC) - timedelta(seconds=40)
    (first,) = await post_batch(client, camera, [edge_read("4QRS321", 0.6, start)])
    # The next batch holds two more frames of that pass (which outvote the first on the
    # last character) and the first frame of the next vehicle.
    second, third, other = await post_batch(
        client,
        camera,
        [
            edge_read("4QRS327", 0.9, start + timedelta(seconds=0.6)),
            edge_read("4QRS327", 0.8, start + timedelta(seconds=1.2)),
            edge_read("9TUV654", 0.9, start + timedelta(seconds=1.5)),
        ],
    )
    track = (await shown(client, signer, first))["plates"][0]["track"]
    assert track["read_ids"] == [first, second, third]
    assert track["fused_text"] == "4QRS327"
    assert (await shown(client, signer, third))["plates"][0]["track"]["id"] == track["id"]
    assert (await shown(client, signer, other))["plates"][0]["track"]["read_ids"] == [other]


async def test_fusion_can_be_switched_off(
    session: AsyncSession,
    make_settings: Callable[..., Settings],
    camera: Camera,
    signer: ContextSigner,
) -> None:
    async with app_client(create_app(make_settings(fusion_enabled=False)), session) as client:
        (read_id,) = await post_batch(client, camera, [edge_read("ABC123", 0.9, datetime.now(UTC))])
        assert (await shown(client, signer, read_id))["plates"][0]["track"] is None


# --- the recognition worker: frames recognized at once, per-character confidences ---------


@pytest.fixture(scope="module")
async def worker_engine(isolated_database_url: str) -> AsyncIterator[AsyncEngine]:
    built = build_engine(isolated_database_url, pool_size=6)
    yield built
    await built.dispose()


class FramesRecognizer:
    """Stands in for Triton: each image is one frame with its own reading."""

    def __init__(self, readings: dict[bytes, PlateResult]) -> None:
        self.readings = readings

    async def recognize(self, image_bytes: bytes, region: str | None = None) -> list[PlateResult]:
        return [self.readings[image_bytes]]


def reading(text: str, confidences: tuple[float, ...]) -> PlateResult:
    return PlateResult(
        text=text,
        confidence=sum(confidences) / len(confidences),
        detection_confidence=0.9,
        box=(10, 10, 40, 12),
        region="us",
        candidates=[(text, sum(confidences) / len(confidences))],
        character_confidences=confidences,
    )


async def test_frames_recognized_at_once_join_one_track_voted_per_character(
    worker_engine: AsyncEngine,
    make_settings: Callable[..., Settings],
    isolated_database_url: str,
    camera: Camera,
) -> None:
    settings = make_settings(database_url=isolated_database_url)
    sessionmaker: async_sessionmaker[AsyncSession] = build_sessionmaker(worker_engine)
    images = [jpeg_bytes(color=(10 * i, 40, 90)) for i in range(1, 4)]
    sure, unsure = 0.97, 0.35
    recognizer = FramesRecognizer(
        {
            # Two frames read the 8 as a B, unsurely; one frame is sure of the 8.
            images[0]: reading("7ABB123", (0.9, 0.9, 0.9, unsure, 0.9, 0.9, 0.9)),
            images[1]: reading("7AB8123", (0.9, 0.9, 0.9, sure, 0.9, 0.9, 0.9)),
            images[2]: reading("7ABB123", (0.9, 0.9, 0.9, unsure, 0.9, 0.9, 0.9)),
        }
    )
    start = datetime.now(UTC) - timedelta(seconds=20)
    read_ids = []
    async with app_client(create_app(settings)) as client:
        for number, image in enumerate(images):
            meta = metadata(captured_at=(start + timedelta(seconds=number * 0.7)).isoformat())
            response = await camera.post_read(client, meta, image)
            assert response.status_code == 202, response.text
            read_ids.append(response.json()["read_id"])
    worker = RecognitionWorker(
        sessionmaker=sessionmaker,
        blobs=LocalBlobStore(settings.blob_dir),
        recognizer=recognizer,
        region="us",
        concurrency=3,  # all three frames recognized and recorded concurrently
        lease_s=60,
        retry_base_s=5.0,
        retry_max_s=60.0,
        fusion=FusionConfig(window_s=3.0),
    )
    assert await worker.run_once() == 3

    async with sessionmaker() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT t.id, t.fused_text, t.character_confidences, t.member_count, "
                    "m.read_id FROM recognition.tracks t JOIN recognition.track_members m "
                    "ON m.track_id = t.id WHERE m.read_id = ANY(CAST(:ids AS uuid[]))"
                ),
                {"ids": read_ids},
            )
        ).all()
        assert len({row.id for row in rows}) == 1
        assert {str(row.read_id) for row in rows} == set(read_ids)
        assert rows[0].fused_text == "7AB8123"
        assert rows[0].member_count == 3
        assert rows[0].character_confidences[3] == pytest.approx(sure / 3)

        # The handoff sends the fused plate, with every frame's reading as an alternative.
        read = await repository.get_read(session, rows[0].read_id)
        assert read is not None
        plates = await repository.get_plates(session, read)
        body = match_request(read, plates, await tracks_of_read(session, read.id))
    [plate] = body["plates"]
    assert plate["text"] == "7AB8123"
    assert plate["track_id"] == str(rows[0].id)
    assert sorted(plate["track_read_ids"]) == sorted(read_ids)
    assert [c["text"] for c in plate["candidates"]][:1] == ["7AB8123"]
    assert "7ABB123" in [c["text"] for c in plate["candidates"]]
