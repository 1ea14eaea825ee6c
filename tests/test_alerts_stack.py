"""Hot lists, matching, alerts and the officer's workflow, through the gateway (IACP C.3-C.6).

Administrators import lists, a camera registered through the gateway posts reads it read
on board (the batch endpoint: no Triton needed), officers receive the alerts on the SSE
stream and work them. Deployment results (B.1.e) accrue on the camera's deployment.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lpr_gateway.bootstrap import bootstrap_user
from lprctl.demo_steps.hotlist import ncic_line
from lprctl.stack_client import Camera, StackClient, User, random_plate, unique, wait_for

pytestmark = pytest.mark.slow

PARTNER_AGENCY = "NV0030000"
STEADY_DIGITS = "3479"  # digits with no OCR look-alike letter


@pytest.fixture(scope="module")
def officer(stack_client: StackClient) -> User:
    return stack_client.user("officer")


@pytest.fixture(scope="module")
def camera(stack_client: StackClient) -> Camera:
    return stack_client.camera()


def _plates(alerts: list[dict[str, Any]]) -> set[str]:
    return {a["read_plate"] for a in alerts}


def _entries(stack_client: StackClient, path: str) -> dict[str, Any]:
    response = stack_client.http.get(path, headers=stack_client.admin.headers(None))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- hot lists ---------------------------------------------------------------------------


def test_an_ncic_import_is_replaced_atomically_by_a_csv_and_the_old_version_stays_queryable(
    stack_client: StackClient, officer: User, camera: Camera
) -> None:
    dropped, kept, added = (random_plate() for _ in range(3))
    list_id = stack_client.hotlist(source="NCIC")
    first = stack_client.import_list(
        list_id,
        [ncic_line("V", dropped, "CA"), ncic_line("V", kept, "CA"), "garbage line"],
        format="ncic",
        file_name="ncic.txt",
    )
    assert (first["version"], first["entry_count"], first["added"]) == (1, 2, 2)
    assert first["rejected"] == 1
    assert first["rejections"][0]["line"] == 3
    second = stack_client.import_list(
        list_id,
        ["plate,state,reason,case_number", f"{kept},CA,stolen,C-1", f"{added},NV,stolen,C-2"],
        format="csv",
        file_name="update.csv",
    )
    assert (second["version"], second["added"], second["removed"]) == (2, 1, 1)

    current = _entries(stack_client, f"/v1/hotlists/{list_id}/entries")
    assert current["version"] == 2
    assert {e["plate"] for e in current["entries"]} == {kept, added}
    previous = _entries(stack_client, f"/v1/hotlists/{list_id}/versions/1/entries")
    assert {e["plate"] for e in previous["entries"]} == {dropped, kept}
    versions = stack_client.http.get(
        f"/v1/hotlists/{list_id}/versions", headers=stack_client.admin.headers(None)
    ).json()
    assert [(v["number"], v["format"]) for v in versions][-2:] in (
        [(1, "ncic"), (2, "csv")],
        [(2, "csv"), (1, "ncic")],
    )

    # Matching follows the new version only.
    read_ids = stack_client.post_plates(camera, [(dropped, "CA"), (kept, "CA"), (added, "NV")])
    stack_client.wait_reads(officer, read_ids, done=lambda r: r["status"] == "matched")
    assert len(stack_client.wait_hits(officer, kept)) == 1
    assert len(stack_client.wait_hits(officer, added)) == 1
    assert stack_client.hits(officer, dropped) == []


def test_a_malformed_import_changes_nothing(stack_client: StackClient) -> None:
    plate = random_plate()
    list_id = stack_client.hotlist()
    stack_client.import_list(list_id, ["plate,state", f"{plate},CA"], format="csv")
    response = stack_client.http.post(
        f"/v1/hotlists/{list_id}/imports",
        files={"file": ("bad.csv", b"colour,make\nred,FORD\n", "text/csv")},
        data={"format": "csv"},
        headers=stack_client.admin.headers(None),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"]
    current = _entries(stack_client, f"/v1/hotlists/{list_id}/entries")
    assert (current["version"], [e["plate"] for e in current["entries"]]) == (1, [plate])


# --- matching and the stream --------------------------------------------------------------


def test_a_fuzzy_match_explains_itself_in_the_alert(
    stack_client: StackClient, officer: User
) -> None:
    camera = stack_client.camera()
    entry = random_plate(digits=STEADY_DIGITS)[:4] + "2" + random_plate(digits=STEADY_DIGITS)[4:6]
    read = entry.replace("2", "Z")
    list_id = stack_client.hotlist(source="NCIC")
    stack_client.import_list(list_id, [ncic_line("V", entry, "CA")], format="ncic")
    stack_client.post_plates(camera, [(read, "CA")])
    events = stack_client.stream(officer, 1, last_event_id="0", camera_id=camera.id)
    assert len(events) == 1
    alert = events[0]["data"]["alert"]
    assert alert["rule"] == "ocr_equivalent"
    assert alert["explanation"] == f"read {read} matched {entry} (Z≈2)"
    assert alert["entry"]["plate"] == entry
    # Exact matches outrank it, and the officer sees the same words on the alert itself.
    assert stack_client.alert(officer, alert["id"])["explanation"] == alert["explanation"]


def test_the_stream_resumes_after_last_event_id_with_exactly_the_missed_alerts(
    stack_client: StackClient, officer: User
) -> None:
    camera = stack_client.camera()
    plates = [random_plate() for _ in range(3)]
    list_id = stack_client.hotlist()
    stack_client.import_list(list_id, ["plate,state"] + [f"{p},CA" for p in plates], format="csv")
    stack_client.post_plates(camera, [(plates[0], "CA")])
    first = stack_client.stream(officer, 1, last_event_id="0", camera_id=camera.id)
    assert [e["data"]["alert"]["read_plate"] for e in first] == plates[:1]

    # Disconnected: two more alerts are raised meanwhile.
    stack_client.post_plates(camera, [(plates[1], "CA"), (plates[2], "CA")])
    for plate in plates[1:]:
        stack_client.wait_hits(officer, plate)

    resumed = stack_client.stream(
        officer, 3, last_event_id=str(first[0]["id"]), camera_id=camera.id, timeout_s=3
    )
    assert sorted(e["data"]["alert"]["read_plate"] for e in resumed) == sorted(plates[1:])
    assert all(int(e["id"]) > int(first[0]["id"]) for e in resumed)
    # Nothing after the last one: resuming from it yields no event.
    assert (
        stack_client.stream(
            officer, 1, last_event_id=str(resumed[-1]["id"]), camera_id=camera.id, timeout_s=2
        )
        == []
    )


# --- the officer's workflow ---------------------------------------------------------------

ACK: tuple[str, dict[str, Any] | None] = ("acknowledge", {"note": "on screen"})
VERIFY = ("verify", {"characters_match": True, "state_matches": True})
STATUS = ("status-check", {"source": "dispatch", "result": "confirmed"})
MISREAD = ("misread", {"note": "image shows another plate"})
DISPOSE = ("disposition", {"code": "stop_made", "note": "driver identified"})


@dataclass(frozen=True)
class Rule:
    """One workflow rule: the steps before, the step tried, and the answer expected."""

    clause: str
    before: tuple[tuple[str, dict[str, Any] | None], ...]
    step: tuple[str, dict[str, Any] | None]
    status: int
    field: str | None = None
    by_other_agency: bool = False


WORKFLOW = {
    "C.4-acknowledge-a-new-alert": Rule("C.4", (), ACK, 200),
    "C.4-acknowledged-only-once": Rule("C.4", (ACK,), ACK, 409),
    "C.4.a-verify-after-acknowledging": Rule("C.4.a", (), VERIFY, 409),
    "C.4.a-verify-needs-matching-characters": Rule(
        "C.4.a",
        (ACK,),
        ("verify", {"characters_match": False, "state_matches": True}),
        422,
        field="characters_match",
    ),
    "C.4.a-misread-only-when-verifying": Rule("C.4.a", (ACK, VERIFY), MISREAD, 409),
    "C.4.b-status-check-after-verifying": Rule("C.4.b", (ACK,), STATUS, 409),
    "C.5-disposition-after-the-status-check": Rule("C.5", (ACK, VERIFY), DISPOSE, 409),
    "C.5-disposition-from-the-administered-list": Rule(
        "C.5", (ACK, VERIFY, STATUS), ("disposition", {"code": "made_up"}), 422, field="code"
    ),
    "C.5-disposition-recorded": Rule("C.5", (ACK, VERIFY, STATUS), DISPOSE, 200),
    "C.5-disposition-after-a-misread": Rule(
        "C.5", (ACK, MISREAD), ("disposition", {"code": "misread"}), 200
    ),
    "C.5-disposition-only-once": Rule("C.5", (ACK, VERIFY, STATUS, DISPOSE), DISPOSE, 409),
    "C.5-not-on-another-agencys-alert": Rule(
        "C.5", (ACK, VERIFY, STATUS), DISPOSE, 403, by_other_agency=True
    ),
}


@pytest.fixture(scope="module")
def fresh_alerts(stack_client: StackClient, officer: User, camera: Camera) -> Iterator[str]:
    """One new alert per workflow rule, raised by real reads through the whole stack."""
    plates = [random_plate() for _ in WORKFLOW]
    list_id = stack_client.hotlist(category="wanted person")
    stack_client.import_list(list_id, ["plate,state"] + [f"{p},CA" for p in plates], format="csv")
    stack_client.post_plates(camera, [(plate, "CA") for plate in plates])
    return iter([stack_client.wait_hits(officer, plate)[0]["id"] for plate in plates])


@pytest.fixture(scope="module")
def other_agency_officer(stack_client: StackClient) -> User:
    username, password = unique("officer-nv"), secrets.token_urlsafe(16)
    user_id = bootstrap_user(
        stack_client.database_url,
        username=username,
        password=password,
        roles=["officer"],
        agency=PARTNER_AGENCY,
        training_expires_at=datetime.now(UTC) + timedelta(days=30),
    )
    token = stack_client.http.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    ).json()["access_token"]
    return User(str(user_id), username, password, token)


@pytest.mark.parametrize("rule", WORKFLOW.values(), ids=WORKFLOW.keys())
def test_workflow_rule(
    rule: Rule,
    stack_client: StackClient,
    officer: User,
    other_agency_officer: User,
    fresh_alerts: Iterator[str],
) -> None:
    alert_id = next(fresh_alerts)
    for action, body in rule.before:
        response = stack_client.step(officer, alert_id, action, body)
        assert response.status_code == 200, response.text
    before = stack_client.alert(officer, alert_id)
    actor = other_agency_officer if rule.by_other_agency else officer
    action, body = rule.step
    response = stack_client.step(actor, alert_id, action, body)
    assert response.status_code == rule.status, response.text
    after = stack_client.alert(officer, alert_id)
    if rule.status >= 400:
        problem = response.json()
        if rule.field:
            assert rule.field in {e["field"] for e in problem["errors"]}
        if rule.status == 409:
            assert str(problem.get("rule", "")).startswith(rule.clause)
        # Nothing stored changes on a refused step.
        assert after["status"] == before["status"]
        assert len(after["history"]) == len(before["history"])
    else:
        assert after["status"] == response.json()["status"]
        assert len(after["history"]) == len(before["history"]) + 1
        assert after["history"][-1]["subject_id"] == officer.id


# --- deployment results (IACP B.1.e) -----------------------------------------------------


def test_reads_hits_and_dispositions_accrue_on_the_deployment(
    stack_client: StackClient, officer: User
) -> None:
    camera = stack_client.camera()
    hot, other = random_plate(), random_plate()
    list_id = stack_client.hotlist()
    stack_client.import_list(list_id, ["plate,state", f"{hot},CA"], format="csv")
    assert (
        stack_client.deployment(camera.deployment_id)["reads_count"],
        stack_client.deployment(camera.deployment_id)["hits_count"],
    ) == (0, 0)
    stack_client.post_plates(camera, [(hot, "CA"), (other, "CA"), (other, "CA")])
    alert_id = stack_client.wait_hits(officer, hot)[0]["id"]
    for action, body in (ACK, VERIFY, STATUS, DISPOSE):
        assert stack_client.step(officer, alert_id, action, body).status_code == 200

    def counted() -> tuple[int, int, int] | None:
        record = stack_client.deployment(camera.deployment_id)
        counts = (record["reads_count"], record["hits_count"], record["dispositions_count"])
        return counts if counts == (3, 1, 1) else None

    assert wait_for("deployment results", counted, timeout_s=20) == (3, 1, 1)
