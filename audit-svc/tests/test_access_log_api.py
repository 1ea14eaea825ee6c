"""The access log over HTTP: internal appends, auditor queries, exports that verify offline."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_audit.app import create_app
from lpr_audit.chain import TamperKind, verify_bundle
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import ACCESS
from lpr_audit.settings import Settings
from lprctl.pytest_plugin import app_client

ServiceHeaders = Callable[[str, str], dict[str, str]]


def event(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "component": "gateway",
        "event_type": "access.decision",
        "outcome": "allowed",
        "subject_kind": "user",
        "subject_id": "officer-1",
        "agency": "CA0010000",
        "purpose": "stolen_vehicle",
        "resource": "reads",
        "action": "search",
    }
    values.update(overrides)
    return values


async def post_events(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, events: list[dict[str, Any]]
) -> dict[str, Any]:
    path = "/internal/v1/events"
    response = await client.post(
        path, json={"events": events}, headers=service_headers("POST", path)
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_internal_append_answers_the_seq_range(
    client: httpx.AsyncClient, service_headers: ServiceHeaders
) -> None:
    body = await post_events(client, service_headers, [event(), event(outcome="denied")])
    assert body["accepted"] == 2
    assert body["last_seq"] == body["first_seq"] + 1


async def test_internal_append_refuses_a_user_context(
    client: httpx.AsyncClient, context_headers: Callable[..., dict[str, str]]
) -> None:
    path = "/internal/v1/events"
    response = await client.post(
        path, json={"events": [event()]}, headers=context_headers("POST", path)
    )
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        # PostgreSQL cannot store U+0000: refused with the field before it is parsed.
        ({"reason": "bad\u0000byte"}, "events.1.reason"),
        # Its canonical JSON would not hold the number exactly: refused by index.
        ({"result_count": 2**53 + 1}, "events[1]"),
    ],
    ids=["nul", "inexact-integer"],
)
async def test_an_event_that_cannot_be_hashed_exactly_is_refused_by_index(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, bad: dict[str, Any], field: str
) -> None:
    path = "/internal/v1/events"
    response = await client.post(
        path, json={"events": [event(), event(**bad)]}, headers=service_headers("POST", path)
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize(
    "occurred_at",
    ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-05:00"],
    ids=["before-year-1-in-utc", "after-year-9999-in-utc"],
)
async def test_an_event_whose_time_cannot_be_stored_is_refused_naming_it(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, occurred_at: str
) -> None:
    path = "/internal/v1/events"
    response = await client.post(
        path,
        json={"events": [event(), event(occurred_at=occurred_at)]},
        headers=service_headers("POST", path),
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["events.1.occurred_at"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/audit/events", {"user": "officer\x00"}, "user"),
        ("/v1/audit/events", {"case_number": "PD\x00"}, "case_number"),
        ("/v1/audit/events", {"after_seq": 2**63}, "after_seq"),
        ("/v1/audit/events", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
        ("/v1/audit/events", {"to": "9999-12-31T23:59:59-14:00"}, "to"),
        ("/v1/audit/exports", {"to_seq": 2**63 - 1}, "to_seq"),
        ("/v1/audit/verification", {"from_seq": 2**63}, "from_seq"),
    ],
    ids=[
        "nul-user",
        "nul-case-number",
        "after-seq-over-bigint",
        "from-before-year-1-in-utc",
        "to-after-year-9999-in-utc",
        "export-to-seq-past-exact-json",
        "verify-from-seq-over-bigint",
    ],
)
async def test_auditor_queries_name_the_bad_parameter(
    client: httpx.AsyncClient,
    context_headers: Callable[..., dict[str, str]],
    path: str,
    params: dict[str, Any],
    field: str,
) -> None:
    response = await client.get(path, params=params, headers=context_headers("GET", path))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


async def test_auditor_queries_by_user_plate_and_outcome_with_pagination(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
) -> None:
    user = f"officer-{uuid.uuid4().hex[:8]}"
    await post_events(
        client,
        service_headers,
        [
            event(subject_id=user, plate="7ABC123", case_number="24-1"),
            event(subject_id=user, plate="7ABC123", outcome="denied"),
            event(subject_id=user, plate="8XYZ999"),
            event(subject_id=user, plate="7ABC123", case_number="24-2"),
        ],
    )
    path = "/v1/audit/events"
    first = await client.get(
        path,
        params={"user": user, "plate": "7abc 123", "limit": 2},
        headers=context_headers("GET", path),
    )
    assert first.status_code == 200, first.text
    page = first.json()
    assert [item["fields"]["plate"] for item in page["items"]] == ["7ABC123", "7ABC123"]
    assert first.headers["X-LPR-Result-Count"] == "2"
    second = await client.get(
        path,
        params={"user": user, "plate": "7ABC123", "after_seq": page["next_after_seq"]},
        headers=context_headers("GET", path),
    )
    assert [item["fields"]["case_number"] for item in second.json()["items"]] == ["24-2"]
    denied = await client.get(
        path, params={"user": user, "outcome": "denied"}, headers=context_headers("GET", path)
    )
    assert len(denied.json()["items"]) == 1


async def test_every_auditor_access_is_itself_audited(
    client: httpx.AsyncClient, context_headers: Callable[..., dict[str, str]]
) -> None:
    auditor = f"auditor-{uuid.uuid4().hex[:8]}"
    path = "/v1/audit/events"
    await client.get(
        path,
        params={"case_number": "24-404"},
        headers=context_headers("GET", path, subject_id=auditor),
    )
    answer = await client.get(
        path,
        params={"user": auditor, "event_type": "audit.access"},
        headers=context_headers("GET", path, subject_id=auditor),
    )
    items = answer.json()["items"]
    assert len(items) == 1
    assert items[0]["fields"]["query"]["case_number"] == "24-404"
    assert items[0]["fields"]["resource"] == "audit"


@pytest.mark.parametrize("roles", [("officer",), ("administrator",)])
async def test_only_auditors_read_the_access_log(
    client: httpx.AsyncClient, context_headers: Callable[..., dict[str, str]], roles: tuple[str]
) -> None:
    path = "/v1/audit/events"
    response = await client.get(path, headers=context_headers("GET", path, roles=roles))
    assert response.status_code == 403


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_export_bundle_verifies_offline_and_tampering_is_caught(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
    fmt: str,
) -> None:
    landed = await post_events(client, service_headers, [event(plate="5EXP" + fmt[:3].upper())] * 4)
    path = "/v1/audit/exports"
    response = await client.get(
        path,
        params={"format": fmt, "from_seq": landed["first_seq"], "to_seq": landed["last_seq"]},
        headers=context_headers("GET", path),
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    report = verify_bundle(response.content)
    assert report.ok, report.to_json()
    assert report.fully_attested
    assert (report.first_seq, report.last_seq) == (landed["first_seq"], landed["last_seq"])

    # Change one record inside the zip as someone handling the file might.
    tampered = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(response.content)) as original,
        zipfile.ZipFile(tampered, "w") as copy,
    ):
        for name in original.namelist():
            data = original.read(name)
            if name.startswith("records."):
                data = data.replace(b"allowed", b"denied!", 1)
            copy.writestr(name, data)
    broken = verify_bundle(tampered.getvalue())
    assert not broken.ok
    assert broken.first_break is not None
    assert broken.first_break.kind == TamperKind.ALTERED
    assert broken.first_break.seq == landed["first_seq"]


@pytest.mark.parametrize("bounds", ["from-to", "from-only"])
async def test_export_refuses_a_chain_truncated_below_a_signed_checkpoint(
    client: httpx.AsyncClient,
    session: AsyncSession,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
    checkpoint_key: Ed25519PrivateKey,
    bounds: str,
) -> None:
    """Records deleted from the end below a signed checkpoint are not exported away.

    The export must neither end quietly at the shortened tail nor sign a checkpoint there.
    """
    landed = await post_events(client, service_headers, [event(plate="7REV123")] * 4)
    first, last = landed["first_seq"], landed["last_seq"]
    signed = await repository.sign_stored(session, ACCESS, checkpoint_key, last)
    assert signed is not None
    # A superuser switches the append-only trigger off and removes the last two records.
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(
        text("DELETE FROM audit.access_events WHERE seq >= :seq"), {"seq": last - 1}
    )
    await session.execute(text("SET LOCAL session_replication_role = origin"))
    online = await repository.verify_stored(
        session, ACCESS, [checkpoint_key.public_key()], first=first
    )
    assert not online.report.ok

    path = "/v1/audit/exports"
    params = {"format": "jsonl", "from_seq": first, "to_seq": last}
    if bounds == "from-only":
        del params["to_seq"]
    response = await client.get(path, params=params, headers=context_headers("GET", path))
    assert response.status_code == 409, response.text
    assert f"records {last - 1}..{last} are missing" in response.json()["detail"]
    # Nothing was signed over the shortened chain.
    assert not await repository.checkpoints_between(session, ACCESS, last - 2, last - 2)


async def test_a_time_window_export_refuses_when_its_last_records_were_deleted(
    client: httpx.AsyncClient,
    session: AsyncSession,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
) -> None:
    """A window cannot see records deleted at its end; the link to the next record can."""
    window = await post_events(client, service_headers, [event(plate="7WIN123")] * 2)
    await asyncio.sleep(0.01)
    later = await post_events(client, service_headers, [event(plate="7WIN123")])
    records = await repository.records_between(
        session, ACCESS, window["first_seq"], later["first_seq"]
    )
    start, end = records[0].fields["recorded_at"], records[-1].fields["recorded_at"]
    assert start != end
    path = "/v1/audit/exports"
    params = {"from": str(start), "to": str(end)}
    intact = await client.get(path, params=params, headers=context_headers("GET", path))
    assert intact.status_code == 200, intact.text
    assert intact.headers["X-LPR-Result-Count"] == "2"

    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(
        text("DELETE FROM audit.access_events WHERE seq = :seq"), {"seq": window["last_seq"]}
    )
    response = await client.get(path, params=params, headers=context_headers("GET", path))
    assert response.status_code == 409, response.text
    assert f"record {window['last_seq']} is missing" in response.json()["detail"]


async def test_auditor_query_cannot_be_blinded_by_an_unhashed_copied_column(
    client: httpx.AsyncClient,
    session: AsyncSession,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
    checkpoint_key: Ed25519PrivateKey,
) -> None:
    """Blanking the queried ``plate`` copy hides a search from the plate query; verify says so."""
    plate = "7HID456"
    landed = await post_events(client, service_headers, [event(plate=plate)])
    seq = landed["first_seq"]
    await session.execute(text("SET LOCAL session_replication_role = replica"))
    await session.execute(
        text("UPDATE audit.access_events SET plate = NULL WHERE seq = :seq"), {"seq": seq}
    )
    await session.execute(text("SET LOCAL session_replication_role = origin"))

    path = "/v1/audit/events"
    response = await client.get(
        path, params={"plate": plate, "after_seq": seq - 1}, headers=context_headers("GET", path)
    )
    assert response.status_code == 200, response.text
    assert seq not in [item["seq"] for item in response.json()["items"]]

    stored = await repository.verify_stored(
        session, ACCESS, [checkpoint_key.public_key()], first=seq, last=seq
    )
    assert not stored.report.ok
    assert stored.report.first_break is not None
    assert (stored.report.first_break.seq, stored.report.first_break.kind) == (
        seq,
        TamperKind.ALTERED,
    )
    assert "the plate column" in stored.report.first_break.detail
    path = "/v1/audit/verification"
    online = await client.get(
        path, params={"from_seq": seq, "to_seq": seq}, headers=context_headers("GET", path)
    )
    body = online.json()
    assert body["ok"] is False, json.dumps(body)
    assert body["first_break"]["seq"] == seq
    assert "the plate column" in body["first_break"]["detail"]


async def test_on_demand_checkpoint_signs_the_tail(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
) -> None:
    landed = await post_events(client, service_headers, [event()])
    path = "/v1/audit/checkpoints"
    response = await client.post(
        path, json={"chain": "access"}, headers=context_headers("POST", path)
    )
    assert response.status_code == 201, response.text
    body = response.json()
    # The checkpoint's own audit.access event comes after it, so the tail is our event
    # or a later one; never an earlier one.
    assert body["seq"] >= landed["last_seq"]
    assert len(body["signature"]) == 128


async def test_online_verification_reports_the_chain_intact(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
) -> None:
    landed = await post_events(client, service_headers, [event(), event()])
    path = "/v1/audit/verification"
    response = await client.get(
        path,
        params={"from_seq": landed["first_seq"], "to_seq": landed["last_seq"]},
        headers=context_headers("GET", path),
    )
    body = response.json()
    assert body["ok"] is True, json.dumps(body)
    assert body["checked"] == 2


async def test_checkpoints_are_signed_after_enough_records(
    audit_settings: Settings, session: AsyncSession, service_headers: ServiceHeaders
) -> None:
    settings = audit_settings.model_copy(
        update={"audit_checkpoint_every_records": 3, "audit_checkpoint_interval_s": 30.0}
    )
    async with app_client(create_app(settings), session) as client:
        landed = await post_events(client, service_headers, [event()] * 3)
        for _ in range(100):
            latest = await repository.latest_checkpoint(session, ACCESS)
            if latest is not None and latest.seq >= landed["last_seq"]:
                break
            await asyncio.sleep(0.02)
    assert latest is not None
    assert latest.seq >= landed["last_seq"]
