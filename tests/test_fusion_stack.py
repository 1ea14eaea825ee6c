"""Multi-frame fusion through the whole stack: one passing vehicle, three frames, one alert.

A camera registered through the gateway posts three frames of a hot-listed vehicle as it
passes (edge OCR, one frame misread, each frame its own request as cameras send them).
The frames are fused into one track, hot-list matching raises exactly one alert for the
pass, every frame stays stored on its own and is preserved (IACP B.1.b).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lpr_common.context import service_context_auth
from lpr_common.service import service_signer
from lprctl.demo_steps import recognition as recognition_steps
from lprctl.pytest_plugin import RunningStack
from lprctl.stack_client import StackClient, random_plate, unique, wait_for

pytestmark = pytest.mark.slow


def test_three_frames_of_a_hot_listed_vehicle_raise_exactly_one_alert(
    stack_client: StackClient,
) -> None:
    officer = stack_client.user("officer")
    camera = stack_client.camera()
    plate = random_plate()
    misread = plate[:-1] + ("7" if plate[-1] != "7" else "4")  # one character wrong
    list_id = stack_client.hotlist()
    stack_client.import_list(list_id, ["plate,state", f"{plate},CA"], format="csv")

    passing = datetime.now(UTC) - timedelta(seconds=2)
    read_ids = []
    for offset, (text, confidence) in enumerate([(plate, 0.9), (misread, 0.4), (plate, 0.85)]):
        frame = {
            "camera_read_id": unique("frame"),
            "captured_at": (passing + timedelta(seconds=0.6 * offset)).isoformat(),
            "latitude": recognition_steps.LATITUDE,
            "longitude": recognition_steps.LONGITUDE,
            "edge_plate": {"text": text, "confidence": confidence, "state": "CA"},
        }
        response = stack_client.http.post(
            "/v1/reads/batch", json={"reads": [frame]}, headers=camera.headers
        )
        assert response.status_code == 202, response.text
        read_ids.append(response.json()["reads"][0]["read_id"])

    reads = stack_client.wait_reads(
        officer, read_ids, done=lambda r: r["status"] == "matched" and r["preserved"]
    )
    # Each frame is stored as read, and shows the pass it belongs to.
    assert [reads[i]["plates"][0]["text"] for i in read_ids] == [plate, misread, plate]
    tracks = [reads[i]["plates"][0]["track"] for i in read_ids]
    assert len({t["id"] for t in tracks}) == 1
    assert tracks[-1]["fused_text"] == plate
    assert tracks[-1]["read_ids"] == read_ids

    def camera_alerts() -> list[dict[str, Any]]:
        response = stack_client.http.get(
            "/v1/alerts", params={"limit": 1000}, headers=officer.headers()
        )
        response.raise_for_status()
        return [a for a in response.json() if a["camera_id"] == camera.id]

    def all_frames_on_the_alert() -> list[dict[str, Any]] | None:
        alerts = camera_alerts()
        members = {m for a in alerts for m in a["member_read_ids"]}
        return alerts if members == set(read_ids) else None

    [alert] = wait_for("the alert to list every frame", all_frames_on_the_alert, timeout_s=20)
    assert alert["track_id"] == tracks[0]["id"]
    assert alert["fused_plate"] == plate
    assert alert["entry"]["plate"] == plate
    assert len(stack_client.hits(officer, plate)) == 1


def test_frames_of_one_pass_matched_concurrently_raise_one_alert(
    running_stack: RunningStack, stack_client: StackClient
) -> None:
    """Replicas of recognition hand off frames of one pass at once: hotlist-svc takes turns."""
    plate = random_plate()
    list_id = stack_client.hotlist()
    stack_client.import_list(list_id, ["plate,state", f"{plate},CA"], format="csv")
    signer = service_signer(running_stack.settings.keys_dir, "recognition")
    camera = str(uuid.uuid4())

    def frame(track_id: str, read_ids: list[str]) -> dict[str, Any]:
        read_id = str(uuid.uuid4())
        read_ids.append(read_id)
        return {
            "read_id": read_id,
            "agency": running_stack.settings.agency,
            "camera_id": camera,
            "captured_at": datetime.now(UTC).isoformat(),
            "plates": [
                {
                    "index": 0,
                    "text": plate,
                    "confidence": 0.9,
                    "track_id": track_id,
                    "track_read_ids": list(read_ids),
                }
            ],
        }

    async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> list[str]:
        response = await client.post(
            "/internal/v1/matches", json=body, headers={"Idempotency-Key": body["read_id"]}
        )
        assert response.status_code == 200, response.text
        return [a["alert_id"] for a in response.json()["alerts"]]

    async def scenario() -> tuple[list[list[str]], list[str]]:
        async with httpx.AsyncClient(
            base_url=running_stack.url("hotlist"),
            auth=service_context_auth(signer, "recognition"),
            timeout=30,
        ) as client:
            # Wait until the index knows the entry (a pass of its own raises that alert).
            deadline = asyncio.get_running_loop().time() + 20
            while not await post(client, frame(str(uuid.uuid4()), [])):
                assert asyncio.get_running_loop().time() < deadline, "entry never indexed"
                await asyncio.sleep(0.2)
            track_id, read_ids = str(uuid.uuid4()), list[str]()
            bodies = [frame(track_id, read_ids) for _ in range(6)]
            return list(await asyncio.gather(*(post(client, b) for b in bodies))), read_ids

    answers, read_ids = asyncio.run(scenario())
    assert all(len(answer) == 1 for answer in answers)
    assert len({answer[0] for answer in answers}) == 1
    officer = stack_client.user("officer")
    alert = stack_client.alert(officer, answers[0][0])
    assert set(alert["member_read_ids"]) == set(read_ids)
