"""Hits for a plate shared with a partner agency under an MOU (IACP D.2), over the API.

The gateway has already held the partner to its MOU (data class, purpose, lookback); the
service answers with the platform agency's hits since the stated time, in the partner's
shape, and tells the gateway whose data it sent so that a dissemination record is written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.testing import context_headers
from lpr_hotlist.alerts.models import Alert
from lpr_hotlist.settings import Settings
from lpr_hotlist.testing import Api, ncic_line

PARTNER = "NV0020000"
MOU_ID = str(uuid4())
WORKFLOW_FIELDS = {
    "status",
    "camera_id",
    "deployment_id",
    "unit_id",
    "entry",
    "acknowledged_by",
    "verification",
    "misread",
    "disposition_code",
    "disposition_note",
    "dispositioned_by",
    "explanation",
    "image_url",
}


async def hot_list(api: Api, app: FastAPI, session: AsyncSession, plates: list[str]) -> None:
    """A stolen-vehicle list holding ``plates``, and an index that knows it."""
    created = await api.admin(
        "POST",
        "/v1/hotlists",
        json={"name": f"NCIC {uuid4().hex[:6]}", "source": "NCIC", "category": "stolen vehicle"},
    )
    assert created.status_code == 201, created.text
    lines = "\n".join(ncic_line("V", plate) for plate in plates)
    imported = await api.admin(
        "POST",
        f"/v1/hotlists/{created.json()['id']}/imports",
        files={"file": ("ncic.txt", lines.encode(), "text/plain")},
        data={"format": "ncic"},
    )
    assert imported.status_code == 201, imported.text
    # Uncommitted writes send no NOTIFY: rebuild through the test's transaction.
    await app.state.live_index.rebuild(session)


async def raise_alert(api: Api, agency: str, plate: str, captured_at: datetime) -> str:
    """A read of ``plate`` by a camera of ``agency``; return the alert it raised."""
    read_id = str(uuid4())
    body: dict[str, Any] = {
        "read_id": read_id,
        "agency": agency,
        "camera_id": "cam-" + uuid4().hex[:8],
        "unit_id": "unit-3",
        "captured_at": captured_at.isoformat(),
        "latitude": 38.58,
        "longitude": -121.49,
        "image_available": True,
        "plates": [{"index": 0, "text": plate, "confidence": 0.92, "state": "CA"}],
    }
    response = await api.call(
        "POST",
        "/internal/v1/matches",
        service=True,
        json=body,
        headers={"Idempotency-Key": read_id},
    )
    assert response.status_code == 200, response.text
    [alert] = response.json()["alerts"]
    alert_id: str = alert["alert_id"]
    return alert_id


async def as_partner(client: httpx.AsyncClient, params: Any, **kwargs: Any) -> httpx.Response:
    """``GET /v1/hits`` with the context the gateway mints for a partner's client."""
    headers = context_headers(
        "GET",
        "/v1/hits",
        subject_kind="partner",
        subject_id="partner-client-1",
        agency=PARTNER,
        roles=["partner"],
        purpose="stolen_vehicle",
        mou_id=MOU_ID,
    )
    return await client.request("GET", "/v1/hits", params=params, headers=headers, **kwargs)


async def another_agencys_copy(session: AsyncSession, alert_id: str, agency: str) -> None:
    """An alert like ``alert_id`` raised on another agency's read (platforms may host several)."""
    alert = await session.get(Alert, UUID(alert_id))
    assert alert is not None
    copy = Alert.model_validate(
        {**alert.model_dump(), "id": uuid4(), "read_id": uuid4(), "agency": agency}
    )
    session.add(copy)
    await session.flush()


def ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


async def test_partner_gets_the_platform_agencys_hits_in_the_shared_shape(
    api: Api, client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    await hot_list(api, app, session, ["PRT123"])
    older = await raise_alert(api, settings.agency, "PRT123", ago(3))
    newer = await raise_alert(api, settings.agency, "PRT123", ago(1))
    await another_agencys_copy(session, newer, "OR0040000")

    response = await as_partner(client, {"plate": "prt 123", "since": ago(7).isoformat()})

    assert response.status_code == 200, response.text
    assert response.headers["X-LPR-Owner-Agency"] == settings.agency
    assert response.headers["X-LPR-Data-Class"] == "hits"
    assert response.headers["X-LPR-Result-Count"] == "2"
    assert response.headers["X-LPR-Record-Ids"].split(",") == [newer, older]
    assert response.headers["X-LPR-Marking"] == "FOUO"
    body = response.json()
    assert (body["marking"], body["owner_agency"], body["plate"], body["count"]) == (
        "FOUO",
        settings.agency,
        "PRT123",
        2,
    )
    assert [h["hit_id"] for h in body["hits"]] == [newer, older]
    hit = body["hits"][0]
    assert hit["plate"] == "PRT123"
    assert hit["state"] == "CA"
    assert hit["list_category"] == "stolen vehicle"
    assert hit["match"] == "exact"
    assert (hit["latitude"], hit["longitude"]) == (38.58, -121.49)
    assert not WORKFLOW_FIELDS & set(hit)


async def test_partner_hits_are_limited_to_the_stated_time_range(
    api: Api, client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    await hot_list(api, app, session, ["OLD456"])
    await raise_alert(api, settings.agency, "OLD456", ago(20))
    recent = await raise_alert(api, settings.agency, "OLD456", ago(2))

    within = await as_partner(client, {"plate": "OLD456", "since": ago(5).isoformat()})
    assert [h["hit_id"] for h in within.json()["hits"]] == [recent]
    assert within.headers["X-LPR-Record-Ids"] == recent
    wider = await as_partner(client, {"plate": "OLD456", "since": ago(30).isoformat()})
    assert wider.json()["count"] == 2


async def test_partner_must_state_a_since_the_gateway_can_check(
    client: httpx.AsyncClient,
) -> None:
    # Each of these would otherwise reach back further than the gateway's lookback check saw.
    for params in (
        {"plate": "PRT123"},
        {"plate": "PRT123", "since": ""},
        {"plate": "PRT123", "since": "0"},
        {"plate": "PRT123", "since": "2026-11-01T00:00:00"},
        [("plate", "PRT123"), ("since", ago(1).isoformat()), ("since", ago(900).isoformat())],
    ):
        response = await as_partner(client, params)
        assert response.status_code == 422, (params, response.text)
        assert [e["field"] for e in response.json()["errors"]] == ["since"]


async def test_partner_request_with_a_body_is_refused(
    api: Api, client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    # The gateway would check the lookback on the body's time range, not on ``since``.
    await hot_list(api, app, session, ["BDY654"])
    await raise_alert(api, settings.agency, "BDY654", ago(20))
    response = await as_partner(
        client,
        {"plate": "BDY654", "since": ago(30).isoformat()},
        json={"time_range": {"start": ago(1).isoformat()}},
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


async def test_misreads_are_not_shared_but_officers_still_see_them(
    api: Api, client: httpx.AsyncClient, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    await hot_list(api, app, session, ["MSR789"])
    misread = await raise_alert(api, settings.agency, "MSR789", ago(1))
    kept = await raise_alert(api, settings.agency, "MSR789", ago(1))
    assert (await api.call("POST", f"/v1/alerts/{misread}/acknowledge")).status_code == 200
    flagged = await api.call(
        "POST", f"/v1/alerts/{misread}/misread", json={"note": "it read MSR780"}
    )
    assert flagged.status_code == 200, flagged.text

    shared = await as_partner(client, {"plate": "MSR789", "since": ago(2).isoformat()})
    assert [h["hit_id"] for h in shared.json()["hits"]] == [kept]
    officer = await api.call("GET", "/v1/hits", params={"plate": "MSR789"}, agency=settings.agency)
    assert {a["id"] for a in officer.json()} == {misread, kept}


async def test_officers_keep_their_own_agencys_alerts_in_the_full_shape(
    api: Api, app: FastAPI, session: AsyncSession, settings: Settings
) -> None:
    await hot_list(api, app, session, ["OFF321"])
    ours = await raise_alert(api, settings.agency, "OFF321", ago(10))

    officer = await api.call("GET", "/v1/hits", params={"plate": "OFF321"}, agency=settings.agency)
    assert [a["id"] for a in officer.json()] == [ours]
    assert officer.json()[0]["status"] == "new"
    assert officer.headers["X-LPR-Owner-Agency"] == settings.agency
    # An officer of another agency (not a partner) sees only their own agency's alerts.
    other = await api.call("GET", "/v1/hits", params={"plate": "OFF321"}, agency=PARTNER)
    assert other.json() == []
    assert other.headers["X-LPR-Owner-Agency"] == PARTNER
