"""The partner (MOU) API through the real gateway: every MOU rule, FOUO, dissemination, 429.

Test ids name the IACP clause. The services behind the gateway are the contract stand-ins
of conftest.py (answering with the documented headers), plus a hot-list stand-in for
``GET /v1/hits`` here; the whole-stack test tests/test_search_stack.py runs the real ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from gateway.tests.conftest import (
    PARTNER_AGENCY,
    PLATFORM_AGENCY,
    AuditSpy,
    Gateway,
    gateway_settings,
    open_gateway,
    problem,
    upstream_app,
)
from lpr_common.context import ContextDep
from lpr_common.errors import RateLimited, install_problem_handlers
from lpr_common.service import context_keys
from lpr_gateway.app import create_app
from lpr_gateway.governance.models import MouRecord
from lprctl.pytest_plugin import app_client

CASE = "PD-2026-000123"
PURPOSE = {"X-LPR-Purpose": "stolen_vehicle"}
# Partners must bound a hits request in time; the MOU lookback is checked against it.
RECENT = (datetime.now(UTC) - timedelta(days=7)).isoformat()


def search_body(days: float, purpose: str = "stolen_vehicle", **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "purpose": purpose,
        "case_number": CASE,
        "plate": "ABC123",
        "time_range": {"start": (now - timedelta(days=days)).isoformat(), "end": now.isoformat()},
        **extra,
    }


async def test_d2_partner_gets_a_token_with_client_credentials_and_searches(
    gateway: Gateway,
) -> None:
    client = await gateway.partner()
    token = await gateway.client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": "partner-secret-value",
        },
    )
    assert token.status_code == 200, token.text
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    response = await gateway.client.post(
        "/v1/reads/search", headers=headers, json=search_body(days=7)
    )
    assert response.status_code == 201, response.text  # the stand-in answers POST with 201
    context = response.json()["context"]
    assert (context["subject_kind"], context["agency"]) == ("partner", PARTNER_AGENCY)
    assert (context["purpose"], context["case_number"]) == ("stolen_vehicle", CASE)
    assert context["mou_id"] == str(client.mou_id)


async def test_d2_context_states_the_mou_lookback_for_reads_by_id(gateway: Gateway) -> None:
    # A read by id states no time range for the policy to check: the owner holds another
    # agency to its MOU's lookback by the context's not_before (no earlier capture time).
    client = await gateway.partner(lookback=30)
    outsider = await gateway.user("nv.by.id", ["officer"], agency=PARTNER_AGENCY)
    officer = await gateway.user("ofc.by.id", ["officer"])
    read = "/v1/reads/3f7c1a52-0000-4000-8000-000000000002"

    async def stated(headers: dict[str, str]) -> datetime | None:
        response = await gateway.client.get(read, headers={**headers, **PURPOSE})
        assert response.status_code == 200, response.text
        value = response.json()["context"]["not_before"]
        return datetime.fromisoformat(value) if value is not None else None

    before = datetime.now(UTC)
    under_mou = [await stated(gateway.partner_token(client)), await stated(gateway.token(outsider))]
    after = datetime.now(UTC)
    for not_before in under_mou:
        assert not_before is not None
        assert before - timedelta(days=30) <= not_before <= after - timedelta(days=30)
    # The platform's own officer is held to no MOU.
    assert await stated(gateway.token(officer)) is None


async def test_d1_partner_search_writes_a_dissemination_record_with_counts_and_ids(
    gateway: Gateway,
) -> None:
    client = await gateway.partner()
    response = await gateway.client.post(
        "/v1/reads/search", headers=gateway.partner_token(client), json=search_body(days=7)
    )
    assert response.status_code == 201, response.text
    [record] = gateway.audit.disseminations
    assert record["recipient_agency"] == PARTNER_AGENCY
    assert record["released_by_agency"] == PLATFORM_AGENCY
    assert record["mou_id"] == str(client.mou_id)
    assert (record["purpose"], record["case_number"]) == ("stolen_vehicle", CASE)
    assert record["data_class"] == "reads"
    assert record["record_count"] == 2
    assert record["record_ids"] == ["r-1", "r-2"]
    assert record["query"]["plate"] == "ABC123"
    event = gateway.audit.last()
    assert (event["outcome"], event["action"]) == ("allowed", "search")
    assert event["mou_id"] == str(client.mou_id)
    # Data that left the agency: its result is durable before the answer was released
    # (no waiting for the after-release log here).
    [result] = gateway.audit.of("access.result")
    assert result["details"]["decision_event_id"] == event["event_id"]
    assert (result["result_count"], result["mou_id"]) == (2, str(client.mou_id))


async def test_d1_officer_search_of_own_agency_is_not_disseminated(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.search.own", ["officer"])
    response = await gateway.client.post(
        "/v1/reads/search", headers=gateway.token(officer), json=search_body(days=7)
    )
    assert response.status_code == 201, response.text
    assert gateway.audit.disseminations == []


@pytest.mark.parametrize(
    ("days", "status", "rule"),
    [(89, 201, None), (91, 403, "lookback-exceeds-limit")],
    ids=["C.8-within-90-days", "C.8-beyond-90-days"],
)
async def test_c8_officer_lookback_is_computed_from_the_time_range(
    gateway: Gateway, days: int, status: int, rule: str | None
) -> None:
    officer = await gateway.user(f"ofc.lookback.{days}", ["officer"])
    response = await gateway.client.post(
        "/v1/reads/search", headers=gateway.token(officer), json=search_body(days=days)
    )
    assert response.status_code == status, response.text
    if rule is not None:
        assert problem(response)["rule"] == rule


async def _expire(session: AsyncSession, mou_id: Any) -> None:
    mou = await session.get(MouRecord, mou_id)
    assert mou is not None
    mou.expires_on = datetime.now(UTC).date() - timedelta(days=1)
    await session.flush()


MOU_REFUSALS = [
    ("D.2-other-purpose", {}, "search", {"purpose": "wanted_person"}, "mou-purpose"),
    ("D.2-longer-lookback", {"lookback": 30}, "search", {"days": 31}, "mou-lookback"),
    ("D.2-vague-purpose", {}, "search", {"purpose": "law enforcement"}, "vague-purpose"),
    ("C.8-no-case-number", {}, "search", {"case_number": None}, "case-number-required"),
    ("C.8-malformed-case-number", {}, "search", {"case_number": "my case"}, "case-number-format"),
    ("D.2-images-excluded", {}, "image", {}, "mou-data-class"),
    ("D.2-crop-excluded", {}, "crop", {}, "mou-data-class"),
    ("D.2-hits-excluded", {"data_classes": ("reads",)}, "hits", {}, "mou-data-class"),
    ("D.2-reads-excluded", {"data_classes": ("hits",)}, "search", {}, "mou-data-class"),
    ("D.2-expired", {"expire": True}, "search", {}, "mou-expired"),
    ("D.2-suspended", {"status": "suspended"}, "search", {}, "mou-not-in-force"),
    ("D.2-terminated", {"status": "terminated"}, "hits", {}, "mou-not-in-force"),
]


@pytest.mark.parametrize(
    ("mou", "operation", "change", "rule"),
    [row[1:] for row in MOU_REFUSALS],
    ids=[row[0] for row in MOU_REFUSALS],
)
async def test_d2_requests_outside_the_mou_are_refused_naming_the_rule(
    gateway: Gateway,
    mou: dict[str, Any],
    operation: str,
    change: dict[str, Any],
    rule: str,
) -> None:
    options = dict(mou)
    expire = options.pop("expire", False)
    client = await gateway.partner(**options)
    if expire:
        await _expire(gateway.session, client.mou_id)
    headers = gateway.partner_token(client)
    read = "/v1/reads/3f7c1a52-0000-4000-8000-000000000002"
    if operation == "search":
        body = search_body(days=change.pop("days", 7))
        body.update(change)
        body = {k: v for k, v in body.items() if v is not None}
        response = await gateway.client.post("/v1/reads/search", headers=headers, json=body)
    elif operation == "image":
        response = await gateway.client.get(f"{read}/image", headers={**headers, **PURPOSE})
    elif operation == "crop":
        response = await gateway.client.get(f"{read}/plates/0/crop", headers={**headers, **PURPOSE})
    else:
        response = await gateway.client.get(
            "/v1/hits", params={"plate": "ABC123", "since": RECENT}, headers={**headers, **PURPOSE}
        )
    assert response.status_code == 403, response.text
    refused = problem(response)
    assert refused["rule"] == rule
    assert refused["clause"] in {"D.2", "A.1-2", "C.8"}
    assert gateway.audit.disseminations == []
    event = gateway.audit.last()
    assert (event["outcome"], event["rule"]) == ("denied", rule)
    assert event["mou_id"] == str(client.mou_id)
    assert response.headers["X-LPR-Audit-Event"] == event["event_id"]


def _hits_app() -> FastAPI:
    """hotlist-svc's ``GET /v1/hits`` answer headers (docs/internal-api.md)."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/v1/hits")
    async def hits(context: ContextDep, plate: str) -> JSONResponse:
        return JSONResponse(
            [{"id": "a-1", "plate": plate, "caller": context.agency}],
            headers={
                "X-LPR-Result-Count": "1",
                "X-LPR-Data-Class": "hits",
                "X-LPR-Record-Ids": "a-1",
                "X-LPR-Owner-Agency": PLATFORM_AGENCY,
            },
        )

    return app


@pytest.fixture
async def marked_gateway(
    service_env: dict[str, str], session: AsyncSession, audit_spy: AuditSpy
) -> AsyncIterator[Gateway]:
    """The gateway with a hits-answering hot-list service and a tight partner rate limit."""
    settings = gateway_settings(
        gateway_partner_rate_per_minute=6.0,
        gateway_partner_burst=4,
        gateway_partner_rate_limits={"TX0030000": "60/1"},
    )
    app = create_app(settings)
    verifier = context_keys(settings, "recognition")[1]
    transports: dict[str, httpx.AsyncBaseTransport] = {"audit-log": audit_spy}
    for name, upstream in (
        ("recognition", upstream_app("recognition")),
        ("hotlist", _hits_app()),
        ("audit", upstream_app("audit")),
    ):
        upstream.state.context_verifier = verifier
        transports[name] = httpx.ASGITransport(app=upstream)
    app.state.upstream_transports = transports
    async with app_client(app, session) as client:
        yield Gateway(app, client, session, audit_spy, settings)


async def test_d_every_search_read_hit_and_image_answer_is_marked_fouo(
    marked_gateway: Gateway,
) -> None:
    gateway = marked_gateway
    client = await gateway.partner(data_classes=("reads", "hits", "images"))
    headers = gateway.partner_token(client)
    read = "/v1/reads/3f7c1a52-0000-4000-8000-000000000002"
    answers = {
        "search": await gateway.client.post(
            "/v1/reads/search", headers=headers, json=search_body(days=7)
        ),
        "read": await gateway.client.get(read, headers={**headers, **PURPOSE}),
        "image": await gateway.client.get(f"{read}/image", headers={**headers, **PURPOSE}),
        "hits": await gateway.client.get(
            "/v1/hits", params={"plate": "ABC123", "since": RECENT}, headers={**headers, **PURPOSE}
        ),
    }
    for name, response in answers.items():
        assert response.status_code < 300, (name, response.text)
        assert response.headers["X-LPR-Marking"] == "FOUO", name
    assert [r["data_class"] for r in gateway.audit.disseminations] == [
        "reads",
        "reads",
        "images",
        "hits",
    ]


async def test_d_answers_without_lpr_data_carry_no_marking(marked_gateway: Gateway) -> None:
    admin = await marked_gateway.user("adm.marking", ["administrator"])
    response = await marked_gateway.client.get("/v1/mous", headers=marked_gateway.token(admin))
    assert response.status_code == 200
    assert "X-LPR-Marking" not in response.headers


async def test_d2_partner_over_its_rate_limit_gets_429_with_retry_after(
    marked_gateway: Gateway,
) -> None:
    gateway = marked_gateway
    client = await gateway.partner()
    other = await gateway.partner()
    headers = {**gateway.partner_token(client), **PURPOSE}
    read = "/v1/reads/3f7c1a52-0000-4000-8000-000000000002"
    statuses = [(await gateway.client.get(read, headers=headers)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 200]
    refused = await gateway.client.get(read, headers=headers)
    assert refused.status_code == 429
    body = problem(refused)
    assert body["rule"] == "partner-rate-limit"
    # 6 a minute: the next token is 10 s away.
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    event = gateway.audit.last()
    assert (event["outcome"], event["rule"]) == ("denied", "partner-rate-limit")
    assert event["subject_id"] == client.client_id
    assert len(gateway.audit.disseminations) == 4
    # Each partner has its own bucket.
    other_answer = await gateway.client.get(
        read, headers={**gateway.partner_token(other), **PURPOSE}
    )
    assert other_answer.status_code == 200


async def test_officers_are_not_rate_limited_as_partners(marked_gateway: Gateway) -> None:
    officer = await marked_gateway.user("ofc.no.limit", ["officer"])
    read = "/v1/reads/3f7c1a52-0000-4000-8000-000000000002"
    headers = {**marked_gateway.token(officer), **PURPOSE}
    statuses = {
        (await marked_gateway.client.get(read, headers=headers)).status_code for _ in range(6)
    }
    assert statuses == {200}


async def test_partner_limits_by_agency_override_the_default(engine: AsyncEngine) -> None:
    from lpr_gateway.access.rate_limit import Limit, PartnerRateLimiter, parse_overrides

    limiter = PartnerRateLimiter(Limit(60, 2), parse_overrides({"TX0030000": "60/1"}))
    tx, nv = f"tx-client-{uuid4()}", f"nv-client-{uuid4()}"
    await limiter.check(engine, tx, "TX0030000")
    with pytest.raises(RateLimited, match="rate limit") as refused:
        await limiter.check(engine, tx, "TX0030000")
    assert refused.value.headers == {"Retry-After": "1"}
    await limiter.check(engine, nv, "NV0020000")
    await limiter.check(engine, nv, "NV0020000")
    await asyncio.sleep(1.05)  # one token a second: the next one is back
    await limiter.check(engine, tx, "TX0030000")


async def test_the_limit_holds_across_gateway_replicas(engine: AsyncEngine) -> None:
    from lpr_gateway.access.rate_limit import Limit, PartnerRateLimiter

    # Two replicas, each with its own limiter object, share the partner's one bucket.
    replicas = [PartnerRateLimiter(Limit(6, 3)) for _ in range(2)]
    client = f"shared-client-{uuid4()}"
    outcomes = []
    for turn in range(6):
        try:
            await replicas[turn % 2].check(engine, client, "NV0020000")
            outcomes.append("ok")
        except RateLimited:
            outcomes.append("429")
    assert outcomes == ["ok", "ok", "ok", "429", "429", "429"]


async def test_openapi_has_a_partner_tag_with_examples(gateway: Gateway) -> None:
    document = (await gateway.client.get("/openapi.json")).json()
    tags = {tag["name"]: tag for tag in document["tags"]}
    assert "client_credentials" in tags["partners"]["description"]
    tagged = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if "partners" in operation.get("tags", [])
    }
    assert tagged == {
        ("POST", "/v1/reads/search"),
        ("GET", "/v1/reads/{read_id}"),
        ("GET", "/v1/reads/{read_id}/image"),
        ("GET", "/v1/reads/{read_id}/plates/{index}/crop"),
        ("GET", "/v1/hits"),
    }
    search = document["paths"]["/v1/reads/search"]["post"]
    examples = search["requestBody"]["content"]["application/json"]["examples"]
    assert {e["value"]["match"] for e in examples.values()} == {
        "exact",
        "pattern",
        "ocr_equivalent",
    }
    assert "429" in search["responses"]
    assert "X-LPR-Marking" in search["responses"]["200"]["headers"]


async def test_d2_a_search_body_is_read_as_the_service_reads_it(gateway: Gateway) -> None:
    # The gateway once read the body only when the content type held "json" in lower case;
    # recognition-svc reads "application/JSON" as JSON all the same, and the policy then
    # decided on a ``since`` query parameter the service ignores: 300 days under 30.
    client = await gateway.partner(lookback=30)
    now = datetime.now(UTC)
    body = {
        "purpose": "stolen_vehicle",
        "case_number": CASE,
        "plate": "ABC123",
        "time_range": {"start": (now - timedelta(days=300)).isoformat(), "end": now.isoformat()},
    }
    headers = {
        **gateway.partner_token(client),
        "X-LPR-Purpose": "stolen_vehicle",
        "X-LPR-Case-Number": CASE,
    }
    since = {"since": (now - timedelta(days=7)).isoformat()}
    upper = await gateway.client.post(
        "/v1/reads/search",
        params=since,
        headers={**headers, "Content-Type": "application/JSON"},
        content=json.dumps(body).encode(),
    )
    assert upper.status_code == 403, upper.text
    assert problem(upper)["rule"] == "mou-lookback"
    # A body the gateway cannot read as a JSON object is refused, never decided on headers.
    unreadable = await gateway.client.post(
        "/v1/reads/search",
        params=since,
        headers={**headers, "Content-Type": "application/json"},
        content=b"[1, 2]",
    )
    assert unreadable.status_code == 422
    assert problem(unreadable)["errors"][0]["field"] == "body"
    assert gateway.audit.last()["rule"] == "unreadable-body"


@pytest.fixture
async def agency_limited_gateway(
    service_env: dict[str, str], session: AsyncSession, audit_spy: AuditSpy
) -> AsyncIterator[Gateway]:
    """A gateway limiting the partner agency to bursts of 2."""
    settings = gateway_settings(gateway_partner_rate_limits={PARTNER_AGENCY: "6/2"})
    async for opened in open_gateway(settings, session, audit_spy):
        yield opened


async def test_d2_a_user_of_the_partner_agency_is_held_to_its_rate_limit(
    agency_limited_gateway: Gateway,
) -> None:
    gateway = agency_limited_gateway
    await gateway.partner()  # the MOU with the partner agency
    # A user account of the partner agency is served under the same MOU, as a partner.
    outsider = await gateway.user("nv.analyst", ["officer"], agency=PARTNER_AGENCY)
    since = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    headers = {**gateway.token(outsider), "X-LPR-Purpose": "stolen_vehicle"}
    statuses = [
        (
            await gateway.client.get(
                "/v1/hits", params={"plate": "ABC123", "since": since}, headers=headers
            )
        ).status_code
        for _ in range(5)
    ]
    assert statuses[0] == 200, statuses
    assert 429 in statuses, statuses


async def test_d2_a_captured_context_cannot_be_replayed_for_another_query(
    gateway: Gateway,
) -> None:
    # Bound to method and path only, a context minted for plate A over 7 days was good
    # for 120 s for any plate and any time range on the same path.
    client = await gateway.partner(lookback=30)
    recent = (datetime.now(UTC) - timedelta(days=7)).isoformat()
    allowed = await gateway.client.get(
        "/v1/hits",
        params={"plate": "AAA111", "since": recent},
        headers={**gateway.partner_token(client), "X-LPR-Purpose": "stolen_vehicle"},
    )
    assert allowed.status_code == 200, allowed.text
    minted = allowed.json()["received_headers"]["x-lpr-context"]
    transport = gateway.app.state.upstream_transports["hotlist"]
    async with httpx.AsyncClient(transport=transport, base_url="http://hotlist") as service:
        replayed = await service.get(
            "/v1/hits",
            params={"plate": "BBB222", "since": "2024-01-01T00:00:00+00:00"},
            headers={"X-LPR-Context": minted},
        )
        again = await service.get(
            "/v1/hits",
            params={"plate": "AAA111", "since": recent},
            headers={"X-LPR-Context": minted},
        )
    assert replayed.status_code == 401
    # The query it was minted for still verifies: the binding is exact, not a refusal.
    assert again.status_code == 200
