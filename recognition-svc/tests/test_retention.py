"""Retention (IACP B.1.a, B.1.b, E): purge with receipts, preserved reads, legal holds.

The recognition app and the real audit-svc app run in-process against a database of
their own (the purge drops partitions and commits; it must not touch other tests' reads).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from lpr_audit.app import create_app as create_audit_app
from lpr_audit.settings import Settings as AuditSettings
from lpr_common.audit_client import AuditClient, AuditEvent
from lpr_common.context import ContextSigner, RequestContext, service_context_auth
from lpr_common.db import build_engine
from lpr_common.migrations import upgrade
from lpr_common.testing import context_signer
from lpr_recognition.app import create_app
from lpr_recognition.blobs import LocalBlobStore, blob_key
from lpr_recognition.retention import holds
from lpr_recognition.retention.job import (
    RECEIPTS_PATH,
    RETENTION_LOCK_KEY,
    RetentionJob,
    deleted_ids_sha256,
)
from lpr_recognition.retention.runtime import flush_receipts_periodically
from lpr_recognition.settings import Settings
from lpr_recognition.testing import AGENCY, Camera, jpeg_bytes, metadata
from lprctl.commands.retention import cmd_run
from lprctl.pytest_plugin import app_client


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def retention_database_url(migrated_database_url: str) -> Iterator[str]:
    """A database of its own with recognition's and audit's migrations applied."""
    name = f"lpr_retention_{uuid.uuid4().hex[:12]}"
    parts = urlsplit(migrated_database_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    asyncio.run(_admin(migrated_database_url, f'CREATE DATABASE "{name}"'))
    upgrade("lpr_audit", "audit", url)
    upgrade("lpr_recognition", "recognition", url)
    yield url
    asyncio.run(_admin(migrated_database_url, f'DROP DATABASE "{name}" WITH (FORCE)'))


def headers(
    signer: ContextSigner, method: str, path: str, role: str, subject: str | None = None
) -> dict[str, str]:
    """A signed context of a user of the agency holding one role."""
    context = RequestContext(
        subject_kind="user",
        subject_id=subject or f"{role}-1",
        agency=AGENCY,
        roles=[role],
        purpose="investigation",
        method=method,
        path=path,
        issued_at=datetime.now(UTC),
    )
    return {"X-LPR-Context": signer.sign(context)}


@dataclass
class Platform:
    """Recognition and audit, in-process, wired to each other."""

    recognition: httpx.AsyncClient
    audit: httpx.AsyncClient
    app: FastAPI
    engine: AsyncEngine
    signer: ContextSigner
    blob_dir: Path
    camera: Camera
    audit_app: FastAPI

    async def call(
        self, client: httpx.AsyncClient, method: str, path: str, role: str, **kwargs: Any
    ) -> httpx.Response:
        """One request with a signed context of ``role``."""
        bare = path.split("?", 1)[0]
        return await client.request(
            method, path, headers=headers(self.signer, method, bare, role), **kwargs
        )

    async def post_read(
        self, captured_at: datetime, image: bytes | None, *, plate: str | None = None
    ) -> str:
        """Store a read captured at ``captured_at`` (with a plate row when given)."""
        response = await self.camera.post_read(
            self.recognition, metadata(captured_at=captured_at.isoformat()), image
        )
        assert response.status_code == 202, response.text
        read_id: str = response.json()["read_id"]
        if plate is not None:
            async with self.engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO recognition.plates (read_id, captured_at, plate_index, text, "
                        "normalized_text, confidence, source) VALUES "
                        "(:id, :at, 0, :plate, :plate, 0.9, 'recognition')"
                    ),
                    {"id": uuid.UUID(read_id), "at": captured_at, "plate": plate},
                )
        return read_id

    async def matched(self, read_id: str, *, hit: bool) -> None:
        """What the hot-list handoff records: matched, and preserved on a hit."""
        async with self.engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE recognition.reads SET status = 'matched', preserved = :hit "
                    "WHERE id = :id"
                ),
                {"id": uuid.UUID(read_id), "hit": hit},
            )

    async def stored(self, read_ids: list[str]) -> set[str]:
        """Which of ``read_ids`` are still stored."""
        async with self.engine.connect() as connection:
            result = await connection.execute(
                text("SELECT id FROM recognition.reads WHERE id = ANY(:ids)"),
                {"ids": [uuid.UUID(i) for i in read_ids]},
            )
            return {str(row[0]) for row in result}

    async def audit_events(self, event_type: str) -> list[dict[str, Any]]:
        """The access log's events of one type (as an auditor sees them)."""
        path = f"/v1/audit/events?event_type={event_type}&limit=1000"
        response = await self.call(self.audit, "GET", path, "auditor")
        assert response.status_code == 200, response.text
        return [item["fields"] for item in response.json()["items"]]


@pytest.fixture
async def platform(
    retention_database_url: str, service_env: dict[str, str], tmp_path: Path
) -> AsyncIterator[Platform]:
    """Both apps against the retention database; recognition's audit peer is the audit app."""
    blob_dir = tmp_path / "blobs"
    recognition_app = create_app(
        Settings(
            database_url=retention_database_url,
            recognition_enabled=False,
            workers_enabled=False,
            blob_dir_override=blob_dir,
        )
    )
    audit_app = create_audit_app(AuditSettings(database_url=retention_database_url))
    engine = build_engine(retention_database_url, pool_size=2)
    async with (
        app_client(audit_app, base_url="http://audit") as audit,
        app_client(recognition_app) as recognition,
    ):
        signer: ContextSigner = context_signer(recognition_app.state.settings.keys_dir)
        peer = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=audit_app),
            base_url="http://audit",
            auth=service_context_auth(recognition_app.state.service_signer, "recognition"),
        )
        recognition_app.state.audit = AuditClient(peer)
        job: RetentionJob = recognition_app.state.retention
        job.audit = peer
        camera = Camera(camera_id=str(uuid.uuid4()), signer=signer)
        try:
            yield Platform(
                recognition, audit, recognition_app, engine, signer, blob_dir, camera, audit_app
            )
        finally:
            await peer.aclose()
            await engine.dispose()


def _blob(image: bytes, blob_dir: Path) -> Path:
    return blob_dir.joinpath(*blob_key(hashlib.sha256(image).hexdigest()).split("/"))


def _image(seed: int) -> bytes:
    return jpeg_bytes(color=(seed * 37 % 256, seed * 91 % 256, seed * 53 % 256))


async def short_periods(platform: Platform, reason: str) -> None:
    """Periods short enough for a test: non-hit reads 60 min, hits 3 days, images 30 min."""
    settings = await platform.call(
        platform.audit,
        "PUT",
        "/v1/retention/settings",
        "administrator",
        json={
            "periods": {"non_hit_reads": 60, "hit_reads": 3 * 1440, "images": 30},
            "reason": reason,
        },
    )
    assert settings.status_code == 200, settings.text


async def _hold_reads(
    platform: Platform, case_number: str, read_ids: list[str], *, reason: str
) -> httpx.Response:
    """A records clerk places a legal hold on reads by id."""
    return await platform.call(
        platform.recognition,
        "POST",
        "/v1/legal-holds",
        "records",
        json={"case_number": case_number, "reason": reason, "read_ids": read_ids},
    )


async def test_retention_purges_expired_reads_keeps_preserved_ones_and_sends_receipts(
    platform: Platform,
) -> None:
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date(), time(), tzinfo=UTC)
    day8, day5, day2 = (midnight - timedelta(days=d, hours=-12) for d in (8, 5, 2))
    images = {name: _image(seed) for seed, name in enumerate("abcdefghjlmn", start=1)}

    await short_periods(platform, "short periods for the retention test")

    reads = {
        "n": await platform.post_read(day8, images["n"]),  # alone in its day: partition dropped
        "a": await platform.post_read(day5, images["a"]),  # non-hit: deleted
        "b": await platform.post_read(day5, images["b"], plate="HIT555"),  # hit, past 3 days
        "c": await platform.post_read(day5, images["c"], plate="CASE111"),  # held by id
        "l": await platform.post_read(day5 + timedelta(hours=1), images["l"]),  # awaits a match
        "m": await platform.post_read(day5, images["m"]),  # held, then released: deleted
        "e": await platform.post_read(day2, images["e"]),  # non-hit: deleted
        "f": await platform.post_read(day2, images["f"], plate="HIT777"),  # hit within 3 days
        "g": await platform.post_read(day2, images["g"], plate="HOLD123"),  # held by plate
        "h": await platform.post_read(now - timedelta(hours=2), images["h"]),  # row-wise
        "j": await platform.post_read(now - timedelta(minutes=45), images["j"]),  # image only
        "i": await platform.post_read(now - timedelta(minutes=5), _image(77)),  # fresh
        "k": await platform.post_read(now - timedelta(minutes=1), images["a"]),  # shares a's blob
    }
    for name in "abcefghijkmn":
        await platform.matched(reads[name], hit=name in "bf")

    by_id = await _hold_reads(
        platform,
        "PD-2026-000123",
        [reads["c"], reads["m"]],
        reason="evidence in a burglary investigation",
    )
    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["read_count"] == 2
    by_plate = await platform.call(
        platform.recognition,
        "POST",
        "/v1/legal-holds",
        "records",
        json={
            "case_number": "PD-2026-000124",
            "reason": "vehicle of interest in a hit and run",
            "plate": "hold 123",
            "time_range": {
                "start": (day2 - timedelta(hours=12)).isoformat(),
                "end": (day2 + timedelta(hours=12)).isoformat(),
            },
        },
    )
    assert by_plate.status_code == 201, by_plate.text
    assert by_plate.json()["read_ids"] == [reads["g"]]
    # m's hold is released (by an administrator, with a reason) by placing a second hold
    # just for it and releasing that; c stays held by the first.
    only_m = await _hold_reads(
        platform, "PD-2026-000125", [reads["m"]], reason="possible witness vehicle, checking"
    )
    assert only_m.status_code == 201
    first = by_id.json()["id"]
    # Release the first hold and hold c again alone: m is then under no active hold.
    released = await platform.call(
        platform.recognition,
        "DELETE",
        f"/v1/legal-holds/{first}",
        "administrator",
        json={"reason": "case closed, evidence exported"},
    )
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"
    again = await _hold_reads(
        platform, "PD-2026-000123", [reads["c"]], reason="evidence in a burglary investigation"
    )
    assert again.status_code == 201
    second = only_m.json()["id"]
    release_path = f"/v1/legal-holds/{second}"
    released_m = await platform.recognition.delete(
        release_path,
        headers={
            **headers(platform.signer, "DELETE", release_path, "administrator"),
            "X-LPR-Reason": "witness ruled out by the detective",
        },
    )
    assert released_m.status_code == 200, released_m.text

    run = await platform.call(platform.recognition, "POST", "/v1/retention/runs", "administrator")
    assert run.status_code == 201, run.text
    body = run.json()
    assert body["outcome"] == "completed"

    # Non-preserved reads are gone; preserved ones (hit within its period, held, not yet
    # matched) and fresh ones remain.
    everything = list(reads.values())
    kept = await platform.stored(everything)
    assert kept == {reads[n] for n in "cfglijk"}

    # Their images: deleted unless a remaining read uses the same bytes.
    for name in "bemnh":
        assert not _blob(images[name], platform.blob_dir).exists(), name
    assert not _blob(images["j"], platform.blob_dir).exists()  # past the images period
    for name in "cfgl":
        assert _blob(images[name], platform.blob_dir).exists(), name
    assert _blob(images["a"], platform.blob_dir).exists()  # k has the same image
    j_path = f"/v1/reads/{reads['j']}"
    j_read = await platform.recognition.get(j_path, headers=platform.camera.headers("GET", j_path))
    assert j_read.status_code == 200  # the metadata stays
    assert j_read.json()["image_sha256"] == hashlib.sha256(images["j"]).hexdigest()
    j_image_path = f"{j_path}/image"
    gone = await platform.recognition.get(
        j_image_path, headers=platform.camera.headers("GET", j_image_path)
    )
    assert gone.status_code == 404
    c_path = f"/v1/reads/{reads['c']}/image"
    c_image = await platform.recognition.get(c_path, headers=platform.camera.headers("GET", c_path))
    assert c_image.content == images["c"]

    async with platform.engine.connect() as connection:
        plates = {
            str(row[0]): row[1]
            for row in await connection.execute(
                text(
                    "SELECT read_id, normalized_text FROM recognition.plates WHERE read_id = ANY(:ids)"
                ),
                {"ids": [uuid.UUID(i) for i in everything]},
            )
        }
        keys = {
            str(row[0])
            for row in await connection.execute(
                text("SELECT read_id FROM recognition.read_keys WHERE read_id = ANY(:ids)"),
                {"ids": [uuid.UUID(i) for i in everything]},
            )
        }
        day8_partition = (
            await connection.execute(
                text("SELECT to_regclass(:name)"), {"name": f"recognition.reads_p{day8:%Y%m%d}"}
            )
        ).scalar_one()
    assert plates == {reads["c"]: "CASE111", reads["f"]: "HIT777", reads["g"]: "HOLD123"}
    assert keys == kept
    assert day8_partition is None

    # The receipts: one per class, with the SHA-256 of the sorted deleted ids.
    receipts = {r["retention_class"]: r for r in body["receipts"]}
    assert set(receipts) == {"non_hit_reads", "hit_reads", "preserved_reads", "images"}
    non_hit = [reads[n] for n in "aemnh"]
    assert receipts["non_hit_reads"]["deleted_count"] == 5
    expected = hashlib.sha256("\n".join(sorted(non_hit)).encode()).hexdigest()
    assert receipts["non_hit_reads"]["deleted_ids_sha256"] == expected
    assert receipts["non_hit_reads"]["preserved_count"] == 4  # c, f, g, l
    assert receipts["hit_reads"]["deleted_count"] == 1
    assert receipts["hit_reads"]["deleted_ids_sha256"] == deleted_ids_sha256([reads["b"]])
    assert receipts["preserved_reads"]["deleted_count"] == 0
    assert receipts["preserved_reads"]["preserved_count"] == 2  # c and g
    assert receipts["images"]["deleted_count"] == 7  # a, b, e, h, m, n and j's image
    assert receipts["images"]["deleted_ids_sha256"] == deleted_ids_sha256(
        [reads[n] for n in "abehmnj"]
    )
    assert f"reads_p{day5:%Y%m%d}" in receipts["non_hit_reads"]["details"]["partitions_rebuilt"]
    assert f"reads_p{day8:%Y%m%d}" in receipts["non_hit_reads"]["details"]["partitions_dropped"]

    # The same receipts are in the access log chain, and the chain still verifies.
    purges = await platform.audit_events("retention.purge")
    logged = {
        e["details"]["retention_class"]: e["details"]
        for e in purges
        if e["details"].get("extra", {}).get("run_id") == body["id"]
    }
    assert set(logged) == set(receipts)
    for retention_class, receipt in receipts.items():
        for name in ("deleted_count", "preserved_count", "deleted_ids_sha256"):
            assert logged[retention_class][name] == receipt[name]
    verification = await platform.call(
        platform.audit, "GET", "/v1/audit/verification?chain=access", "auditor"
    )
    assert verification.status_code == 200, verification.text
    assert verification.json()["ok"] is True
    assert verification.json()["first_break"] is None

    # Holds were audited; a second run finds nothing more to delete.
    placed = await platform.audit_events("legal_hold.placed")
    assert {e["case_number"] for e in placed} >= {"PD-2026-000123", "PD-2026-000124"}
    released_events = await platform.audit_events("legal_hold.released")
    assert {e["reason"] for e in released_events} >= {
        "case closed, evidence exported",
        "witness ruled out by the detective",
    }
    again_run = await platform.call(
        platform.recognition, "POST", "/v1/retention/runs", "administrator"
    )
    assert again_run.status_code == 201
    assert all(r["deleted_count"] == 0 for r in again_run.json()["receipts"])
    assert await platform.stored(everything) == kept


async def _hold_count(platform: Platform) -> int:
    async with platform.engine.connect() as connection:
        count = await connection.execute(text("SELECT count(*) FROM recognition.legal_holds"))
        return int(count.scalar_one())


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "evidence in a burglary investigation"}, "case_number"),
        ({"case_number": "  ", "reason": "evidence in a burglary investigation"}, "case_number"),
        ({"case_number": "PD-2026-000200"}, "reason"),
        ({"case_number": "PD-2026-000200", "reason": "n/a"}, "reason"),
        ({"case_number": "PD-2026-000200", "reason": "evidence for the case file"}, "read_ids"),
        (
            {
                "case_number": "PD-2026-000200",
                "reason": "evidence for the case file",
                "plate": "ABC123",
                "time_range": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            },
            "time_range.end",
        ),
        ({"case_number": "PD-2026-000200\x00", "reason": "evidence for the case"}, "case_number"),
        ({"case_number": "PD-2026-000200", "reason": "evidence for\x00 the case"}, "reason"),
        *[
            (
                {
                    "case_number": "PD-2026-000200",
                    "reason": "evidence for the case file",
                    "plate": "ABC123",
                    "time_range": time_range,
                },
                field,
            )
            for time_range, field in [
                (
                    {"start": "0001-01-01T00:00:00+14:00", "end": "2026-01-01T00:00:00Z"},
                    "time_range.start",
                ),
                (
                    {"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:00:00-14:00"},
                    "time_range.end",
                ),
            ]
        ],
    ],
)
async def test_a_hold_needs_a_case_number_a_reason_and_its_reads(
    platform: Platform, body: dict[str, Any], field: str
) -> None:
    read_id = await platform.post_read(datetime.now(UTC), _image(5))
    if field != "read_ids" and "plate" not in body:
        body = {**body, "read_ids": [read_id]}
    before = await _hold_count(platform)
    response = await platform.call(
        platform.recognition, "POST", "/v1/legal-holds", "records", json=body
    )
    assert response.status_code == 422, response.text
    assert field in {e["field"] for e in response.json()["errors"]}
    assert await _hold_count(platform) == before


async def test_holds_listed_by_a_case_number_with_nul_are_refused_naming_it(
    platform: Platform,
) -> None:
    response = await platform.call(
        platform.recognition, "GET", "/v1/legal-holds?case_number=PD%00", "records"
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["case_number"]


async def test_a_hold_on_an_unknown_read_is_refused_naming_it(platform: Platform) -> None:
    read_id = await platform.post_read(datetime.now(UTC), _image(6))
    response = await _hold_reads(
        platform,
        "PD-2026-000201",
        [read_id, str(uuid.uuid4())],
        reason="evidence for the case file",
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["read_ids.1"]


async def test_only_an_administrator_releases_a_hold_and_only_with_a_reason(
    platform: Platform,
) -> None:
    read_id = await platform.post_read(datetime.now(UTC), _image(7))
    placed = await _hold_reads(
        platform, "PD-2026-000202", [read_id], reason="evidence for the case file"
    )
    assert placed.status_code == 201
    path = f"/v1/legal-holds/{placed.json()['id']}"
    by_clerk = await platform.call(
        platform.recognition, "DELETE", path, "records", json={"reason": "no longer needed here"}
    )
    assert by_clerk.status_code == 403
    no_reason = await platform.call(platform.recognition, "DELETE", path, "administrator")
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    shown = await platform.call(platform.recognition, "GET", path, "auditor")
    assert shown.json()["status"] == "active"
    released = await platform.call(
        platform.recognition,
        "DELETE",
        path,
        "administrator",
        json={"reason": "court order vacated the hold"},
    )
    assert released.status_code == 200
    assert released.json()["released_by"] == "administrator-1"
    twice = await platform.call(
        platform.recognition,
        "DELETE",
        path,
        "administrator",
        json={"reason": "court order vacated the hold"},
    )
    assert twice.status_code == 409


async def _until_waiting_on_a_lock(platform: Platform, request: asyncio.Task[Any]) -> None:
    """Until a transaction waits on a lock, or ``request`` ends without one (5 s at most)."""
    for _ in range(250):
        async with platform.engine.connect() as connection:
            waiting = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting or request.done():
            return
        await asyncio.sleep(0.02)


async def test_a_hold_released_twice_at_once_is_released_and_audited_once(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second of two concurrent releases changes nothing: 409, and no audit event."""
    read_id = await platform.post_read(datetime.now(UTC), _image(92))
    placed = await _hold_reads(
        platform, "PD-2026-000902", [read_id], reason="evidence for the case file"
    )
    assert placed.status_code == 201, placed.text
    hold_id = placed.json()["id"]

    async def release(reason: str) -> httpx.Response:
        return await platform.call(
            platform.recognition,
            "DELETE",
            f"/v1/legal-holds/{hold_id}",
            "administrator",
            json={"reason": reason},
        )

    real_record = holds._record
    second: list[asyncio.Task[httpx.Response]] = []

    async def record_while_another_release_waits(audit: Any, event: AuditEvent) -> None:
        if event.event_type == "legal_hold.released" and not second:
            # The second release read the hold as active; its UPDATE waits on this one's.
            second.append(asyncio.create_task(release("the court order was vacated")))
            await _until_waiting_on_a_lock(platform, second[0])
        await real_record(audit, event)

    monkeypatch.setattr(holds, "_record", record_while_another_release_waits)
    first = await release("the case was closed")
    again = await second[0]
    assert first.status_code == 200, first.text
    assert first.json()["release_reason"] == "the case was closed"
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("/conflict")
    released = await platform.audit_events("legal_hold.released")
    assert [e["reason"] for e in released if e["details"]["hold_id"] == hold_id] == [
        "the case was closed"
    ]


async def _expired_non_hit_read(platform: Platform, seed: int) -> str:
    """A read past the 60-minute non-hit period in today's partition (purged row-wise)."""
    await short_periods(platform, "short periods for the hold and purge race tests")
    now = datetime.now(UTC)
    captured = max(now - timedelta(hours=2), datetime.combine(now.date(), time(), UTC))
    if now - captured < timedelta(minutes=61):
        pytest.skip("too close to midnight UTC for a row-wise purge of today's partition")
    read_id = await platform.post_read(captured, _image(seed))
    await platform.matched(read_id, hit=False)
    return read_id


async def test_a_run_while_a_hold_is_placed_is_skipped_and_keeps_the_held_read(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """IACP B.1.b: a read a records clerk is told is held is never purged.

    The run cannot see the hold before it commits (``place`` waits for the audit log
    first), so the hold shares the retention lock and the run is skipped meanwhile.
    """
    read_id = await _expired_non_hit_read(platform, 91)
    real_record = holds._record
    runs: list[httpx.Response] = []

    async def record_while_a_run_starts(audit: Any, event: AuditEvent) -> None:
        if event.event_type == "legal_hold.placed" and not runs:
            runs.append(
                await platform.call(
                    platform.recognition, "POST", "/v1/retention/runs", "administrator"
                )
            )
        await real_record(audit, event)

    monkeypatch.setattr(holds, "_record", record_while_a_run_starts)
    placed = await _hold_reads(
        platform, "PD-2026-000901", [read_id], reason="evidence in a burglary investigation"
    )
    [skipped] = runs
    assert skipped.status_code == 503, skipped.text
    assert skipped.json()["detail"].startswith("retention run skipped")
    assert skipped.headers["Retry-After"] == "60"
    assert placed.status_code == 201, placed.text
    assert placed.json()["read_ids"] == [read_id]
    assert await platform.stored([read_id]) == {read_id}

    run = await platform.call(platform.recognition, "POST", "/v1/retention/runs", "administrator")
    assert run.status_code == 201, run.text
    assert run.json()["receipts"][0]["details"]["preserved_legal_hold"] >= 1
    assert await platform.stored([read_id]) == {read_id}


async def test_a_hold_placed_during_a_run_waits_for_it_and_holds_what_is_left(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hold placed while a run purges waits for its commit: it never names a purged read."""
    read_id = await _expired_non_hit_read(platform, 94)
    job: RetentionJob = platform.app.state.retention
    real_stage = job._stage
    holding: list[asyncio.Task[httpx.Response]] = []

    async def stage_while_a_hold_is_placed(*args: Any, **kwargs: Any) -> None:
        # The run has deleted the read but not committed: a hold looking now would see it.
        holding.append(
            asyncio.create_task(
                _hold_reads(
                    platform,
                    "PD-2026-000903",
                    [read_id],
                    reason="evidence in a burglary investigation",
                )
            )
        )
        await _until_waiting_on_a_lock(platform, holding[0])
        await real_stage(*args, **kwargs)

    monkeypatch.setattr(job, "_stage", stage_while_a_hold_is_placed)
    run = await platform.call(platform.recognition, "POST", "/v1/retention/runs", "administrator")
    placed = await holding[0]
    assert run.status_code == 201, run.text
    assert await platform.stored([read_id]) == set()
    assert placed.status_code == 422, placed.text
    assert [e["field"] for e in placed.json()["errors"]] == ["read_ids.0"]


async def test_a_hold_waits_a_bounded_time_for_a_long_purge_then_is_refused_naming_it(
    platform: Platform,
) -> None:
    """IACP B.1.b: a long purge answers the clerk 503 with Retry-After; nothing is stored."""
    read_id = await platform.post_read(datetime.now(UTC), _image(95))
    job: RetentionJob = platform.app.state.retention
    job.config.hold_lock_timeout_s = 0.3
    job.config.hold_retry_after_s = 17
    holds_before = await _hold_count(platform)
    events_before = len(await platform.audit_events("legal_hold.placed"))
    # A purge run's transaction holds the retention lock (as RetentionJob._run takes it).
    async with platform.engine.connect() as purge, purge.begin():
        locked = await purge.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": RETENTION_LOCK_KEY}
        )
        assert locked
        purge_pid = await purge.scalar(text("SELECT pg_backend_pid()"))
        started = asyncio.get_running_loop().time()
        refused = await asyncio.wait_for(
            _hold_reads(
                platform, "PD-2026-000905", [read_id], reason="evidence in a burglary case"
            ),
            10,
        )
        waited = asyncio.get_running_loop().time() - started
    assert refused.status_code == 503, refused.text
    assert refused.headers["Retry-After"] == "17"
    detail = refused.json()["detail"]
    assert f"retention purge run in database process {purge_pid}" in detail
    assert "not placed" in detail
    assert waited < 5
    assert await _hold_count(platform) == holds_before
    assert len(await platform.audit_events("legal_hold.placed")) == events_before

    placed = await _hold_reads(
        platform, "PD-2026-000905", [read_id], reason="evidence in a burglary case"
    )
    assert placed.status_code == 201, placed.text
    assert await _hold_count(platform) == holds_before + 1


async def test_without_the_audit_log_nothing_is_purged(platform: Platform) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    read_id = await platform.post_read(old, _image(8))
    await platform.matched(read_id, hit=False)
    job: RetentionJob = platform.app.state.retention
    async with httpx.AsyncClient(base_url="http://127.0.0.1:9") as unreachable:
        job.audit = unreachable
        result = await job.run(trigger="test")
    assert result.outcome == "skipped"
    assert await platform.stored([read_id]) == {read_id}
    runs = await platform.call(platform.recognition, "GET", "/v1/retention/runs", "auditor")
    assert runs.json()["items"][0]["id"] == str(result.run_id)
    assert runs.json()["items"][0]["outcome"] == "skipped"


def test_lprctl_retention_run_purges_nothing_when_audit_is_down(
    retention_database_url: str,
    service_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DATABASE_URL", retention_database_url)
    monkeypatch.setenv("LPR_AUDIT_URL", "http://127.0.0.1:9")
    assert cmd_run(argparse.Namespace(json=False)) == 1
    assert "skipped" in capsys.readouterr().out


async def test_purged_frames_leave_their_tracks_and_the_day_drops_cleanly(
    platform: Platform,
) -> None:
    await short_periods(platform, "short periods for the fusion retention test")
    midnight = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
    passing = midnight - timedelta(days=6, hours=-12)

    def frame(plate: str, confidence: float, seconds: float) -> dict[str, Any]:
        return metadata(
            captured_at=(passing + timedelta(seconds=seconds)).isoformat(),
            edge_plate={"text": plate, "confidence": confidence},
        )

    path = "/v1/reads/batch"
    response = await platform.recognition.post(
        path,
        json={
            "reads": [
                frame("TRK1234", 0.9, 0),
                frame("TRK1284", 0.5, 0.5),  # the frame a case holds
                frame("TRK1234", 0.8, 1),
                frame("OTH5678", 0.9, 60),  # another vehicle: all its frames expire
                frame("OTH5678", 0.9, 61),
            ]
        },
        headers=platform.camera.headers("POST", path),
    )
    assert response.status_code == 202, response.text
    a1, held, a3, b1, b2 = ids = [r["read_id"] for r in response.json()["reads"]]
    async with platform.engine.begin() as connection:
        # All matched, no hit: nothing waits for the hot list.
        await connection.execute(
            text("DELETE FROM recognition.outbox WHERE read_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": ids},
        )
        await connection.execute(
            text(
                "UPDATE recognition.reads SET status = 'matched' "
                "WHERE id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        )
        members = await connection.execute(
            text(
                "SELECT read_id::text, track_id FROM recognition.track_members "
                "WHERE read_id = ANY(CAST(:ids AS uuid[]))"
            ),
            {"ids": ids},
        )
        tracks = {row[0]: row[1] for row in members}
    assert tracks[a1] == tracks[held] == tracks[a3] != tracks[b1] == tracks[b2]
    hold = await _hold_reads(
        platform, "PD-2026-000777", [held], reason="frame of a vehicle in a robbery"
    )
    assert hold.status_code == 201, hold.text

    run = await platform.call(platform.recognition, "POST", "/v1/retention/runs", "administrator")
    assert run.status_code == 201, run.text
    assert run.json()["outcome"] == "completed", run.json()
    assert await platform.stored(ids) == {held}

    async with platform.engine.connect() as connection:
        left = (
            await connection.execute(
                text(
                    "SELECT t.id, t.fused_text, t.member_count, m.read_id::text AS read_id "
                    "FROM recognition.tracks t JOIN recognition.track_members m "
                    "ON m.track_id = t.id WHERE t.id = ANY(:tracks)"
                ),
                {"tracks": [tracks[a1], tracks[b1]]},
            )
        ).all()
    # The held frame's track lives on with only that frame, voted again over it; the
    # other vehicle's track went with its frames.
    assert [(row.id, row.read_id, row.member_count) for row in left] == [(tracks[a1], held, 1)]
    assert left[0].fused_text == "TRK1284"
    shown = await platform.call(platform.recognition, "GET", f"/v1/reads/{held}", "records")
    assert shown.json()["plates"][0]["track"]["read_ids"] == [held]


async def test_orphan_images_are_deleted_once_their_grace_period_is_over(
    platform: Platform,
) -> None:
    """An image whose read never committed is deleted; images reads use are kept."""
    store = LocalBlobStore(platform.blob_dir)
    grace = platform.app.state.retention.config.orphan_blob_grace_minutes
    long_ago = (datetime.now(UTC) - timedelta(minutes=grace + 10)).timestamp()

    def age(image: bytes) -> None:
        os.utime(_blob(image, platform.blob_dir), (long_ago, long_ago))

    used, orphan, fresh, stored_again = _image(31), _image(32), _image(33), _image(34)
    read_id = await platform.post_read(datetime.now(UTC), used)
    for image in (orphan, fresh, stored_again):
        await store.put(image)
    for image in (used, orphan, stored_again):
        age(image)
    # A camera posts the same bytes again: the kept file counts as written now.
    await store.put(stored_again)

    run = await platform.call(platform.recognition, "POST", "/v1/retention/runs", "administrator")
    assert run.status_code == 201, run.text
    assert run.json()["orphan_blobs_deleted"] == 1
    assert not _blob(orphan, platform.blob_dir).exists()
    for image in (used, fresh, stored_again):
        assert _blob(image, platform.blob_dir).exists()
    assert await platform.stored([read_id]) == {read_id}
    path = f"/v1/reads/{read_id}/image"
    served = await platform.recognition.get(path, headers=platform.camera.headers("GET", path))
    assert served.status_code == 200
    assert served.content == used

    # The next run looks only at files written since the last one's cutoff, and finds an
    # orphan left in between.
    later = _image(35)
    await store.put(later)
    just_aged = (datetime.now(UTC) - timedelta(minutes=grace + 2)).timestamp()
    os.utime(_blob(later, platform.blob_dir), (just_aged, just_aged))
    again = await platform.call(platform.recognition, "POST", "/v1/retention/runs", "administrator")
    assert again.status_code == 201, again.text
    assert again.json()["orphan_blobs_deleted"] == 1
    assert not _blob(later, platform.blob_dir).exists()
    assert _blob(used, platform.blob_dir).exists()


async def test_blob_listing_pages_in_key_order_and_skips_recent_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    images = [_image(seed) for seed in range(40, 52)]
    keys = sorted([(await store.put(image))[1] for image in images])
    recent = keys[3]
    long_ago = (datetime.now(UTC) - timedelta(days=1)).timestamp()
    for key in keys:
        if key != recent:
            os.utime(store.path(key), (long_ago, long_ago))
    (store.path(keys[0]).parent / ".tmp-partial").write_bytes(b"half an image")
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    pages, after = [], None
    while page := await store.written_before(cutoff, after=after, limit=5):
        pages.append(page)
        after = page[-1]
    assert [len(page) for page in pages] == [5, 5, 1]
    assert [key for page in pages for key in page] == [k for k in keys if k != recent]
    newer = datetime.now(UTC) - timedelta(hours=2)
    os.utime(store.path(keys[5]), (newer.timestamp(), newer.timestamp()))
    since = datetime.now(UTC) - timedelta(hours=3)
    assert await store.written_before(cutoff, since=since) == [keys[5]]
    assert not await store.delete(recent, written_before=cutoff)
    assert await store.delete(keys[0], written_before=cutoff)


async def test_a_queued_image_stored_again_during_the_run_is_kept(platform: Platform) -> None:
    """The purge's queued deletions spare a file a camera stored again since the run began."""
    store = LocalBlobStore(platform.blob_dir)
    gone, posted_again = _image(61), _image(62)
    keys = [(await store.put(image))[1] for image in (gone, posted_again)]
    long_ago = (datetime.now(UTC) - timedelta(days=40)).timestamp()
    os.utime(_blob(gone, platform.blob_dir), (long_ago, long_ago))
    # Its time is after the run's start: the camera's read may be about to commit.
    soon = (datetime.now(UTC) + timedelta(minutes=1)).timestamp()
    os.utime(_blob(posted_again, platform.blob_dir), (soon, soon))
    async with platform.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO recognition.retention_blob_deletions (blob_key) "
                "SELECT unnest(CAST(:keys AS text[]))"
            ),
            {"keys": keys},
        )
    job: RetentionJob = platform.app.state.retention
    result = await job.run(trigger="test")
    assert result.blobs_deleted == 1
    assert not _blob(gone, platform.blob_dir).exists()
    assert _blob(posted_again, platform.blob_dir).exists()
    async with platform.engine.connect() as connection:
        queued = await connection.scalar(
            text("SELECT count(*) FROM recognition.retention_blob_deletions")
        )
    assert queued == 0


def _receipts_of(purges: list[dict[str, Any]], run_id: str) -> list[dict[str, Any]]:
    """The ``retention.purge`` events of one run."""
    return [e for e in purges if e["details"].get("extra", {}).get("run_id") == run_id]


async def _queued(platform: Platform, run_id: uuid.UUID) -> bool | None:
    """Whether a run's receipts wait for the audit log (None: no such run)."""
    async with platform.engine.connect() as connection:
        queued: bool | None = await connection.scalar(
            text("SELECT receipts_queued FROM recognition.retention_runs WHERE id = :id"),
            {"id": run_id},
        )
        return queued


async def test_a_purge_whose_commit_fails_leaves_no_receipt_and_keeps_its_reads(
    platform: Platform,
) -> None:
    """IACP B.1.a, E: the access log holds receipts only of deletions that happened."""
    read_id = await platform.post_read(datetime.now(UTC) - timedelta(days=40), _image(71))
    await platform.matched(read_id, hit=False)
    job: RetentionJob = platform.app.state.retention
    # A deferred constraint trigger refuses the completed run at COMMIT: after every
    # statement of the purge has run and the receipts would have been sent.
    async with platform.engine.begin() as connection:
        await connection.execute(
            text(
                "CREATE FUNCTION recognition.test_refuse_purge_commit() RETURNS trigger "
                "LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'commit refused by the test'; "
                "END $$"
            )
        )
        await connection.execute(
            text(
                "CREATE CONSTRAINT TRIGGER test_refuse_purge_commit AFTER INSERT "
                "ON recognition.retention_runs DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "WHEN (NEW.trigger = 'commit-refused' AND NEW.outcome = 'completed') "
                "EXECUTE FUNCTION recognition.test_refuse_purge_commit()"
            )
        )
    try:
        result = await job.run(trigger="commit-refused")
    finally:
        async with platform.engine.begin() as connection:
            await connection.execute(
                text("DROP TRIGGER test_refuse_purge_commit ON recognition.retention_runs")
            )
            await connection.execute(text("DROP FUNCTION recognition.test_refuse_purge_commit()"))
    assert result.outcome == "failed", result
    assert result.receipts == []
    assert await platform.stored([read_id]) == {read_id}
    assert _receipts_of(await platform.audit_events("retention.purge"), str(result.run_id)) == []
    assert await _queued(platform, result.run_id) is False  # recorded failed, nothing to send
    runs = await platform.call(platform.recognition, "GET", "/v1/retention/runs", "auditor")
    assert runs.json()["items"][0]["id"] == str(result.run_id)
    assert runs.json()["items"][0]["outcome"] == "failed"
    assert runs.json()["items"][0]["receipts"] == []

    # The next run purges the read, and its receipts are recorded once it commits.
    again = await job.run(trigger="test")
    assert again.outcome == "completed", again
    assert not again.receipts_queued
    assert await platform.stored([read_id]) == set()
    logged = _receipts_of(await platform.audit_events("retention.purge"), str(again.run_id))
    assert len(logged) == 4
    assert again.first_seq is not None
    assert again.last_seq == again.first_seq + 3


class _ReceiptsRefused(httpx.AsyncBaseTransport):
    """audit-svc in-process, unreachable for receipts while ``down``."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.down = True
        self.posts = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == RECEIPTS_PATH:
            self.posts += 1
            if self.down:
                raise httpx.ConnectError("audit-svc is down", request=request)
        return await self.inner.handle_async_request(request)


async def test_receipts_audit_cannot_take_after_the_commit_are_queued_and_sent_once(
    platform: Platform,
) -> None:
    """A committed purge is reported completed; its receipts reach the log once, later."""
    read_id = await platform.post_read(datetime.now(UTC) - timedelta(days=40), _image(72))
    await platform.matched(read_id, hit=False)
    job: RetentionJob = platform.app.state.retention
    assert job.audit is not None
    transport = _ReceiptsRefused(platform.audit_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://audit", auth=job.audit.auth
    ) as flaky:
        job.audit = flaky
        run = await platform.call(
            platform.recognition, "POST", "/v1/retention/runs", "administrator"
        )
        assert run.status_code == 201, run.text
        body = run.json()
        run_id = body["id"]
        assert body["outcome"] == "completed"
        assert body["receipts_queued"] is True
        assert (body["first_seq"], body["last_seq"]) == (None, None)
        assert "receipts queued" in body["detail"]
        assert len(body["receipts"]) == 4
        assert await platform.stored([read_id]) == set()  # the purge happened
        assert _receipts_of(await platform.audit_events("retention.purge"), run_id) == []
        shown = await platform.call(
            platform.recognition, "GET", f"/v1/retention/runs/{run_id}", "auditor"
        )
        assert shown.json()["receipts_queued"] is True

        # The flusher, while audit-svc is still down: they stay queued.
        flusher = asyncio.create_task(flush_receipts_periodically(job, interval_s=0.05))
        try:
            for _ in range(100):
                if transport.posts >= 2:
                    break
                await asyncio.sleep(0.05)
            assert transport.posts >= 2
            assert await _queued(platform, uuid.UUID(run_id)) is True
            transport.down = False
            for _ in range(200):
                if await _queued(platform, uuid.UUID(run_id)) is False:
                    break
                await asyncio.sleep(0.05)
            posts = transport.posts
            await asyncio.sleep(0.3)  # a few more rounds: nothing is sent again
            assert transport.posts == posts
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
    assert await _queued(platform, uuid.UUID(run_id)) is False
    logged = _receipts_of(await platform.audit_events("retention.purge"), run_id)
    assert sorted(e["details"]["retention_class"] for e in logged) == sorted(
        r["retention_class"] for r in body["receipts"]
    )
    assert {e["details"]["extra"]["receipt_id"] for e in logged} == {
        r["receipt_id"] for r in body["receipts"]
    }
    for event in logged:
        [receipt] = [
            r
            for r in body["receipts"]
            if r["receipt_id"] == event["details"]["extra"]["receipt_id"]
        ]
        for name in ("deleted_count", "preserved_count", "deleted_ids_sha256"):
            assert event["details"][name] == receipt[name]
    shown = await platform.call(
        platform.recognition, "GET", f"/v1/retention/runs/{run_id}", "auditor"
    )
    assert shown.json()["receipts_queued"] is False
    assert shown.json()["first_seq"] is not None
    assert shown.json()["last_seq"] == shown.json()["first_seq"] + 3


class _RunRefused(httpx.AsyncBaseTransport):
    """audit-svc in-process, refusing for good (422) the receipts of the runs in ``refused``."""

    def __init__(self, app: FastAPI) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.refused: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == RECEIPTS_PATH:
            receipts = json.loads(request.content)["receipts"]
            if any(r["details"].get("run_id") in self.refused for r in receipts):
                return httpx.Response(422, json={"detail": "refused by the test"})
        return await self.inner.handle_async_request(request)


async def test_receipts_audit_refuses_for_good_do_not_hold_back_later_runs(
    platform: Platform,
) -> None:
    """A run whose receipts audit-svc refuses (4xx) stays queued; later runs still reach it."""
    job: RetentionJob = platform.app.state.retention
    assert job.audit is not None
    transport = _RunRefused(platform.audit_app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://audit", auth=job.audit.auth
    ) as refusing:
        job.audit = refusing
        first_read = await platform.post_read(datetime.now(UTC) - timedelta(days=40), _image(73))
        await platform.matched(first_read, hit=False)
        real_stage = job._stage

        async def stage_refused(connection: Any, result: Any, **kwargs: Any) -> None:
            transport.refused.add(str(result.run_id))
            await real_stage(connection, result, **kwargs)

        job._stage = stage_refused  # type: ignore[method-assign]
        first = await platform.call(
            platform.recognition, "POST", "/v1/retention/runs", "administrator"
        )
        job._stage = real_stage  # type: ignore[method-assign]
        assert first.status_code == 201, first.text
        assert first.json()["receipts_queued"] is True

        second_read = await platform.post_read(datetime.now(UTC) - timedelta(days=40), _image(74))
        await platform.matched(second_read, hit=False)
        second = await platform.call(
            platform.recognition, "POST", "/v1/retention/runs", "administrator"
        )
        assert second.status_code == 201, second.text
        assert second.json()["outcome"] == "completed"
        assert second.json()["receipts_queued"] is False, second.json()["detail"]
        await job.deliver_receipts()
    assert await _queued(platform, uuid.UUID(second.json()["id"])) is False
    assert (
        len(_receipts_of(await platform.audit_events("retention.purge"), second.json()["id"])) == 4
    )
    # The refused run is not lost: its receipts stay queued for the operators.
    assert await _queued(platform, uuid.UUID(first.json()["id"])) is True
