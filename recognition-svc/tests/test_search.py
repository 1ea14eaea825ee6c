"""Historical search for a case: plate rules, time, area, cameras, pages, FOUO, bad input."""

from __future__ import annotations

import io
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from lpr_common.context import ContextSigner, RequestContext
from lpr_recognition.reads import repository as reads_repository
from lpr_recognition.reads.models import Plate, Read
from lpr_recognition.reads.partitions import capture_day, ensure_partitions
from lpr_recognition.search.repository import canonical_sql
from lpr_recognition.search.service import encode_cursor
from lpr_recognition.testing import AGENCY, Camera, jpeg_bytes, metadata

PARTNER_AGENCY = "NV0020000"
SACRAMENTO = (38.5816, -121.4944)
PATH = "/v1/reads/search"
MOU_LOOKBACK_DAYS = 60
"""The partner's MOU lookback unless a test says otherwise (searches reach back 30 days)."""


def context_headers(
    signer: ContextSigner,
    *,
    kind: str = "user",
    agency: str = AGENCY,
    method: str = "POST",
    path: str = PATH,
    mou_id: str | None = None,
    lookback_days: int | None = MOU_LOOKBACK_DAYS,
) -> dict[str, str]:
    """A signed context as the gateway mints it after allowing the request.

    A partner's (or any MOU caller's) context states the earliest capture time its MOU
    allows, ``lookback_days`` back; ``None`` mints one as a gateway older than that did.
    """
    now = datetime.now(UTC)
    under_mou = kind == "partner" or mou_id is not None
    not_before = (
        now - timedelta(days=lookback_days) if under_mou and lookback_days is not None else None
    )
    context = RequestContext.model_validate(
        {
            "subject_kind": kind,
            "subject_id": "caller-1",
            "agency": agency,
            "roles": ["partner" if kind == "partner" else "officer"],
            "purpose": "stolen_vehicle",
            "case_number": "PD-2026-000123",
            "mou_id": mou_id,
            "not_before": not_before,
            "method": method,
            "path": path,
            "issued_at": now,
        }
    )
    return {"X-LPR-Context": signer.sign(context)}


def body(**overrides: Any) -> dict[str, Any]:
    """A valid search body over the last 30 days."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "purpose": "stolen_vehicle",
        "case_number": "PD-2026-000123",
        "time_range": {"start": (now - timedelta(days=30)).isoformat(), "end": now.isoformat()},
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


class Reads:
    """Creates reads with one plate each, in the test's transaction."""

    def __init__(self, session: AsyncSession, engine: AsyncEngine) -> None:
        self.session = session
        self.engine = engine
        self.camera_id = f"cam-{uuid.uuid4().hex[:8]}"

    async def add(
        self,
        plate: str,
        *,
        hours_ago: float = 1.0,
        latitude: float = SACRAMENTO[0],
        longitude: float = SACRAMENTO[1],
        camera_id: str | None = None,
        deployment_id: str | None = None,
        agency: str = AGENCY,
        state: str | None = "CA",
    ) -> Read:
        now = datetime.now(UTC)
        captured_at = now - timedelta(hours=hours_ago)
        read = Read(
            id=uuid.uuid4(),
            captured_at=captured_at,
            received_at=now,
            camera_id=camera_id or self.camera_id,
            camera_read_id=f"r-{uuid.uuid4()}",
            agency=agency,
            deployment_id=deployment_id,
            latitude=latitude,
            longitude=longitude,
            status="recognized",
            next_attempt_at=now,
        )
        await reads_repository.add_read(self.session, read)
        await reads_repository.add_plates(
            self.session,
            [
                Plate(
                    read_id=read.id,
                    captured_at=captured_at,
                    plate_index=0,
                    text=plate,
                    normalized_text=plate,
                    confidence=0.91,
                    state=state,
                    source="edge",
                    candidates=[],
                )
            ],
        )
        return read


@pytest.fixture
async def reads(session: AsyncSession, engine: AsyncEngine) -> Reads:
    """A factory of reads for one test; partitions made first (DDL waits for open inserts)."""
    today = datetime.now(UTC)
    await ensure_partitions(engine, [capture_day(today - timedelta(days=d)) for d in range(-1, 45)])
    return Reads(session, engine)


def unique_plate(prefix: str = "S") -> str:
    """A plate no other test uses (tests share the database)."""
    return (prefix + uuid.uuid4().hex.upper())[:7].replace("O", "P").replace("I", "J")


async def search(
    client: httpx.AsyncClient, signer: ContextSigner, payload: dict[str, Any], **who: Any
) -> httpx.Response:
    return await client.post(PATH, json=payload, headers=context_headers(signer, **who))


def read_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [r["read_id"] for r in response.json()["results"]]


async def test_c8_exact_plate_search_finds_the_case_reads_newest_first(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate()
    older = await reads.add(plate, hours_ago=48)
    newer = await reads.add(plate, hours_ago=2)
    await reads.add(unique_plate())
    response = await search(client, signer, body(plate=plate.lower()))
    assert read_ids(response) == [str(newer.id), str(older.id)]
    page = response.json()
    first = page["results"][0]
    assert (first["plate"], first["state"], first["confidence"]) == (plate, "CA", 0.91)
    assert (first["latitude"], first["longitude"]) == SACRAMENTO
    assert first["camera_id"] == reads.camera_id
    assert first["match"] == "exact"
    assert first["links"]["read"] == f"/v1/reads/{newer.id}"
    assert page["marking"] == "FOUO"
    assert (page["purpose"], page["case_number"]) == ("stolen_vehicle", "PD-2026-000123")


async def test_d_answer_headers_tell_the_gateway_count_class_ids_owner_and_marking(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate()
    first = await reads.add(plate, hours_ago=3)
    second = await reads.add(plate, hours_ago=1)
    response = await search(client, signer, body(plate=plate))
    assert response.status_code == 200
    assert response.headers["X-LPR-Result-Count"] == "2"
    assert response.headers["X-LPR-Data-Class"] == "reads"
    assert response.headers["X-LPR-Record-Ids"] == f"{second.id},{first.id}"
    assert response.headers["X-LPR-Owner-Agency"] == AGENCY
    assert response.headers["X-LPR-Marking"] == "FOUO"


async def test_c8_reads_outside_the_time_range_are_not_returned(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate()
    inside = await reads.add(plate, hours_ago=24 * 5)
    await reads.add(plate, hours_ago=24 * 40)
    response = await search(client, signer, body(plate=plate))
    assert read_ids(response) == [str(inside.id)]


async def test_partial_plate_with_wildcards(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate("W")
    hit = await reads.add(plate)
    # Differs at the second and the last character: neither pattern may match it.
    other = plate[0] + ("X" if plate[1] != "X" else "Y") + plate[2:-1]
    await reads.add(other + ("1" if plate[-1] != "1" else "2"))
    pattern = plate[:3] + "?" + plate[4:6] + "*"
    response = await search(client, signer, body(plate=pattern))
    assert read_ids(response) == [str(hit.id)]
    assert response.json()["results"][0]["match"] == "pattern"
    suffix = await search(client, signer, body(plate="*" + plate[2:]))
    assert read_ids(suffix) == [str(hit.id)]


async def test_ocr_equivalent_search_uses_the_shared_plate_rules(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    tail = uuid.uuid4().hex[:3].upper().replace("O", "P").replace("I", "J")
    read = await reads.add(f"8Z0{tail}5")
    exact = await search(client, signer, body(plate=f"B20{tail}S"))
    assert read_ids(exact) == []
    ocr = await search(client, signer, body(plate=f"B20{tail}S", match="ocr_equivalent"))
    assert read_ids(ocr) == [str(read.id)]
    result = ocr.json()["results"][0]
    assert result["match"] == "ocr_equivalent"
    assert result["substitutions"] == "8≈B, Z≈2, 5≈S"
    pattern = await search(client, signer, body(plate=f"BZO{tail}*", match="ocr_equivalent"))
    assert read_ids(pattern) == [str(read.id)]


def test_canonical_expression_is_the_one_the_migration_indexes() -> None:
    migration = next(
        Path(__file__).parents[1].glob("src/lpr_recognition/migrations/versions/*_search.py")
    ).read_text()
    assert canonical_sql("normalized_text") in migration


async def test_area_search_by_box_and_by_radius(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate("A")
    here = await reads.add(plate, latitude=38.5816, longitude=-121.4944)
    # About 2.2 km north: inside a 3 km radius, outside a 1 km one.
    near = await reads.add(plate, latitude=38.6016, longitude=-121.4944, hours_ago=2)
    await reads.add(plate, latitude=37.7749, longitude=-122.4194, hours_ago=3)
    box = {"south": 38.57, "west": -121.51, "north": 38.61, "east": -121.48}
    boxed = await search(client, signer, body(plate=plate, area={"bbox": box}))
    assert read_ids(boxed) == [str(here.id), str(near.id)]
    center = {"latitude": 38.5816, "longitude": -121.4944}
    wide = await search(
        client, signer, body(plate=plate, area={"center": center, "radius_m": 3000})
    )
    assert read_ids(wide) == [str(here.id), str(near.id)]
    tight = await search(
        client, signer, body(plate=plate, area={"center": center, "radius_m": 1000})
    )
    assert read_ids(tight) == [str(here.id)]


async def test_camera_and_deployment_filters(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate("C")
    deployment = str(uuid.uuid4())
    ours = await reads.add(plate, camera_id="cam-north-" + plate, deployment_id=deployment)
    await reads.add(plate, camera_id="cam-south-" + plate, hours_ago=2)
    by_camera = await search(client, signer, body(plate=plate, cameras=["cam-north-" + plate]))
    assert read_ids(by_camera) == [str(ours.id)]
    by_deployment = await search(client, signer, body(deployments=[deployment]))
    assert read_ids(by_deployment) == [str(ours.id)]


async def test_pages_follow_the_cursor_without_gaps_or_repeats(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate("P")
    created = [await reads.add(plate, hours_ago=hours) for hours in (1, 2, 3, 4, 5)]
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        response = await search(client, signer, body(plate=plate, limit=2, cursor=cursor))
        seen += read_ids(response)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(read.id) for read in created]
    assert cursor is None


async def test_other_agencies_reads_are_not_searched_by_an_officer(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate("O")
    ours = await reads.add(plate)
    await reads.add(plate, agency="TX0030000", hours_ago=2)
    response = await search(client, signer, body(plate=plate))
    assert read_ids(response) == [str(ours.id)]
    partner = await search(
        client, signer, body(plate=plate), kind="partner", agency=PARTNER_AGENCY, mou_id="mou-1"
    )
    assert read_ids(partner) == [str(ours.id)]
    assert partner.headers["X-LPR-Owner-Agency"] == AGENCY


EAST, WEST = "+14:00", "-14:00"
"""The farthest UTC offsets: a time near year 1 or 9999 converts past it in UTC."""
YEAR_0_IN_UTC = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))


def forged_cursor(captured_at: datetime, plate_index: int) -> str:
    """A cursor in the search's own encoding, with values no search returns."""
    return encode_cursor(
        {"captured_at": captured_at, "read_id": uuid.uuid4(), "plate_index": plate_index}
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"time_range": None, "plate": "ABC123"}, "time_range.start"),
        ({"time_range": {"end": "2026-11-01T00:00:00Z"}, "plate": "ABC123"}, "time_range.start"),
        (
            {"time_range": {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}},
            "time_range",
        ),
        ({"time_range": {"start": "2026-11-01T00:00:00"}, "plate": "ABC123"}, "time_range.start"),
        ({"plate": "**??"}, "plate"),
        ({"plate": "AB*", "match": "exact"}, "plate"),
        ({"plate": "AB#12"}, "plate"),
        ({}, "plate"),
        (
            {
                "plate": "ABC123",
                "area": {"center": {"latitude": 38.5, "longitude": -121.5}, "radius_m": 80000},
            },
            "area.radius_m",
        ),
        (
            {"plate": "ABC123", "area": {"center": {"latitude": 38.5, "longitude": -121.5}}},
            "area.radius_m",
        ),
        (
            {
                "plate": "ABC123",
                "area": {"bbox": {"south": 30, "west": -125, "north": 40, "east": -115}},
            },
            "area.bbox",
        ),
        ({"plate": "ABC123", "case_number": "case 12"}, "case_number"),
        ({"plate": "ABC123", "case_number": None}, "case_number"),
        ({"plate": "ABC123", "purpose": "law enforcement"}, "purpose"),
        ({"plate": "ABC123", "state": "XX"}, "state"),
        ({"plate": "ABC123", "cursor": "not-a-cursor"}, "cursor"),
        ({"plate": "ABC123", "limit": 5000}, "limit"),
        ({"plate": "ABC123", "cameras": ["cam\x00x"]}, "cameras.0"),
        ({"plate": "ABC123", "deployments": ["dep\x00x"]}, "deployments.0"),
        (
            {"plate": "ABC123", "time_range": {"start": f"0001-01-01T00:00:00{EAST}"}},
            "time_range.start",
        ),
        (
            {
                "plate": "ABC123",
                "time_range": {
                    "start": "9999-12-01T00:00:00Z",
                    "end": f"9999-12-31T23:59:59{WEST}",
                },
            },
            "time_range.end",
        ),
        ({"plate": "ABC123", "cursor": forged_cursor(datetime.now(UTC), 10**30)}, "cursor"),
        ({"plate": "ABC123", "cursor": forged_cursor(YEAR_0_IN_UTC, 0)}, "cursor"),
    ],
    ids=[
        "unbounded-time-range",
        "no-start",
        "span-too-long",
        "naive-time",
        "only-wildcards",
        "wildcards-with-exact",
        "bad-characters",
        "nothing-to-search-for",
        "radius-over-limit",
        "center-without-radius",
        "box-too-large",
        "malformed-case-number",
        "missing-case-number",
        "vague-purpose",
        "unknown-state",
        "forged-cursor",
        "page-too-large",
        "nul-in-camera",
        "nul-in-deployment",
        "start-before-year-1-in-utc",
        "end-after-year-9999-in-utc",
        "cursor-index-over-int4",
        "cursor-before-year-1-in-utc",
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    client: httpx.AsyncClient, signer: ContextSigner, overrides: dict[str, Any], field: str
) -> None:
    response = await search(client, signer, body(**overrides))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert field in {e["field"] for e in problem["errors"]}, problem


async def test_unknown_camera_is_refused_naming_it(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate("U")
    await reads.add(plate)
    response = await search(
        client, signer, body(plate=plate, cameras=[reads.camera_id, "cam-nowhere"])
    )
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert errors == [
        {"field": "cameras[1]", "reason": "unknown camera 'cam-nowhere': no reads from it"}
    ]


async def test_cameras_do_not_search(client: httpx.AsyncClient, signer: ContextSigner) -> None:
    response = await search(client, signer, body(plate="ABC123"), kind="camera")
    assert response.status_code == 403


async def test_search_without_a_signed_context_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, json=body(plate="ABC123"))
    assert response.status_code == 401


def _bottom_band_brightness(data: bytes) -> float:
    with Image.open(io.BytesIO(data)) as image:
        gray = image.convert("L")
        width, height = gray.size
        band = gray.crop((0, height - max(4, height // 10), width, height))
        pixels: list[int] = [int(value) for value in band.getdata()]
    return sum(pixels) / len(pixels)


async def test_d_images_leaving_the_agency_carry_a_visible_fouo_watermark(
    client: httpx.AsyncClient, signer: ContextSigner, camera: Camera
) -> None:
    image = jpeg_bytes(320, 200, color=(230, 230, 230))
    posted = await camera.post_read(client, metadata(), image)
    assert posted.status_code == 202, posted.text
    path = f"/v1/reads/{posted.json()['read_id']}/image"
    own = await client.get(path, headers=context_headers(signer, method="GET", path=path))
    assert own.status_code == 200
    assert own.content == image
    assert own.headers["X-LPR-Marking"] == "FOUO"
    assert "X-LPR-Watermark" not in own.headers
    shared = await client.get(
        path,
        headers=context_headers(
            signer, kind="partner", agency=PARTNER_AGENCY, method="GET", path=path, mou_id="m-1"
        ),
    )
    assert shared.status_code == 200
    assert shared.headers["X-LPR-Marking"] == "FOUO"
    assert re.fullmatch(r"FOUO; recipient=NV0020000", shared.headers["X-LPR-Watermark"])
    assert shared.content != image
    # The banner darkens the bottom of a light image: visible, not metadata.
    assert _bottom_band_brightness(shared.content) < _bottom_band_brightness(image) - 40


async def test_d2_partner_cannot_fetch_a_read_older_than_its_mou_lookback_by_id(
    client: httpx.AsyncClient, signer: ContextSigner, camera: Camera
) -> None:
    captured_at = datetime.now(UTC) - timedelta(days=400)
    posted = await camera.post_read(
        client, metadata(captured_at=captured_at.isoformat()), jpeg_bytes(320, 200)
    )
    assert posted.status_code == 202, posted.text
    read_id = posted.json()["read_id"]
    paths = [f"/v1/reads/{read_id}", f"/v1/reads/{read_id}/image"]

    def partner(path: str, lookback_days: int) -> dict[str, str]:
        return context_headers(
            signer,
            kind="partner",
            agency=PARTNER_AGENCY,
            method="GET",
            path=path,
            mou_id="m-1",
            lookback_days=lookback_days,
        )

    # The id came from a hit or a search while it was recent; the MOU reaches 30 days back.
    for path in [*paths, f"/v1/reads/{read_id}/plates/0/crop"]:
        response = await client.get(path, headers=partner(path, 30))
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"] == f"no read {read_id}"
    for path in paths:
        own = await client.get(path, headers=context_headers(signer, method="GET", path=path))
        assert own.status_code == 200, (path, own.text)
        # Not a broken read: under an MOU reaching back far enough it is shared.
        shared = await client.get(path, headers=partner(path, 401))
        assert shared.status_code == 200, (path, shared.text)


async def test_d2_partner_context_without_the_mou_lookback_is_refused(
    client: httpx.AsyncClient, signer: ContextSigner, camera: Camera
) -> None:
    posted = await camera.post_read(client, metadata(), jpeg_bytes(320, 200))
    assert posted.status_code == 202, posted.text
    path = f"/v1/reads/{posted.json()['read_id']}"
    # As a gateway older than the rule mints it: nothing bounds the age of the data.
    old_gateway: dict[str, Any] = {
        "kind": "partner",
        "agency": PARTNER_AGENCY,
        "mou_id": "m-1",
        "lookback_days": None,
    }
    read = await client.get(
        path, headers=context_headers(signer, method="GET", path=path, **old_gateway)
    )
    searched = await search(client, signer, body(plate="ABC123"), **old_gateway)
    for response in (read, searched):
        assert response.status_code == 403, response.text
        assert response.json()["rule"] == "mou-lookback"


async def test_d2_partner_search_before_its_mou_lookback_is_refused(
    client: httpx.AsyncClient, signer: ContextSigner, reads: Reads
) -> None:
    plate = unique_plate("L")
    recent = await reads.add(plate, hours_ago=24)
    await reads.add(plate, hours_ago=40 * 24)
    partner = {"kind": "partner", "agency": PARTNER_AGENCY, "mou_id": "m-1", "lookback_days": 30}
    now = datetime.now(UTC)
    within = {"start": (now - timedelta(days=29)).isoformat(), "end": now.isoformat()}
    allowed = await search(client, signer, body(plate=plate, time_range=within), **partner)
    assert allowed.status_code == 200, allowed.text
    assert read_ids(allowed) == [str(recent.id)]
    # The gateway refuses this first (mou-lookback); the service holds the same line.
    beyond = {"start": (now - timedelta(days=45)).isoformat(), "end": now.isoformat()}
    refused = await search(client, signer, body(plate=plate, time_range=beyond), **partner)
    assert refused.status_code == 403, refused.text
    assert refused.json()["rule"] == "mou-lookback"


def test_watermark_names_the_recipient() -> None:
    from lpr_recognition.search.marking import watermark_text

    assert watermark_text(PARTNER_AGENCY) == "FOUO — NV0020000"
