"""Posting reads: stored before acknowledged, idempotent, and refused with nothing stored."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import ContextSigner
from lpr_common.db import plain_url
from lpr_recognition.app import create_app
from lpr_recognition.fusion.service import join_tracks_of_frames
from lpr_recognition.reads import service
from lpr_recognition.settings import Settings
from lpr_recognition.testing import (
    Camera,
    blob_files,
    jpeg_bytes,
    metadata,
    noisy_jpeg,
    png_bytes,
    stored_rows,
    user_headers,
)
from lprctl.pytest_plugin import app_client


async def test_a_read_is_stored_with_its_image_before_it_is_acknowledged(
    client: httpx.AsyncClient, camera: Camera, session: AsyncSession, blob_dir: Path
) -> None:
    image = jpeg_bytes()
    meta = metadata(edge_plate={"text": "6hp-995", "confidence": 0.8, "state": "ca"})
    response = await camera.post_read(client, meta, image)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    read_id = body["read_id"]

    sha = hashlib.sha256(image).hexdigest()
    assert blob_files(blob_dir) == [blob_dir / sha[:2] / sha[2:4] / sha]
    assert (blob_dir / sha[:2] / sha[2:4] / sha).read_bytes() == image

    path = f"/v1/reads/{read_id}"
    shown = await client.get(path, headers=camera.headers("GET", path))
    assert shown.status_code == 200, shown.text
    read = shown.json()
    assert read["camera_id"] == camera.camera_id
    assert read["deployment_id"] == camera.deployment_id
    assert read["agency"] == "CA0010000"
    assert read["camera_read_id"] == meta["camera_read_id"]
    assert read["status"] == "pending"
    assert read["image_sha256"] == sha
    assert read["edge_plate"] == {"text": "6HP995", "confidence": 0.8, "state": "CA"}
    assert (read["latitude"], read["longitude"], read["heading"]) == (38.5816, -121.4944, 90.0)
    assert shown.headers["X-LPR-Data-Class"] == "reads"
    assert shown.headers["X-LPR-Record-Ids"] == read_id
    assert shown.headers["X-LPR-Owner-Agency"] == "CA0010000"

    image_path = f"{path}/image"
    fetched = await client.get(image_path, headers=camera.headers("GET", image_path))
    assert fetched.status_code == 200
    assert fetched.content == image
    assert fetched.headers["content-type"] == "image/jpeg"
    assert fetched.headers["X-LPR-Data-Class"] == "images"

    # The read.ingested audit event waits in the outbox, in the read's own transaction.
    event = (
        await session.execute(
            text("SELECT payload FROM recognition.outbox WHERE read_id = :id AND kind = 'audit'"),
            {"id": read_id},
        )
    ).scalar_one()
    assert event["event_type"] == "read.ingested"
    assert event["subject_id"] == camera.camera_id


async def test_a_read_lands_in_the_partition_of_its_capture_day(
    client: httpx.AsyncClient, camera: Camera, session: AsyncSession
) -> None:
    captured = datetime(2026, 3, 14, 23, 30, tzinfo=UTC) + timedelta(hours=3)  # 15th in UTC
    response = await camera.post_read(
        client, metadata(captured_at=captured.isoformat()), jpeg_bytes()
    )
    assert response.status_code == 202, response.text
    partition = (
        await session.execute(
            text("SELECT tableoid::regclass::text FROM recognition.reads WHERE id = :id"),
            {"id": response.json()["read_id"]},
        )
    ).scalar_one()
    assert partition == "recognition.reads_p20260315"


async def test_posting_the_same_read_again_returns_the_original(
    client: httpx.AsyncClient, camera: Camera, session: AsyncSession, blob_dir: Path
) -> None:
    meta, image = metadata(), png_bytes()
    first = await camera.post_read(client, meta, image, "image/png")
    again = await camera.post_read(client, meta, image, "image/png")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["read_id"] == first.json()["read_id"]
    assert await stored_rows(session, camera.camera_id) == {"reads": 1, "read_keys": 1, "outbox": 1}
    assert len(blob_files(blob_dir)) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"latitude": 38.6}, "metadata.latitude"),
        ({"captured_at": "2026-01-01T00:00:00+00:00"}, "metadata.captured_at"),
        ({"image": True}, "image"),
    ],
)
async def test_the_same_read_id_with_other_content_is_a_conflict_naming_the_field(
    client: httpx.AsyncClient,
    camera: Camera,
    session: AsyncSession,
    blob_dir: Path,
    change: dict[str, Any],
    field: str,
) -> None:
    meta, image = metadata(), jpeg_bytes()
    assert (await camera.post_read(client, meta, image)).status_code == 202
    before = await stored_rows(session, camera.camera_id), blob_files(blob_dir)
    other_image = jpeg_bytes(color=(1, 2, 3)) if change.pop("image", False) else image
    response = await camera.post_read(client, {**meta, **change}, other_image)
    assert response.status_code == 409, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert (await stored_rows(session, camera.camera_id), blob_files(blob_dir)) == before


def _truncated_jpeg() -> bytes:
    data = jpeg_bytes(320, 240)
    return data[: len(data) // 2]


def _corrupt_jpeg() -> bytes:
    data = bytearray(jpeg_bytes(320, 240))
    data[200:] = b"\x00" * (len(data) - 200)
    return bytes(data)


def _truncated_png() -> bytes:
    data = png_bytes(320, 240)
    return data[: len(data) - 40]


NOW = datetime.now(UTC)
YEAR_0_IN_UTC = "0001-01-01T00:00:00+14:00"
BAD_INPUTS: list[tuple[str, dict[str, Any] | str, bytes | None, str, int, str]] = [
    ("corrupt JPEG", metadata(), _corrupt_jpeg(), "image/jpeg", 422, "image"),
    ("truncated JPEG", metadata(), _truncated_jpeg(), "image/jpeg", 422, "image"),
    ("truncated PNG", metadata(), _truncated_png(), "image/png", 422, "image"),
    ("empty image", metadata(), b"", "image/jpeg", 422, "image"),
    ("GIF", metadata(), b"GIF89a" + b"\x00" * 64, "image/gif", 415, "image"),
    ("text named JPEG", metadata(), b"hello, not an image", "image/jpeg", 415, "image"),
    ("PNG declared JPEG", metadata(), png_bytes(), "image/jpeg", 415, "image"),
    ("over size limit", metadata(), noisy_jpeg(), "image/jpeg", 413, "image"),
    ("over pixel limit", metadata(), jpeg_bytes(300, 300), "image/jpeg", 422, "image"),
    ("missing image", metadata(), None, "image/jpeg", 422, "image"),
    ("metadata not JSON", "{not json", jpeg_bytes(), "image/jpeg", 422, "metadata"),
    (
        "missing time",
        metadata(captured_at=None),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.captured_at",
    ),
    (
        "invalid time",
        metadata(captured_at="yesterday"),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.captured_at",
    ),
    (
        "time without offset",
        metadata(captured_at="2026-11-29T10:00:00"),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.captured_at",
    ),
    (
        "far-future time",
        metadata(captured_at=(NOW + timedelta(hours=2)).isoformat()),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.captured_at",
    ),
    (
        "missing latitude",
        metadata(latitude=None),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.latitude",
    ),
    (
        "latitude over 90",
        metadata(latitude=91.0),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.latitude",
    ),
    (
        "longitude under -180",
        metadata(longitude=-180.5),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.longitude",
    ),
    (
        "heading over 360",
        metadata(heading=361),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.heading",
    ),
    ("negative speed", metadata(speed=-1), jpeg_bytes(), "image/jpeg", 422, "metadata.speed"),
    (
        "bad edge plate",
        metadata(edge_plate={"text": "AB#12"}),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.edge_plate.text",
    ),
    ("unknown field", metadata(color="red"), jpeg_bytes(), "image/jpeg", 422, "metadata.color"),
    *[
        (name, metadata(**{field: value}), jpeg_bytes(), "image/jpeg", 422, f"metadata.{field}")
        for name, field, value in [
            ("NUL in read id", "camera_read_id", "r\x00x"),
            ("NUL in unit", "unit_id", "unit\x007"),
            ("unit over 64 characters", "unit_id", "u" * 65),
            ("time before year 1 in UTC", "captured_at", YEAR_0_IN_UTC),
        ]
    ],
    (
        "NUL in edge state",
        metadata(edge_plate={"text": "ABC123", "state": "C\x00A"}),
        jpeg_bytes(),
        "image/jpeg",
        422,
        "metadata.edge_plate.state",
    ),
]


@pytest.mark.parametrize(
    ("meta", "image", "content_type", "status", "field"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
async def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
    session: AsyncSession,
    make_settings: Callable[..., Settings],
    camera: Camera,
    blob_dir: Path,
    meta: dict[str, Any] | str,
    image: bytes | None,
    content_type: str,
    status: int,
    field: str,
) -> None:
    # Limits small enough for the small test images to cross them.
    settings = make_settings(max_image_bytes=6000, max_image_pixels=80_000)
    async with app_client(create_app(settings), session) as client:
        response = await camera.post_read(client, meta, image, content_type)
    assert response.status_code == status, response.text
    problem = response.json()
    assert field in [e["field"] for e in problem["errors"]], problem
    assert await stored_rows(session, camera.camera_id) == {"reads": 0, "read_keys": 0, "outbox": 0}
    assert blob_files(blob_dir) == []


async def test_only_a_camera_posts_reads(
    client: httpx.AsyncClient, signer: ContextSigner, session: AsyncSession
) -> None:
    response = await client.post(
        "/v1/reads",
        files={"image": ("read.jpg", jpeg_bytes(), "image/jpeg")},
        data={"metadata": json.dumps(metadata())},
        headers=user_headers(signer, "POST", "/v1/reads"),
    )
    assert response.status_code == 403
    assert response.json()["rule"] == "reads.camera_only"


async def test_a_read_without_a_signed_context_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/reads",
        files={"image": ("read.jpg", jpeg_bytes(), "image/jpeg")},
        data={"metadata": json.dumps(metadata())},
    )
    assert response.status_code == 401


async def test_another_agency_does_not_see_the_read(
    client: httpx.AsyncClient, camera: Camera, signer: ContextSigner
) -> None:
    read_id = (await camera.post_read(client, metadata(), jpeg_bytes())).json()["read_id"]
    path = f"/v1/reads/{read_id}"
    own = await client.get(path, headers=user_headers(signer, "GET", path))
    other = await client.get(path, headers=user_headers(signer, "GET", path, agency="NV0020000"))
    assert own.status_code == 200
    assert other.status_code == 404


async def test_edge_reads_come_in_batches_already_recognized(
    client: httpx.AsyncClient, camera: Camera, session: AsyncSession
) -> None:
    reads = [
        metadata(edge_plate={"text": "7ABC123", "confidence": 0.91, "state": "CA"}),
        metadata(edge_plate={"text": "8xyz 999"}),
    ]
    path = "/v1/reads/batch"
    response = await client.post(path, json={"reads": reads}, headers=camera.headers("POST", path))
    assert response.status_code == 202, response.text
    accepted = response.json()["reads"]
    assert [a["camera_read_id"] for a in accepted] == [r["camera_read_id"] for r in reads]
    assert {a["status"] for a in accepted} == {"recognized"}

    read_path = f"/v1/reads/{accepted[1]['read_id']}"
    shown = (await client.get(read_path, headers=camera.headers("GET", read_path))).json()
    assert shown["image_available"] is False
    assert [(p["text"], p["source"]) for p in shown["plates"]] == [("8XYZ999", "edge")]
    kinds = (
        await session.execute(
            text("SELECT kind FROM recognition.outbox WHERE read_id = :id ORDER BY kind"),
            {"id": accepted[1]["read_id"]},
        )
    ).scalars()
    assert list(kinds) == ["audit", "match"]

    replay = await client.post(path, json={"reads": reads}, headers=camera.headers("POST", path))
    assert [a["read_id"] for a in replay.json()["reads"]] == [a["read_id"] for a in accepted]
    assert (await stored_rows(session, camera.camera_id))["reads"] == 2


@pytest.mark.parametrize(
    ("reads", "status", "field"),
    [
        (
            [
                metadata(edge_plate={"text": "ABC123"}),
                metadata(edge_plate={"text": "ABC124"}, latitude=95),
            ],
            422,
            "reads.1.latitude",
        ),
        ([metadata()], 422, "reads.0.edge_plate"),
        (
            [
                metadata(edge_plate={"text": "ABC123"}),
                metadata(
                    edge_plate={"text": "ABC124"},
                    captured_at=(NOW + timedelta(days=1)).isoformat(),
                ),
            ],
            422,
            "reads.1.captured_at",
        ),
        ([metadata(edge_plate={"text": "ABC123"}) for _ in range(4)], 413, "reads"),
        *[
            (
                [
                    metadata(edge_plate={"text": "ABC123"}),
                    metadata(edge_plate={"text": "ABC124"}, **{field: value}),
                ],
                422,
                f"reads.1.{field}",
            )
            for field, value in [
                ("camera_read_id", "r\x00x"),
                ("unit_id", "unit\x007"),
                ("unit_id", "u" * 65),
                ("captured_at", YEAR_0_IN_UTC),
            ]
        ],
    ],
    ids=[
        "bad coordinate",
        "no plate",
        "future time",
        "over the batch limit",
        "NUL in read id",
        "NUL in unit",
        "unit over 64 characters",
        "time before year 1 in UTC",
    ],
)
async def test_a_bad_batch_stores_nothing(
    session: AsyncSession,
    make_settings: Callable[..., Settings],
    camera: Camera,
    reads: list[dict[str, Any]],
    status: int,
    field: str,
) -> None:
    async with app_client(create_app(make_settings(batch_max_reads=3)), session) as client:
        path = "/v1/reads/batch"
        response = await client.post(
            path, json={"reads": reads}, headers=camera.headers("POST", path)
        )
    assert response.status_code == status, response.text
    assert field in [e["field"] for e in response.json()["errors"]]
    assert await stored_rows(session, camera.camera_id) == {"reads": 0, "read_keys": 0, "outbox": 0}


async def test_a_batch_repeating_a_read_id_is_refused(
    client: httpx.AsyncClient, camera: Camera, session: AsyncSession
) -> None:
    first = metadata(edge_plate={"text": "ABC123"})
    path = "/v1/reads/batch"
    response = await client.post(
        path, json={"reads": [first, dict(first)]}, headers=camera.headers("POST", path)
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "reads.1.camera_read_id"
    assert (await stored_rows(session, camera.camera_id))["reads"] == 0


async def _waiting_on_a_lock(url: str) -> bool:
    connection = await asyncpg.connect(plain_url(url))
    try:
        waiting = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
    finally:
        await connection.close()
    return bool(waiting)


async def test_a_batch_posted_twice_at_once_answers_each_read_s_real_status(
    make_settings: Callable[..., Settings],
    isolated_database_url: str,
    camera: Camera,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second post waits for the first to commit, then reports what it stored."""
    reads = [
        metadata(edge_plate={"text": "RACE111"}),
        metadata(edge_plate={"text": "RACE222"}),
    ]
    path = "/v1/reads/batch"
    first_claimed, release_first = asyncio.Event(), asyncio.Event()
    join = join_tracks_of_frames

    async def held_join(*args: Any, **kwargs: Any) -> None:
        # The first post holds its transaction open after claiming the read ids.
        if not first_claimed.is_set():
            first_claimed.set()
            await release_first.wait()
        await join(*args, **kwargs)

    monkeypatch.setattr(service, "join_tracks_of_frames", held_join)
    app = create_app(make_settings(database_url=isolated_database_url))
    async with app_client(app) as client:

        async def post() -> httpx.Response:
            return await client.post(
                path, json={"reads": reads}, headers=camera.headers("POST", path)
            )

        first = asyncio.create_task(post())
        await asyncio.wait_for(first_claimed.wait(), 10)
        second = asyncio.create_task(post())
        for _ in range(200):  # until the second post waits on the first one's read ids
            if await _waiting_on_a_lock(isolated_database_url):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the second post never waited for the first")
        release_first.set()
        answers = [await asyncio.wait_for(task, 20) for task in (first, second)]
        assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
        stored, repeated = (a.json()["reads"] for a in answers)
        assert [r["read_id"] for r in repeated] == [r["read_id"] for r in stored]
        assert [r["status"] for r in stored] == ["recognized", "recognized"]
        assert [r["status"] for r in repeated] == ["recognized", "recognized"]
        later = await post()
        assert [r["status"] for r in later.json()["reads"]] == ["recognized", "recognized"]
