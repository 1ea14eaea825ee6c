"""Governance records through the API: purposes, MOUs and partner clients, results, policy rows."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlmodel import col

from gateway.tests.conftest import PARTNER_AGENCY, PLATFORM_AGENCY, Gateway, problem, refused_fields
from lpr_common.testing import service_headers
from lpr_gateway.governance.models import (
    Agency,
    ApprovalRecord,
    MouRecord,
    PolicyRule,
    PurposeRecord,
)


async def test_a12_vague_purposes_are_refused_at_creation(gateway: Gateway) -> None:
    admin = await gateway.user("adm.purposes", ["administrator"])
    for code, label in [
        ("other", "Other"),
        ("misc", "Miscellaneous"),
        ("patrol_general", "General"),
    ]:
        response = await gateway.client.post(
            "/v1/purposes", headers=gateway.token(admin), json={"code": code, "label": label}
        )
        assert response.status_code == 422, (code, response.text)
        assert "vague purpose" in problem(response)["detail"]
    count = await gateway.session.scalar(
        select(func.count()).select_from(PurposeRecord).where(col(PurposeRecord.code) == "other")
    )
    assert count == 0
    created = await gateway.client.post(
        "/v1/purposes",
        headers=gateway.token(admin),
        json={"code": "hit_and_run", "label": "Hit and run investigation"},
    )
    assert created.status_code == 201, created.text
    listed = await gateway.client.get("/v1/purposes", headers=gateway.token(admin))
    assert "hit_and_run" in {p["code"] for p in listed.json()}


async def test_d2_mou_and_partner_client_created_through_the_api(gateway: Gateway) -> None:
    admin = await gateway.user("adm.mou", ["administrator"])
    today = datetime.now(UTC).date()
    mou = await gateway.client.post(
        "/v1/mous",
        headers=gateway.token(admin),
        json={
            "partner_agency": PARTNER_AGENCY,
            "status": "active",
            "data_classes": ["reads", "hits"],
            "purposes": ["stolen_vehicle"],
            "max_lookback_days": 30,
            "signed_on": (today - timedelta(days=1)).isoformat(),
            "expires_on": (today + timedelta(days=365)).isoformat(),
            "contact": "records@nv.example.gov",
        },
    )
    assert mou.status_code == 201, mou.text
    bad = await gateway.client.post(
        "/v1/mous",
        headers=gateway.token(admin),
        json={
            "partner_agency": PARTNER_AGENCY,
            "data_classes": ["reads"],
            "purposes": ["curiosity"],
            "max_lookback_days": 30,
        },
    )
    assert bad.status_code == 422
    assert problem(bad)["errors"][0]["field"] == "purposes"

    created = await gateway.client.post(
        f"/v1/mous/{mou.json()['id']}/clients", headers=gateway.token(admin)
    )
    assert created.status_code == 201, created.text
    credentials = created.json()
    listed = await gateway.client.get(
        f"/v1/mous/{mou.json()['id']}/clients", headers=gateway.token(admin)
    )
    assert "client_secret" not in listed.text
    token = await gateway.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credentials["client_id"],
            "client_secret": credentials["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    search = await gateway.client.get(
        "/v1/reads/abc",
        headers={
            "Authorization": f"Bearer {token.json()['access_token']}",
            "X-LPR-Purpose": "stolen_vehicle",
        },
    )
    assert search.status_code == 200, search.text


async def test_b1e_deployment_results_accrue_through_the_internal_route(
    gateway: Gateway,
) -> None:
    deployment = await gateway.deployment()
    path = f"/internal/v1/deployments/{deployment.id}/results"
    refused = await gateway.client.post(path, json={"reads": 1})
    assert refused.status_code == 401
    for _ in range(2):
        response = await gateway.client.post(
            path,
            json={"reads": 10, "hits": 1, "dispositions": 1},
            headers=service_headers("POST", path, service="recognition"),
        )
        assert response.status_code == 200, response.text
    assert (response.json()["reads_count"], response.json()["hits_count"]) == (20, 2)


async def test_b1e_deployment_results_count_past_two_billion_reads(gateway: Gateway) -> None:
    """Results are ``bigint``: two in-range reports summed past ``integer`` still add up."""
    deployment = await gateway.deployment()
    path = f"/internal/v1/deployments/{deployment.id}/results"
    headers = service_headers("POST", path, service="recognition")
    int4_max = 2**31 - 1
    for _ in range(2):
        response = await gateway.client.post(
            path, json={"reads": int4_max, "hits": int4_max, "dispositions": 1}, headers=headers
        )
        assert response.status_code == 200, response.text
    body = response.json()
    assert (body["reads_count"], body["hits_count"], body["dispositions_count"]) == (
        2 * int4_max,
        2 * int4_max,
        2,
    )


@pytest.mark.parametrize(
    ("results", "field"),
    [
        ({"reads": 2**63}, "reads"),
        ({"hits": -1}, "hits"),
        ({"reads": 1, "dispositions": 2**63 - 2}, "dispositions"),
    ],
    ids=["beyond-bigint", "negative", "total-beyond-bigint"],
)
async def test_b1e_deployment_results_out_of_range_are_refused_naming_the_field(
    gateway: Gateway, results: dict[str, int], field: str
) -> None:
    deployment = await gateway.deployment()
    path = f"/internal/v1/deployments/{deployment.id}/results"
    headers = service_headers("POST", path, service="recognition")
    first = await gateway.client.post(path, json={"dispositions": 3}, headers=headers)
    assert first.status_code == 200, first.text
    refused = await gateway.client.post(path, json=results, headers=headers)
    assert refused_fields(refused) == {field}
    # Nothing of a refused report is added.
    read = await gateway.client.post(path, json={}, headers=headers)
    assert read.status_code == 200, read.text
    assert (read.json()["reads_count"], read.json()["dispositions_count"]) == (0, 3)


async def test_runtime_policy_row_reaches_the_engine_within_seconds(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    """A row committed by anyone (another replica, psql) is seen through NOTIFY or polling."""
    officer = await gateway.user("ofc.grant", ["officer"])
    refused = await gateway.client.get("/v1/users", headers=gateway.token(officer))
    assert refused.status_code == 403
    row = PolicyRule(
        ptype="p",
        v0=f"user:{officer.id}",
        v1="*",
        v2="users",
        v3="read",
        v4="",
        v5="B.1.d:temporary-user-review",
    )
    async with AsyncSession(engine, expire_on_commit=False) as other:
        other.add(row)
        await other.commit()
    try:
        started = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - started < 8:
            if any(
                "temporary-user-review" in (r[-1] or "") for r in gateway.app.state.policy.rules
            ):
                break
            await asyncio.sleep(0.05)
        elapsed = asyncio.get_running_loop().time() - started
        assert elapsed < 8, elapsed
        allowed = await gateway.client.get("/v1/users", headers=gateway.token(officer))
        assert allowed.status_code == 200, allowed.text
        assert gateway.audit.last()["rule"] == "B.1.d:temporary-user-review"
    finally:
        async with AsyncSession(engine) as other:
            await other.execute(
                delete(PolicyRule).where(col(PolicyRule.v5) == "B.1.d:temporary-user-review")
            )
            await other.commit()


async def test_malformed_policy_row_is_refused_by_the_api(gateway: Gateway) -> None:
    admin = await gateway.user("adm.rules", ["administrator"])
    response = await gateway.client.post(
        "/v1/policy/rules",
        headers=gateway.token(admin),
        json={
            "ptype": "p",
            "v0": "officer",
            "v1": "*",
            "v2": "reads",
            "v3": "destroy",
            "v4": "",
            "v5": "X:bad",
        },
    )
    assert response.status_code == 422
    assert "unknown permission" in problem(response)["detail"]


MOU_COLUMNS = [
    col(MouRecord.status),
    col(MouRecord.data_classes),
    col(MouRecord.purposes),
    col(MouRecord.max_lookback_days),
    col(MouRecord.signed_on),
    col(MouRecord.expires_on),
    col(MouRecord.contact),
]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"status": None}, "status"),
        ({"max_lookback_days": None}, "max_lookback_days"),
        ({"expires_on": "2000-01-01"}, "expires_on"),
        ({"signed_on": "2999-01-01"}, "signed_on"),
        ({"data_classes": [], "purposes": []}, "data_classes"),
        ({"contact": "c" * 301}, "contact"),
    ],
    ids=[
        "null-status",
        "null-lookback",
        "expires-before-the-stored-signing",
        "signed-after-the-stored-expiry",
        "empty-scope",
        "contact-longer-than-its-column",
    ],
)
async def test_d2_mou_change_with_a_bad_field_is_refused_and_the_mou_kept(
    gateway: Gateway, change: dict[str, Any], field: str
) -> None:
    admin = await gateway.user("adm.mou.fields", ["administrator"])
    client = await gateway.partner()
    stored = select(*MOU_COLUMNS).where(col(MouRecord.id) == client.mou_id)
    before = tuple((await gateway.session.execute(stored)).one())
    response = await gateway.client.patch(
        f"/v1/mous/{client.mou_id}", headers=gateway.token(admin), json=change
    )
    assert field in refused_fields(response)
    assert tuple((await gateway.session.execute(stored)).one()) == before


APPROVAL = {
    "resource": "reads",
    "action": "export",
    "reason": "export for the court in case 42",
    "not_before": "2026-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("DELETE", f"/v1/policy/rules/{2**63}", None, "rule_id"),
        ("DELETE", f"/v1/policy/rules/{2**31}", None, "rule_id"),
        (
            "POST",
            "/v1/policy/rules",
            {"ptype": "g", "v0": "u\x00", "v1": "officer", "v2": PLATFORM_AGENCY},
            "v0",
        ),
        ("POST", "/v1/purposes", {"code": "hit_and_run", "label": "Hit and run\x00"}, "label"),
        ("PATCH", f"/v1/agencies/{PARTNER_AGENCY}", {"name": None}, "name"),
        ("PATCH", f"/v1/agencies/{PARTNER_AGENCY}", {"contact": "c" * 301}, "contact"),
        (
            "POST",
            "/v1/approvals",
            {**APPROVAL, "not_after": "9999-12-31T23:59:59-14:00"},
            "not_after",
        ),
    ],
    ids=[
        "rule-id-past-bigint",
        "rule-id-past-integer",
        "nul-in-policy-row",
        "nul-in-purpose-label",
        "null-agency-name",
        "agency-contact-longer-than-its-column",
        "approval-past-year-9999-in-utc",
    ],
)
async def test_governance_write_with_a_bad_field_is_refused_naming_it_and_nothing_changes(
    gateway: Gateway, method: str, path: str, body: dict[str, Any] | None, field: str
) -> None:
    # Officers request approvals; administrators make every other write.
    role = "officer" if path == "/v1/approvals" else "administrator"
    caller = await gateway.user("governance.fields", [role])
    gateway.session.add(Agency(id=PARTNER_AGENCY, name="Nevada partner agency"))
    await gateway.session.flush()
    response = await gateway.client.request(method, path, headers=gateway.token(caller), json=body)
    assert field in refused_fields(response)
    created = [
        select(col(Agency.name)).where(col(Agency.id) == PARTNER_AGENCY),
        select(func.count()).where(col(PurposeRecord.code) == "hit_and_run"),
        select(func.count()).where(col(ApprovalRecord.user_id) == caller.id),
    ]
    assert [await gateway.session.scalar(query) for query in created] == [
        "Nevada partner agency",
        0,
        0,
    ]
