"""Camera read ingestion: keys, signatures, replays, service state, deployments (B.1.e, B.2, C.7)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from gateway.tests.conftest import Gateway, problem, refused_fields
from lpr_gateway.cameras.models import Camera, Deployment, EquipmentCheck
from lpr_gateway.security import body_signature

KEY = "lprcam_test-key-0000000000000000000000000000000000"
READ = b'{"captured_at": "2026-11-29T10:00:00Z", "plate": "ABC123"}'
JSON = {"Content-Type": "application/json"}


def signed(key: str, body: bytes, at: int | None = None) -> dict[str, str]:
    timestamp = str(at if at is not None else int(time.time()))
    return {
        "X-Camera-Key": key,
        "X-LPR-Timestamp": timestamp,
        "X-LPR-Signature": body_signature(key, timestamp, body),
        **JSON,
    }


async def test_b1e_camera_with_approved_deployment_posts_reads(gateway: Gateway) -> None:
    deployment = await gateway.deployment()
    camera = await gateway.camera(deployment, key=KEY)
    response = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": KEY, **JSON}
    )
    assert response.status_code == 201, response.text
    forwarded = response.json()
    assert forwarded["context"]["subject_kind"] == "camera"
    assert forwarded["context"]["camera_id"] == str(camera.id)
    assert forwarded["context"]["deployment_id"] == str(deployment.id)
    assert forwarded["body"] == READ.decode()
    # The camera's credential never reaches the service.
    assert "x-camera-key" not in forwarded["received_headers"]
    event = gateway.audit.last()
    assert (event["outcome"], event["rule"]) == ("allowed", "B.1.e:camera-posts-reads")
    assert response.headers["X-LPR-Audit-Event"] == event["event_id"]


async def test_apikey_authorization_scheme_is_accepted(gateway: Gateway) -> None:
    await gateway.camera(await gateway.deployment(), key=KEY)
    response = await gateway.client.post(
        "/v1/reads/batch", content=b"[]", headers={"Authorization": f"ApiKey {KEY}", **JSON}
    )
    assert response.status_code == 201, response.text


async def test_unknown_camera_key_is_refused(gateway: Gateway) -> None:
    response = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": "lprcam_nobody", **JSON}
    )
    assert response.status_code == 401
    assert problem(response)["detail"] == "unknown camera key"
    assert gateway.audit.last()["outcome"] == "denied"


async def test_b2_failed_equipment_check_takes_camera_out_until_a_repairer_passes_it(
    gateway: Gateway,
) -> None:
    officer = await gateway.user("ofc.checks", ["officer"])
    repairer = await gateway.user("tech.repair", ["officer"], repairer=True)
    camera = await gateway.camera(await gateway.deployment(), key=KEY)
    failed = await gateway.client.post(
        "/v1/equipment-checks",
        headers=gateway.token(officer),
        json={
            "camera_id": str(camera.id),
            "functional": True,
            "alignment_ok": False,
            "notes": "lens knocked off axis",
        },
    )
    assert failed.status_code == 201, failed.text
    assert failed.json()["camera_in_service"] is False
    check_id = failed.json()["id"]

    refused = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": KEY, **JSON}
    )
    assert refused.status_code == 403
    body = problem(refused)
    assert body["rule"] == "camera-out-of-service"
    assert body["clause"] == "B.2"
    assert "camera out of service" in body["detail"]
    assert check_id in body["detail"]

    # A passing check by someone who is not an authorised repairer is kept on record
    # but does not put the camera back in service (B.3).
    passing = {"camera_id": str(camera.id), "functional": True, "alignment_ok": True}
    by_officer = await gateway.client.post(
        "/v1/equipment-checks", headers=gateway.token(officer), json=passing
    )
    assert by_officer.json()["camera_in_service"] is False
    by_repairer = await gateway.client.post(
        "/v1/equipment-checks", headers=gateway.token(repairer), json=passing
    )
    assert by_repairer.json()["camera_in_service"] is True
    accepted = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": KEY, **JSON}
    )
    assert accepted.status_code == 201, accepted.text


async def test_c7_special_detail_reads_refused_until_an_administrator_approves(
    gateway: Gateway,
) -> None:
    admin = await gateway.user("adm.special", ["administrator"])
    created = await gateway.client.post(
        "/v1/deployments",
        headers=gateway.token(admin),
        json={
            "name": "Festival special detail",
            "kind": "vehicle",
            "vehicle": "Unit 12",
            "purpose": "AMBER alert response at the festival",
            "starts_at": "2026-01-01T00:00:00Z",
            "special_detail": True,
        },
    )
    assert created.status_code == 201, created.text
    deployment = created.json()
    assert deployment["status"] == "pending"
    registered = await gateway.client.post(
        "/v1/cameras",
        headers=gateway.token(admin),
        json={"name": "Unit 12 ALPR", "kind": "mobile", "deployment_id": deployment["id"]},
    )
    assert registered.status_code == 201, registered.text
    key = registered.json()["api_key"]
    refused = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": key, **JSON}
    )
    assert refused.status_code == 403
    assert problem(refused)["rule"] == "special-detail-not-approved"
    assert problem(refused)["clause"] == "C.7"

    approved = await gateway.client.post(
        f"/v1/deployments/{deployment['id']}/decision",
        headers=gateway.token(admin),
        json={"approve": True},
    )
    assert approved.json()["status"] == "approved"
    accepted = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": key, **JSON}
    )
    assert accepted.status_code == 201, accepted.text


async def test_b1e_deployment_outside_its_period_refuses_reads(gateway: Gateway) -> None:
    ended = await gateway.deployment(days=(-30, -1))
    await gateway.camera(ended, key=KEY)
    refused = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": KEY, **JSON}
    )
    assert refused.status_code == 403
    assert problem(refused)["rule"] == "deployment-not-approved"


async def test_signed_body_accepted_once_replay_and_tampering_refused(gateway: Gateway) -> None:
    await gateway.camera(await gateway.deployment(), key=KEY, require_signature=True)
    headers = signed(KEY, READ)
    first = await gateway.client.post("/v1/reads", content=READ, headers=headers)
    assert first.status_code == 201, first.text
    replay = await gateway.client.post("/v1/reads", content=READ, headers=headers)
    assert replay.status_code == 401
    assert problem(replay)["detail"] == "replayed signature"
    tampered = await gateway.client.post(
        "/v1/reads", content=READ.replace(b"ABC123", b"XYZ999"), headers=signed(KEY, READ)
    )
    assert tampered.status_code == 401
    assert problem(tampered)["detail"] == "wrong signature"
    stale = await gateway.client.post(
        "/v1/reads", content=READ, headers=signed(KEY, READ, at=int(time.time()) - 301)
    )
    assert stale.status_code == 401
    assert "old" in problem(stale)["detail"]
    unsigned = await gateway.client.post(
        "/v1/reads", content=READ, headers={"X-Camera-Key": KEY, **JSON}
    )
    assert unsigned.status_code == 401
    assert "requires a signed body" in problem(unsigned)["detail"]


async def test_oversized_body_is_refused_with_413(gateway: Gateway) -> None:
    await gateway.camera(await gateway.deployment(), key=KEY)
    limit = gateway.settings.gateway_max_body_bytes
    response = await gateway.client.post(
        "/v1/reads",
        content=b"x" * (limit + 1),
        headers={"X-Camera-Key": KEY, "Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 413
    assert str(limit) in problem(response)["detail"]
    assert gateway.audit.last()["outcome"] == "denied"


async def test_camera_key_grants_nothing_but_posting_reads(gateway: Gateway) -> None:
    await gateway.camera(await gateway.deployment(), key=KEY)
    response = await gateway.client.get("/v1/cameras", headers={"X-Camera-Key": KEY})
    assert response.status_code == 403
    assert problem(response)["rule"] == "deny-by-default"


CAMERA_WRITES: dict[str, dict[str, Any]] = {
    "PATCH /v1/cameras/{camera}": {},
    "POST /v1/deployments": {
        "name": "Refused detail",
        "kind": "location",
        "location": "Main St & 1st",
        "purpose": "stolen vehicles on the corridor",
        "starts_at": "2026-01-01T00:00:00Z",
    },
    "POST /v1/equipment-checks": {"functional": False, "alignment_ok": True},
}


@pytest.mark.parametrize(
    ("route", "change", "field"),
    [
        ("PATCH /v1/cameras/{camera}", {"name": None}, "name"),
        ("PATCH /v1/cameras/{camera}", {"name": "N" * 201}, "name"),
        ("PATCH /v1/cameras/{camera}", {"require_signature": None}, "require_signature"),
        ("POST /v1/deployments", {"starts_at": "0001-01-01T00:00:00+14:00"}, "starts_at"),
        ("POST /v1/deployments", {"ends_at": "9999-12-31T23:59:59-14:00"}, "ends_at"),
        ("POST /v1/equipment-checks", {"notes": "lens\x00"}, "notes"),
        ("POST /v1/equipment-checks", {"checked_at": "0001-01-01T00:00:00+14:00"}, "checked_at"),
    ],
    ids=[
        "null-camera-name",
        "camera-name-over-the-create-limit",
        "null-signature-requirement",
        "deployment-before-year-1-in-utc",
        "deployment-past-year-9999-in-utc",
        "nul-in-check-notes",
        "check-before-year-1-in-utc",
    ],
)
async def test_camera_write_with_a_bad_field_is_refused_naming_it_and_nothing_changes(
    gateway: Gateway, route: str, change: dict[str, Any], field: str
) -> None:
    admin = await gateway.user("adm.camera.fields", ["administrator"])
    camera = await gateway.camera(None, key=KEY)
    method, path = route.split(" ")
    body = {**CAMERA_WRITES[route], **change}
    if path == "/v1/equipment-checks":
        body["camera_id"] = str(camera.id)
    response = await gateway.client.request(
        method, path.format(camera=camera.id), headers=gateway.token(admin), json=body
    )
    assert field in refused_fields(response)
    stored = await gateway.session.execute(
        select(col(Camera.name), col(Camera.require_signature), col(Camera.in_service)).where(
            col(Camera.id) == camera.id
        )
    )
    assert tuple(stored.one()) == (camera.name, False, True)
    created = [
        select(func.count()).where(col(Deployment.name) == "Refused detail"),
        select(func.count()).where(col(EquipmentCheck.camera_id) == camera.id),
    ]
    assert [await gateway.session.scalar(query) for query in created] == [0, 0]
