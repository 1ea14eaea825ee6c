"""Matching reads to alerts, and the officer's workflow (IACP C.4, C.5), over the API."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from lpr_common.audit_client import AuditClient, AuditEvent
from lpr_hotlist import audit_outbox
from lpr_hotlist.audit_outbox import AuditOutbox
from lpr_hotlist.testing import AGENCY, Api, AuditLog, ncic_line


async def hot_list_with(
    api: Api,
    app: FastAPI,
    session: AsyncSession,
    lines: list[str],
    *,
    name: str = "NCIC",
    **fields: Any,
) -> str:
    """A list holding the given NCIC lines, and an index that knows it."""
    created = await api.admin(
        "POST",
        "/v1/hotlists",
        json={"name": name, "source": "NCIC", "category": "stolen vehicle", **fields},
    )
    list_id: str = created.json()["id"]
    response = await api.admin(
        "POST",
        f"/v1/hotlists/{list_id}/imports",
        files={"file": ("ncic.txt", "\n".join(lines).encode(), "text/plain")},
        data={"format": "ncic"},
    )
    assert response.status_code == 201, response.text
    # The request's writes are not committed in these tests, so no NOTIFY: rebuild by hand
    # through the test's transaction.
    await app.state.live_index.rebuild(session)
    return list_id


def read(plate: str, *, candidates: tuple[str, ...] = (), **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "read_id": str(uuid4()),
        "agency": AGENCY,
        "camera_id": "cam-" + uuid4().hex[:8],
        "unit_id": "unit-7",
        "captured_at": datetime.now(UTC).isoformat(),
        "latitude": 38.5,
        "longitude": -121.4,
        "image_available": True,
        "plates": [
            {
                "index": 0,
                "text": plate,
                "confidence": 0.9,
                "state": "CA",
                "box": [1, 2, 3, 4],
                "candidates": [{"text": c, "confidence": 0.3} for c in candidates],
            }
        ],
    }
    body.update(fields)
    return body


async def post_read(api: Api, body: dict[str, Any]) -> Any:
    return await api.call(
        "POST",
        "/internal/v1/matches",
        service=True,
        json=body,
        headers={"Idempotency-Key": body["read_id"]},
    )


async def test_ocr_equivalent_read_raises_an_explained_alert(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "ABC123")])
    response = await post_read(api, read("ABC1Z3"))
    assert response.status_code == 200, response.text
    [alert] = response.json()["alerts"]
    assert alert["rule"] == "ocr_equivalent"
    assert alert["explanation"] == "read ABC1Z3 matched ABC123 (Z≈2)"
    assert alert["list_category"] == "stolen vehicle"
    [event] = audit_log.of_type("alert.created")
    assert event["details"]["rule"] == "ocr_equivalent"
    assert event["details"]["list_category"] == "stolen vehicle"
    assert event["details"]["alert_id"] == alert["alert_id"]

    shown = (await api.call("GET", f"/v1/alerts/{alert['alert_id']}")).json()
    assert shown["status"] == "new"
    assert shown["entry"]["reason"] == "stolen vehicle"
    assert shown["entry"]["vehicle_make"] == "HOND"
    assert shown["image_url"].endswith("/image")
    assert [h["event_type"] for h in shown["history"]] == ["alert.created"]


async def test_matches_are_ranked_and_alternative_readings_rank_lower(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    await hot_list_with(
        api,
        app,
        session,
        [ncic_line("V", "XYZ789"), ncic_line("W", "XY2789"), ncic_line("F", "QQQ111")],
    )
    response = await post_read(api, read("XYZ789", candidates=("QQQ111", "XYZ789")))
    alerts = response.json()["alerts"]
    assert [(a["rank"], a["rule"]) for a in alerts] == [
        (1, "exact"),
        (2, "ocr_equivalent"),
        (3, "exact"),
    ]
    assert "alternative reading" in alerts[2]["explanation"]


async def test_one_edit_only_on_lists_that_allow_it(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "KLM4567")], allow_one_edit=True)
    [alert] = (await post_read(api, read("KLM457"))).json()["alerts"]
    assert alert["rule"] == "one_edit"
    assert alert["explanation"] == "read KLM457 matched KLM4567 (6 missing at position 6)"


async def test_same_read_id_returns_the_same_alerts(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "ABC123")])
    body = read("ABC123")
    first = (await post_read(api, body)).json()
    second = (await post_read(api, body)).json()
    assert first == second
    assert len(first["alerts"]) == 1
    assert len(audit_log.of_type("alert.created")) == 1
    listed = (await api.call("GET", "/v1/alerts")).json()
    assert [a["id"] for a in listed if a["read_id"] == body["read_id"]] == [
        first["alerts"][0]["alert_id"]
    ]


async def test_reads_of_other_agencies_do_not_hit_our_lists(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "ABC123")])
    response = await post_read(api, read("ABC123", agency="NV0020000"))
    assert response.json()["alerts"] == []


async def test_bad_plate_text_is_refused(api: Api) -> None:
    response = await post_read(api, read("AB#123"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "plates[0].text"
    assert (await api.call("GET", "/v1/alerts")).json() == []


async def test_an_invalid_read_state_is_ignored_not_allowed_to_cost_the_hit(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "ABC123")])
    body = read("ABC123")
    body["plates"][0]["state"] = "XX"
    answer = (await post_read(api, body)).json()
    assert [a["rule"] for a in answer["alerts"]] == ["exact"]
    assert answer["ignored"][0]["field"] == "plates[0].state"
    assert "'XX'" in answer["ignored"][0]["reason"]


@pytest.mark.parametrize(
    ("fields", "plate", "field"),
    [
        ({"captured_at": "2026-11-29T10:00:00"}, {}, "captured_at"),
        ({"captured_at": "0001-01-01T00:00:00+14:00"}, {}, "captured_at"),
        ({"unit_id": "u" * 65}, {}, "unit_id"),
        ({"unit_id": "u\x00"}, {}, "unit_id"),
        ({"agency": "A" * 17}, {}, "agency"),
        ({}, {"index": 2**40}, "plates.0.index"),
        ({}, {"box": [float("nan"), 2, 3, 4]}, "plates.0.box.0"),
    ],
    ids=[
        "naive-capture-time",
        "capture-year-0",
        "unit-over-64",
        "nul-unit",
        "agency-over-16",
        "plate-index-over-int",
        "box-nan",
    ],
)
async def test_match_request_bad_fields_are_named_and_raise_nothing(
    api: Api,
    app: FastAPI,
    session: AsyncSession,
    fields: dict[str, Any],
    plate: dict[str, Any],
    field: str,
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "ABC123")])
    body = read("ABC123", **fields)
    body["plates"][0].update(plate)
    response = await api.call(
        "POST",
        "/internal/v1/matches",
        service=True,
        content=json.dumps(body),  # httpx's json= refuses NaN; a client's may not
        headers={"Content-Type": "application/json", "Idempotency-Key": body["read_id"]},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field
    assert (await api.call("GET", "/v1/alerts")).json() == []


async def test_matches_route_is_for_services_only(api: Api) -> None:
    response = await api.call("POST", "/internal/v1/matches", json=read("ABC123"))
    assert response.status_code == 401


async def new_alert(api: Api, app: FastAPI, session: AsyncSession, plate: str = "WRK123") -> str:
    await hot_list_with(api, app, session, [ncic_line("V", plate)], name=f"list {plate}")
    [alert] = (await post_read(api, read(plate))).json()["alerts"]
    alert_id: str = alert["alert_id"]
    return alert_id


VERIFY = {"characters_match": True, "state_matches": True}
STATUS = {"source": "mdt", "result": "confirmed", "reference": "MDT-42"}


async def test_full_workflow_is_recorded_and_audited(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    alert_id = await new_alert(api, app, session)
    base = f"/v1/alerts/{alert_id}"
    steps: list[tuple[str, dict[str, Any] | None, str]] = [
        ("acknowledge", None, "acknowledged"),
        ("verify", VERIFY, "verified"),
        ("status-check", STATUS, "status_checked"),
        ("disposition", {"code": "arrest", "note": "driver arrested"}, "dispositioned"),
    ]
    for action, body, status in steps:
        response = await api.call("POST", f"{base}/{action}", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == status
    shown = (await api.call("GET", base)).json()
    assert shown["verification"]["characters_match"] is True
    assert shown["verification"]["by"] == "officer-1"
    assert shown["status_check"]["reference"] == "MDT-42"
    assert (shown["disposition_code"], shown["disposition_note"]) == ("arrest", "driver arrested")
    assert [(h["from_status"], h["to_status"]) for h in shown["history"]] == [
        (None, "new"),
        ("new", "acknowledged"),
        ("acknowledged", "verified"),
        ("verified", "status_checked"),
        ("status_checked", "dispositioned"),
    ]
    transitions = audit_log.of_type("alert.transition")
    assert [(e["details"]["from"], e["details"]["to"]) for e in transitions] == [
        ("new", "acknowledged"),
        ("acknowledged", "verified"),
        ("verified", "status_checked"),
        ("status_checked", "dispositioned"),
    ]
    assert all(e["details"]["alert_id"] == alert_id for e in transitions)
    assert all(e["details"]["user"] == "officer-1" for e in transitions)


async def test_misread_then_disposition(api: Api, app: FastAPI, session: AsyncSession) -> None:
    alert_id = await new_alert(api, app, session)
    base = f"/v1/alerts/{alert_id}"
    await api.call("POST", f"{base}/acknowledge")
    bad = await api.call("POST", f"{base}/misread", json={"note": "x", "actual_plate": "W#K"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "actual_plate"
    flagged = await api.call(
        "POST", f"{base}/misread", json={"note": "3 was an 8", "actual_plate": "WRK128"}
    )
    assert flagged.json()["status"] == "misread"
    assert flagged.json()["misread"]["actual_plate"] == "WRK128"
    # A misread is not status-checked; it goes straight to its disposition.
    assert (await api.call("POST", f"{base}/status-check", json=STATUS)).status_code == 409
    done = await api.call("POST", f"{base}/disposition", json={"code": "misread"})
    assert done.json()["status"] == "dispositioned"


@pytest.mark.parametrize(
    ("done", "action", "body", "rule"),
    [
        ([], "verify", VERIFY, "C.4.a"),
        ([], "status-check", STATUS, "C.4.b"),
        ([], "disposition", {"code": "arrest"}, "C.5"),
        ([], "misread", {"note": "n"}, "C.4.a"),
        (["acknowledge"], "acknowledge", None, "C.4"),
        (["acknowledge"], "disposition", {"code": "arrest"}, "C.5"),
        (["acknowledge"], "status-check", STATUS, "C.4.b"),
        (["acknowledge", "verify"], "misread", {"note": "n"}, "C.4.a"),
        (["acknowledge", "verify"], "disposition", {"code": "arrest"}, "C.5"),
        (["acknowledge", "verify", "status-check"], "verify", VERIFY, "C.4.a"),
    ],
)
async def test_out_of_order_steps_are_refused_naming_the_rule(
    api: Api,
    app: FastAPI,
    session: AsyncSession,
    audit_log: AuditLog,
    done: list[str],
    action: str,
    body: dict[str, Any] | None,
    rule: str,
) -> None:
    alert_id = await new_alert(api, app, session)
    bodies = {"acknowledge": None, "verify": VERIFY, "status-check": STATUS}
    for step in done:
        assert (
            await api.call("POST", f"/v1/alerts/{alert_id}/{step}", json=bodies[step])
        ).status_code == 200
    before = (await api.call("GET", f"/v1/alerts/{alert_id}")).json()
    response = await api.call("POST", f"/v1/alerts/{alert_id}/{action}", json=body)
    assert response.status_code == 409
    assert response.json()["rule"].split(":")[0] == rule
    after = (await api.call("GET", f"/v1/alerts/{alert_id}")).json()
    assert after == before
    assert len(audit_log.of_type("alert.transition")) == len(done)


async def test_verification_must_confirm_characters_and_state(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    alert_id = await new_alert(api, app, session)
    await api.call("POST", f"/v1/alerts/{alert_id}/acknowledge")
    for field in ("characters_match", "state_matches"):
        body = {**VERIFY, field: False}
        response = await api.call("POST", f"/v1/alerts/{alert_id}/verify", json=body)
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == field
    missing = await api.call("POST", f"/v1/alerts/{alert_id}/verify", json={"note": "ok"})
    assert missing.status_code == 422


async def test_disposition_comes_from_the_administered_list(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    alert_id = await new_alert(api, app, session)
    base = f"/v1/alerts/{alert_id}"
    for action, body in [("acknowledge", None), ("verify", VERIFY), ("status-check", STATUS)]:
        await api.call("POST", f"{base}/{action}", json=body)
    unknown = await api.call("POST", f"{base}/disposition", json={"code": "shrugged"})
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "code"
    no_note = await api.call("POST", f"{base}/disposition", json={"code": "other"})
    assert no_note.status_code == 422
    assert no_note.json()["errors"][0]["field"] == "note"
    # An administrator retires a code: it can no longer be used.
    retired = await api.admin(
        "PUT",
        "/v1/dispositions/citation",
        json={"code": "citation", "label": "Citation issued", "active": False},
    )
    assert retired.status_code == 200
    assert (
        await api.call("POST", f"{base}/disposition", json={"code": "citation"})
    ).status_code == 422
    codes = {c["code"] for c in (await api.call("GET", "/v1/dispositions")).json() if c["active"]}
    assert {"stop_made", "arrest", "no_action", "vehicle_not_located", "misread"} <= codes
    ok = await api.call("POST", f"{base}/disposition", json={"code": "other", "note": "towed"})
    assert ok.status_code == 200


async def test_another_agency_cannot_work_our_alert(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    alert_id = await new_alert(api, app, session)
    for action, body in [
        ("acknowledge", None),
        ("disposition", {"code": "arrest"}),
    ]:
        response = await api.call(
            "POST", f"/v1/alerts/{alert_id}/{action}", json=body, agency="NV0020000"
        )
        assert response.status_code == 403
        assert (
            "another agency" in response.json()["rule"] or "own agency" in response.json()["rule"]
        )
    assert (await api.call("GET", f"/v1/alerts/{alert_id}", agency="NV0020000")).status_code == 403
    assert (await api.call("GET", f"/v1/alerts/{alert_id}")).json()["status"] == "new"
    assert audit_log.of_type("alert.transition") == []


async def test_audit_log_down_after_the_step_committed_queues_its_event_durably(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    """The step has committed before its event is sent: it stands, and its event is kept."""
    alert_id = await new_alert(api, app, session)
    audit_log.fail = True
    response = await api.call("POST", f"/v1/alerts/{alert_id}/acknowledge")
    assert response.status_code == 200, response.text
    assert audit_log.of_type("alert.transition") == []
    [queued] = (await session.scalars(select(AuditOutbox))).all()
    assert queued.event["event_type"] == "alert.transition"
    assert queued.event["details"]["alert_id"] == alert_id

    audit_log.fail = False

    @asynccontextmanager
    async def same_session() -> AsyncIterator[AsyncSession]:
        yield session

    assert await audit_outbox.flush(same_session, app.state.audit) == 1
    [event] = audit_log.of_type("alert.transition")
    assert event["event_id"] == queued.event["event_id"]
    assert (event["outcome"], event["details"]["to"]) == ("success", "acknowledged")
    assert (await session.scalars(select(AuditOutbox))).all() == []


async def test_a_sent_event_leaves_nothing_queued(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    alert_id = await new_alert(api, app, session)
    response = await api.call("POST", f"/v1/alerts/{alert_id}/acknowledge")
    assert response.status_code == 200, response.text
    assert len(audit_log.of_type("alert.transition")) == 1
    assert (await session.scalars(select(AuditOutbox))).all() == []


@pytest.mark.parametrize("step", ["verify", "status_check", "disposition"])
async def test_a_step_whose_write_fails_is_not_logged_as_done(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog, step: str
) -> None:
    """IACP C.4-C.5: the access log holds no success for a step that did not commit."""
    alert_id = await new_alert(api, app, session)
    base = f"/v1/alerts/{alert_id}"
    path = {"verify": "verify", "status_check": "status-check", "disposition": "disposition"}
    bodies: dict[str, dict[str, Any] | None] = {
        "acknowledge": None,
        "verify": VERIFY,
        "status_check": STATUS,
        "disposition": {"code": "arrest", "note": "driver arrested"},
    }
    for earlier in ["acknowledge", "verify", "status_check", "disposition"]:
        if earlier == step:
            break
        done = await api.call("POST", f"{base}/{path.get(earlier, earlier)}", json=bodies[earlier])
        assert done.status_code == 200, done.text
    before = len(audit_log.of_type("alert.transition"))
    # The database refuses the step's event row, as a failing commit would lose the step.
    await session.execute(
        text(
            f"""
            CREATE FUNCTION hotlist.test_refuse_step() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.details->>'action' = '{step}' THEN
                    RAISE EXCEPTION 'refused by the test';
                END IF;
                RETURN NEW;
            END $$
            """
        )
    )
    await session.execute(
        text(
            "CREATE TRIGGER refuse_step BEFORE INSERT ON hotlist.alert_events "
            "FOR EACH ROW EXECUTE FUNCTION hotlist.test_refuse_step()"
        )
    )
    with contextlib.suppress(Exception):  # a 500, or the error raised through the transport
        response = await api.call("POST", f"{base}/{path[step]}", json=bodies[step])
        assert response.status_code >= 500
    await session.rollback()
    assert len(audit_log.of_type("alert.transition")) == before
    assert [e for e in audit_log.events if e["details"].get("action") == step] == []


async def queued_creations(session: AsyncSession, alert_ids: set[str]) -> list[AuditOutbox]:
    """The queued ``alert.created`` events of some alerts (other suites may queue more)."""
    return [
        row
        for row in (await session.scalars(select(AuditOutbox).order_by(col(AuditOutbox.id)))).all()
        if row.event["event_type"] == "alert.created"
        and row.event["details"]["alert_id"] in alert_ids
    ]


@pytest.mark.parametrize("failure", ["event_row_refused", "commit_fails"])
async def test_an_alert_whose_write_fails_is_not_logged_as_raised(
    api: Api,
    app: FastAPI,
    session: AsyncSession,
    audit_log: AuditLog,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    """IACP C.4: the access log holds no alert that was not stored, nor its hit counted."""
    await hot_list_with(api, app, session, [ncic_line("V", "FLD123")])
    body = read("FLD123", deployment_id="dep-" + uuid4().hex[:8])
    if failure == "event_row_refused":
        # The database refuses the alert's created event, as a failing commit would lose it.
        await session.execute(
            text(
                """
                CREATE FUNCTION hotlist.test_refuse_alert() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF NEW.event_type = 'alert.created' THEN
                        RAISE EXCEPTION 'refused by the test';
                    END IF;
                    RETURN NEW;
                END $$
                """
            )
        )
        await session.execute(
            text(
                "CREATE TRIGGER refuse_alert BEFORE INSERT ON hotlist.alert_events "
                "FOR EACH ROW EXECUTE FUNCTION hotlist.test_refuse_alert()"
            )
        )
    else:

        async def refuse_commit() -> None:
            raise ConnectionResetError("connection lost during the commit")

        monkeypatch.setattr(session, "commit", refuse_commit)
    with contextlib.suppress(Exception):  # a 500, or the error raised through the transport
        response = await post_read(api, body)
        assert response.status_code >= 500
    monkeypatch.undo()
    await session.rollback()
    assert audit_log.of_type("alert.created") == []
    assert [e for e in audit_log.events if e["details"].get("read_id") == body["read_id"]] == []
    queued = (await session.scalars(select(AuditOutbox))).all()
    assert [row for row in queued if row.event["details"].get("read_id") == body["read_id"]] == []
    assert body["deployment_id"] not in app.state.deployment_results.pending


async def test_audit_log_down_after_the_alert_committed_queues_its_event_durably(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    """The alert has committed before its event is sent: it stands, and its event is kept."""
    await hot_list_with(api, app, session, [ncic_line("V", "DWN123")])
    body = read("DWN123", deployment_id="dep-" + uuid4().hex[:8])
    audit_log.fail = True
    response = await post_read(api, body)
    assert response.status_code == 200, response.text
    [alert] = response.json()["alerts"]
    assert audit_log.of_type("alert.created") == []
    assert app.state.deployment_results.pending[body["deployment_id"]].hits == 1
    [queued] = await queued_creations(session, {alert["alert_id"]})
    assert queued.event["details"]["read_id"] == body["read_id"]

    # recognition-svc retries a read it has no answer for: the same alert, no second event.
    again = await post_read(api, body)
    assert again.status_code == 200, again.text
    assert again.json() == response.json()
    assert len(await queued_creations(session, {alert["alert_id"]})) == 1

    audit_log.fail = False

    @asynccontextmanager
    async def same_session() -> AsyncIterator[AsyncSession]:
        yield session

    assert await audit_outbox.flush(same_session, app.state.audit) >= 1
    [event] = audit_log.of_type("alert.created")
    assert event["event_id"] == queued.event["event_id"]
    assert (event["outcome"], event["details"]["alert_id"]) == ("success", alert["alert_id"])
    assert await queued_creations(session, {alert["alert_id"]}) == []


async def test_a_read_raising_no_alert_leaves_the_audit_outbox_alone(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    """No hit, a frame joining its pass's alert, a repeated read: no audit event to queue."""
    await hot_list_with(api, app, session, [ncic_line("V", "QUE4567")])
    track_id, read_ids = str(uuid4()), list[str]()
    first = (await post_read(api, frame("QUE4567", track_id, read_ids))).json()
    [alert] = first["alerts"]
    assert len(audit_log.of_type("alert.created")) == 1
    assert await queued_creations(session, {alert["alert_id"]}) == []
    audit_log.fail = True
    before = len((await session.scalars(select(AuditOutbox))).all())
    miss = await post_read(api, read("NOH1T00"))
    joined = await post_read(api, frame("QUE4567", track_id, read_ids))
    repeated = await post_read(api, read("QUE4567", read_id=first["read_id"]))
    assert [r.status_code for r in (miss, joined, repeated)] == [200, 200, 200]
    assert miss.json()["alerts"] == []
    assert [a["alert_id"] for a in joined.json()["alerts"]] == [alert["alert_id"]]
    assert repeated.json() == first
    assert len((await session.scalars(select(AuditOutbox))).all()) == before
    assert len(audit_log.of_type("alert.created")) == 1


async def test_workflow_text_holding_nul_is_named_and_changes_nothing(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    alert_id = await new_alert(api, app, session)
    note = await api.call("POST", f"/v1/alerts/{alert_id}/acknowledge", json={"note": "x\x00"})
    label = await api.admin(
        "PUT", "/v1/dispositions/arrest_rv", json={"code": "arrest_rv", "label": "Arrest\x00"}
    )
    assert [(r.status_code, r.json()["errors"][0]["field"]) for r in (note, label)] == [
        (422, "note"),
        (422, "label"),
    ]
    assert (await api.call("GET", f"/v1/alerts/{alert_id}")).json()["status"] == "new"
    assert audit_log.of_type("alert.transition") == []
    codes = {c["code"] for c in (await api.call("GET", "/v1/dispositions")).json()}
    assert "arrest_rv" not in codes


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/alerts/open", {"older_than_minutes": 10**12}, "older_than_minutes"),
        ("/v1/alerts", {"offset": 2**63}, "offset"),
        ("/v1/alerts", {"status": "new\x00"}, "status"),
        ("/v1/alerts/stream", {"last_event_id": 2**63}, "last_event_id"),
        ("/v1/hits", {"plate": "ABC123", "since": "0001-01-01T00:00:00+14:00"}, "since"),
    ],
    ids=["open-minutes-overflow", "offset-over-bigint", "nul-status", "event-id", "since-year-0"],
)
async def test_alert_queries_name_the_bad_parameter(
    api: Api, path: str, params: dict[str, Any], field: str
) -> None:
    response = await api.call("GET", path, params=params)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_open_alerts_report(api: Api, app: FastAPI, session: AsyncSession) -> None:
    alert_id = await new_alert(api, app, session)
    report = (await api.call("GET", "/v1/alerts/open", params={"older_than_minutes": 0})).json()
    assert alert_id in [a["id"] for a in report]
    later = (await api.call("GET", "/v1/alerts/open", params={"older_than_minutes": 30})).json()
    assert alert_id not in [a["id"] for a in later]


async def test_stale_unit_at_shift_start_flags_its_alerts(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    list_id = await hot_list_with(api, app, session, [ncic_line("V", "STL123")], name="stale")
    check = await api.call(
        "POST", "/v1/shift-checks", json={"unit_id": "unit-9", "versions": {list_id: 0}}
    )
    assert check.status_code == 201, check.text
    assert check.json()["current"] is False
    [flagged] = (await post_read(api, read("STL123", unit_id="unit-9"))).json()["alerts"]
    assert flagged["stale_hotlists"] is True
    [fresh] = (await post_read(api, read("STL123", unit_id="unit-1"))).json()["alerts"]
    assert fresh["stale_hotlists"] is False
    shown = (await api.call("GET", f"/v1/alerts/{flagged['alert_id']}")).json()
    assert "unit unit-9" in shown["stale_reason"]
    checks = (await api.call("GET", "/v1/shift-checks", params={"stale": "true"})).json()
    assert [c["unit_id"] for c in checks] == ["unit-9"]
    hits = await api.call("GET", "/v1/hits", params={"plate": "stl-123"})
    assert {a["id"] for a in hits.json()} == {flagged["alert_id"], fresh["alert_id"]}
    assert hits.headers["X-LPR-Data-Class"] == "hits"
    assert hits.headers["X-LPR-Result-Count"] == "2"
    assert (await api.call("GET", "/v1/hits", params={"plate": "ST#1"})).status_code == 422


# --- multi-frame fusion: one alert per vehicle pass and entry ----------------------------


def frame(plate: str, track_id: str, read_ids: list[str], **fields: Any) -> dict[str, Any]:
    """One frame of a vehicle pass, sent with the pass's fused plate and track."""
    body = read(plate, **fields)
    read_ids.append(body["read_id"])
    body["plates"][0].update(track_id=track_id, track_read_ids=list(read_ids))
    return body


async def test_frames_of_one_pass_hitting_one_entry_raise_one_alert(
    api: Api, app: FastAPI, session: AsyncSession, audit_log: AuditLog
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "TRK4567")])
    track_id, read_ids = str(uuid4()), list[str]()
    camera = "cam-" + uuid4().hex[:8]
    first_body = frame("TRK4567", track_id, read_ids, camera_id=camera)
    first = (await post_read(api, first_body)).json()
    second_body = frame("TRK4567", track_id, read_ids, camera_id=camera)
    second = (await post_read(api, second_body)).json()

    [alert] = first["alerts"]
    assert [a["alert_id"] for a in second["alerts"]] == [alert["alert_id"]]
    assert alert["track_id"] == track_id
    assert len(audit_log.of_type("alert.created")) == 1
    listed = (await api.call("GET", "/v1/alerts")).json()
    assert [a["id"] for a in listed if a["track_id"] == track_id] == [alert["alert_id"]]
    shown = (await api.call("GET", f"/v1/alerts/{alert['alert_id']}")).json()
    assert shown["read_id"] == read_ids[0]  # the frame that raised it
    assert shown["member_read_ids"] == read_ids
    assert shown["fused_plate"] == "TRK4567"
    # The later frame raised nothing but is news for the officers' streams.
    created, updated = shown["history"]
    assert (created["event_type"], updated["event_type"]) == ("alert.created", "alert.updated")
    assert updated["from_status"] == updated["to_status"] == "new"
    assert updated["details"] == {
        "read_id": read_ids[1],
        "track_id": track_id,
        "member_read_ids": read_ids,
        "fused_plate": "TRK4567",
    }
    # A repeated frame gets the same answer, and raises nothing, not even an update.
    assert (await post_read(api, second_body)).json() == second
    shown = (await api.call("GET", f"/v1/alerts/{alert['alert_id']}")).json()
    assert len(shown["history"]) == 2
    # Another pass of the same vehicle later is another alert.
    third = (await post_read(api, frame("TRK4567", str(uuid4()), []))).json()
    assert third["alerts"][0]["alert_id"] != alert["alert_id"]
    assert len(audit_log.of_type("alert.created")) == 2


async def test_a_later_frame_hitting_only_through_the_fused_plate_raises_the_alert(
    api: Api, app: FastAPI, session: AsyncSession
) -> None:
    await hot_list_with(api, app, session, [ncic_line("V", "FUS9876")])
    track_id, read_ids = str(uuid4()), list[str]()
    # The first frame misread the plate; no hit, no alert.
    missed = (await post_read(api, frame("FUS9B7X", track_id, read_ids))).json()
    assert missed["alerts"] == []
    # Later frames corrected the fused plate; this one's own reading is still wrong.
    body = frame("FUS9876", track_id, read_ids)
    body["plates"][0]["candidates"] = [{"text": "FUS9B7X", "confidence": 0.4}]
    [alert] = (await post_read(api, body)).json()["alerts"]
    shown = (await api.call("GET", f"/v1/alerts/{alert['alert_id']}")).json()
    assert shown["member_read_ids"] == read_ids  # every frame of the pass, for B.1.b


async def test_an_event_audit_refuses_for_good_does_not_hold_back_the_rest(
    session: AsyncSession,
) -> None:
    """A queued event audit-svc answers 4xx stays queued; the events behind it still go."""
    refused = AuditEvent(
        component="hotlist", event_type="alert.transition", outcome="success", details={}
    )
    later = AuditEvent(
        component="hotlist", event_type="alert.transition", outcome="success", details={}
    )
    recorded: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        events = json.loads(request.content)["events"]
        if any(e["event_id"] == str(refused.event_id) for e in events):
            return httpx.Response(422, json={"detail": "refused by the test"})
        recorded.extend(e["event_id"] for e in events)
        return httpx.Response(201, json={"accepted": len(events)})

    client = AuditClient(
        httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://audit")
    )
    await audit_outbox.stage(session, refused)
    await audit_outbox.stage(session, later)

    @asynccontextmanager
    async def same_session() -> AsyncIterator[AsyncSession]:
        yield session

    assert await audit_outbox.flush(same_session, client) >= 1
    assert str(later.event_id) in recorded
    assert str(refused.event_id) not in recorded
    queued = [row.event["event_id"] for row in (await session.scalars(select(AuditOutbox))).all()]
    assert queued == [str(refused.event_id)]  # kept, not lost
    # The next round neither sends the later event again nor loses the refused one.
    recorded.clear()
    await audit_outbox.flush(same_session, client)
    assert recorded == []
    queued = [row.event["event_id"] for row in (await session.scalars(select(AuditOutbox))).all()]
    assert queued == [str(refused.event_id)]
