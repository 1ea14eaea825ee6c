"""The policy table's key rows through the real gateway and database.

lpr_policy's own table tests cover the engine; these cover the wiring: the facts the
gateway reads from its records (training, MOUs, approvals, cameras, deployments) reach
the decision, and every decision is audited. Test ids name the IACP clause.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from gateway.tests.conftest import (
    PARTNER_AGENCY,
    PLATFORM_AGENCY,
    Gateway,
    problem,
    refused_fields,
)
from lpr_gateway.governance.models import ApprovalRecord
from lpr_gateway.identity.models import TrainingRecord, User

PURPOSE = {"X-LPR-Purpose": "stolen_vehicle"}


def search_body(days: int, purpose: str = "stolen_vehicle", **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "purpose": purpose,
        "case_number": "PD-2026-000123",
        "plate": "ABC123",
        "time_range": {"start": (now - timedelta(days=days)).isoformat(), "end": now.isoformat()},
        **extra,
    }


async def test_c2_expired_training_in_the_database_denies_every_access(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.lapsed", ["officer"], training_days=-1)
    response = await gateway.client.get("/v1/cameras", headers=gateway.token(officer))
    assert response.status_code == 403
    body = problem(response)
    assert body["rule"] == "training-expired"
    assert body["clause"] == "C.2"
    event = gateway.audit.last()
    assert (event["outcome"], event["rule"], event["subject_id"]) == (
        "denied",
        "training-expired",
        str(officer.id),
    )
    assert (event["resource"], event["action"]) == ("cameras", "read")
    assert response.headers["X-LPR-Audit-Event"] == event["event_id"]


async def test_c2_user_without_training_record_is_denied(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.untrained", ["officer"], training_days=None)
    response = await gateway.client.get("/v1/cameras", headers=gateway.token(officer))
    assert response.status_code == 403
    assert problem(response)["rule"] == "training-missing"


async def test_c2_training_recorded_through_the_api_restores_access(gateway: Gateway) -> None:
    admin = await gateway.user("adm.training", ["administrator"])
    officer = await gateway.user("ofc.retrained", ["officer"], training_days=-3)
    assert (
        await gateway.client.get("/v1/cameras", headers=gateway.token(officer))
    ).status_code == 403
    recorded = await gateway.client.post(
        f"/v1/users/{officer.id}/training",
        headers=gateway.token(admin),
        json={
            "course": "LPR refresher 2026",
            "completed_on": datetime.now(UTC).date().isoformat(),
            "expires_at": (datetime.now(UTC) + timedelta(days=365)).isoformat(),
        },
    )
    assert recorded.status_code == 201, recorded.text
    assert (
        await gateway.client.get("/v1/cameras", headers=gateway.token(officer))
    ).status_code == 200


async def test_b1d_administrator_manages_users_officer_does_not(gateway: Gateway) -> None:
    admin = await gateway.user("adm.users", ["administrator"])
    officer = await gateway.user("ofc.users", ["officer"])
    new_user = {"username": "ofc.new", "roles": ["officer"], "password": "long enough password"}
    refused = await gateway.client.post("/v1/users", headers=gateway.token(officer), json=new_user)
    assert refused.status_code == 403
    assert problem(refused)["rule"] == "deny-by-default"
    created = await gateway.client.post("/v1/users", headers=gateway.token(admin), json=new_user)
    assert created.status_code == 201, created.text
    assert created.json()["agency"] == PLATFORM_AGENCY
    assert "password" not in created.text
    assert "hash" not in created.text
    assert gateway.audit.last()["rule"] == "B.1.d:administrator-manages-users"
    assert created.headers["X-LPR-Audit-Event"] == gateway.audit.last()["event_id"]


USER_WRITES: dict[str, dict[str, Any]] = {
    "POST /v1/users": {"username": "ofc.new", "roles": ["officer"]},
    "PATCH /v1/users/{user}": {},
    "POST /v1/users/{user}/training": {"course": "LPR refresher", "completed_on": "2026-01-01"},
}


@pytest.mark.parametrize(
    ("route", "change", "field"),
    [
        ("POST /v1/users", {"agency": "A" * 21}, "agency"),
        ("POST /v1/users", {"display_name": "D" * 201}, "display_name"),
        ("POST /v1/users", {"username": "ofc\x00new"}, "username"),
        (
            "POST /v1/users",
            {"training_expires_at": "9999-12-31T23:59:59-14:00"},
            "training_expires_at",
        ),
        ("POST /v1/users", {"training_expires_at": "2030-01-01T00:00:00"}, "training_expires_at"),
        ("PATCH /v1/users/{user}", {"active": None}, "active"),
        ("PATCH /v1/users/{user}", {"roles": None}, "roles"),
        (
            "PATCH /v1/users/{user}",
            {"roles": ["auditor"], "display_name": "D" * 201},
            "display_name",
        ),
        (
            "POST /v1/users/{user}/training",
            {"expires_at": "0001-01-01T00:00:00+14:00"},
            "expires_at",
        ),
    ],
    ids=[
        "agency-longer-than-its-column",
        "display-name-longer-than-its-column",
        "nul-in-username",
        "training-past-year-9999-in-utc",
        "training-without-timezone",
        "null-active",
        "null-roles",
        "display-name-too-long-with-a-good-change",
        "training-before-year-1-in-utc",
    ],
)
async def test_b1d_user_write_with_a_bad_field_is_refused_naming_it_and_nothing_changes(
    gateway: Gateway, route: str, change: dict[str, Any], field: str
) -> None:
    admin = await gateway.user("adm.user.fields", ["administrator"])
    officer = await gateway.user("ofc.user.fields", ["officer"])
    method, path = route.split(" ")
    response = await gateway.client.request(
        method,
        path.format(user=officer.id),
        headers=gateway.token(admin),
        json={**USER_WRITES[route], **change},
    )
    assert field in refused_fields(response)
    stored = await gateway.session.execute(
        select(col(User.roles), col(User.active), col(User.display_name)).where(
            col(User.id) == officer.id
        )
    )
    assert tuple(stored.one()) == (["officer"], True, None)
    assert (
        await gateway.session.scalar(select(col(User.id)).where(col(User.username) == "ofc.new"))
        is None
    )
    trainings = select(func.count()).where(col(TrainingRecord.user_id) == officer.id)
    assert await gateway.session.scalar(trainings) == 1


async def test_a12_vague_and_unknown_purposes_are_refused(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.purpose", ["officer"])
    path = "/v1/reads/3f7c1a52-0000-4000-8000-000000000001"
    vague = await gateway.client.get(
        path, headers={**gateway.token(officer), "X-LPR-Purpose": "law enforcement"}
    )
    assert vague.status_code == 403
    assert problem(vague)["rule"] == "vague-purpose"
    unknown = await gateway.client.get(
        path, headers={**gateway.token(officer), "X-LPR-Purpose": "bounty_hunting"}
    )
    assert unknown.status_code == 403
    assert problem(unknown)["rule"] == "unknown-purpose"
    allowed = await gateway.client.get(path, headers={**gateway.token(officer), **PURPOSE})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["context"]["purpose"] == "stolen_vehicle"


async def test_b1f_approval_in_the_database_extends_an_officers_lookback(
    gateway: Gateway,
) -> None:
    officer = await gateway.user("ofc.approval", ["officer"])
    admin = await gateway.user("adm.approval", ["administrator"])
    body = search_body(days=200)
    refused = await gateway.client.post(
        "/v1/reads/search", headers=gateway.token(officer), json=body
    )
    assert refused.status_code == 403
    assert problem(refused)["rule"] == "lookback-exceeds-limit"

    now = datetime.now(UTC)
    requested = await gateway.client.post(
        "/v1/approvals",
        headers=gateway.token(officer),
        json={
            "resource": "reads",
            "action": "search",
            "reason": "burglary series spanning two seasons, case PD-2026-000123",
            "case_number": "PD-2026-000123",
            "max_lookback_days": 365,
            "not_before": (now - timedelta(minutes=1)).isoformat(),
            "not_after": (now + timedelta(days=7)).isoformat(),
        },
    )
    assert requested.status_code == 201, requested.text
    approval_id = requested.json()["id"]
    still_refused = await gateway.client.post(
        "/v1/reads/search", headers=gateway.token(officer), json=body
    )
    assert still_refused.status_code == 403  # pending is not approved
    decided = await gateway.client.post(
        f"/v1/approvals/{approval_id}/decision",
        headers=gateway.token(admin),
        json={"approve": True},
    )
    assert decided.status_code == 200, decided.text
    allowed = await gateway.client.post(
        "/v1/reads/search", headers=gateway.token(officer), json=body
    )
    assert allowed.status_code == 201, allowed.text
    event = gateway.audit.last()
    assert event["outcome"] == "allowed"
    assert event["case_number"] == "PD-2026-000123"
    assert event["plate"] == "ABC123"
    [result] = [
        r for r in await gateway.results() if r["details"]["decision_event_id"] == event["event_id"]
    ]
    assert (result["outcome"], result["result_count"]) == ("success", 2)
    assert result["query"]["record_ids"] == ["r-1", "r-2"]
    assert (result["case_number"], result["plate"]) == ("PD-2026-000123", "ABC123")


async def test_b1f_expired_approval_does_not_count(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.stale.approval", ["officer"])
    now = datetime.now(UTC)
    gateway.session.add(
        ApprovalRecord(
            user_id=officer.id,
            resource="reads",
            action="search",
            reason="old case that has been closed already",
            max_lookback_days=365,
            not_before=now - timedelta(days=10),
            not_after=now - timedelta(hours=1),
            status="approved",
        )
    )
    await gateway.session.flush()
    refused = await gateway.client.post(
        "/v1/reads/search", headers=gateway.token(officer), json=search_body(days=200)
    )
    assert refused.status_code == 403
    assert problem(refused)["rule"] == "approval-outside-window"


async def test_d2_partner_reads_under_mou_are_disseminated(gateway: Gateway) -> None:
    client = await gateway.partner()
    response = await gateway.client.get(
        "/v1/reads/3f7c1a52-0000-4000-8000-000000000002",
        headers={**gateway.partner_token(client), **PURPOSE},
    )
    assert response.status_code == 200, response.text
    context = response.json()["context"]
    assert context["subject_kind"] == "partner"
    assert context["mou_id"] == str(client.mou_id)
    assert context["agency"] == PARTNER_AGENCY
    record = gateway.audit.disseminations[-1]
    assert record["recipient_agency"] == PARTNER_AGENCY
    assert record["mou_id"] == str(client.mou_id)
    assert record["record_ids"] == ["r-1", "r-2"]
    assert record["record_count"] == 2
    assert record["data_class"] == "reads"


@pytest.mark.parametrize(
    ("mou", "path", "headers", "rule"),
    [
        ({"status": "suspended"}, "/v1/reads/x", PURPOSE, "mou-not-in-force"),
        ({}, "/v1/reads/x/image", PURPOSE, "mou-data-class"),
        ({}, "/v1/reads/x", {"X-LPR-Purpose": "wanted_person"}, "mou-purpose"),
        ({}, "/v1/cameras", {}, "mou-data-class"),
    ],
    ids=["D.2-suspended", "D.2-images-excluded", "D.2-other-purpose", "D.2-not-lpr-data"],
)
async def test_d2_requests_outside_the_mou_are_refused(
    gateway: Gateway, mou: dict[str, Any], path: str, headers: dict[str, str], rule: str
) -> None:
    client = await gateway.partner(**mou)
    response = await gateway.client.get(path, headers={**gateway.partner_token(client), **headers})
    assert response.status_code == 403
    assert problem(response)["rule"] == rule
    assert not gateway.audit.disseminations
    assert gateway.audit.last()["mou_id"] == str(client.mou_id)


async def test_d2_partner_search_longer_than_mou_lookback_is_refused(gateway: Gateway) -> None:
    client = await gateway.partner(lookback=30)
    response = await gateway.client.post(
        "/v1/reads/search", headers=gateway.partner_token(client), json=search_body(days=45)
    )
    assert response.status_code == 403
    assert problem(response)["rule"] == "mou-lookback"


async def test_b1c_auditor_reads_the_access_log_officer_cannot(gateway: Gateway) -> None:
    auditor = await gateway.user("aud.log", ["auditor"])
    officer = await gateway.user("ofc.log", ["officer"])
    allowed = await gateway.client.get("/v1/audit/events", headers=gateway.token(auditor))
    assert allowed.status_code == 200, allowed.text
    refused = await gateway.client.get("/v1/audit/events", headers=gateway.token(officer))
    assert refused.status_code == 403
