"""Misuse rules, the transparency report, retention settings and receipts, dissemination."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lpr_audit.chain import verify_bundle
from lpr_audit.retention.service import deleted_ids_digest

ServiceHeaders = Callable[[str, str], dict[str, str]]
ContextHeaders = Callable[..., dict[str, str]]


def quiet_day() -> datetime:
    """Midnight of a day no other test writes events for (a random day in 1000-2000)."""
    return datetime(1000, 1, 1, tzinfo=UTC) + timedelta(days=uuid.uuid4().int % 360_000)


def decision(user: str, at: datetime, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "occurred_at": at.isoformat(),
        "component": "gateway",
        "event_type": "access.decision",
        "outcome": "allowed",
        "subject_kind": "user",
        "subject_id": user,
        "agency": "CA0010000",
        "purpose": "investigation",
        "resource": "reads",
        "action": "search",
    }
    values.update(overrides)
    return values


async def post(
    client: httpx.AsyncClient, headers: ServiceHeaders, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=headers("POST", path))
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_misuse_report_flags_each_rule_and_states_it(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, context_headers: ContextHeaders
) -> None:
    day = quiet_day()
    noon = day + timedelta(hours=12)
    careful, no_case, plate_hopper, night_owl, denied = (
        f"{name}-{uuid.uuid4().hex[:6]}"
        for name in ("careful", "nocase", "hopper", "owl", "denied")
    )
    events = [decision(careful, noon, case_number=f"C-{i}") for i in range(6)]
    events += [decision(no_case, noon + timedelta(minutes=i)) for i in range(8)]
    events += [
        decision(plate_hopper, noon, plate="6HOP123", case_number=case)
        for case in ("A-1", "B-2", "C-3")
    ]
    events += [
        decision(night_owl, day + timedelta(hours=2, minutes=i), case_number="N-1")
        for i in range(5)
    ]
    events += [
        decision(denied, noon, action="read", outcome="denied" if i < 4 else "allowed")
        for i in range(6)
    ]
    await post(client, service_headers, "/internal/v1/events", {"events": events})

    path = "/v1/audit/misuse"
    response = await client.get(
        path,
        params={"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()},
        headers=context_headers("GET", path),
    )
    assert response.status_code == 200, response.text
    report = response.json()
    flagged = {(flag["subject_id"], flag["rule"]) for flag in report["flags"]}
    assert flagged == {
        (no_case, "searches-without-case-number"),
        (plate_hopper, "same-plate-across-cases"),
        (night_owl, "searches-outside-shift-hours"),
        (denied, "high-share-of-denied-requests"),
    }
    assert all(flag["statement"] for flag in report["flags"])
    assert {rule["rule"] for rule in report["rules"]} == {rule for _, rule in flagged}


async def test_transparency_report_counts_without_plates(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, context_headers: ContextHeaders
) -> None:
    day = quiet_day()
    at = (day + timedelta(hours=10)).isoformat()

    def fact(event_type: str, **extra: Any) -> dict[str, Any]:
        return {
            "occurred_at": at,
            "component": "recognition",
            "event_type": event_type,
            "outcome": "success",
            **extra,
        }

    events = [fact("read.ingested", plate="7SECRET1") for _ in range(3)]
    events.append(fact("read.ingested", result_count=10))
    events += [fact("alert.created", details={"category": "stolen_vehicle"})] * 2
    events.append(fact("alert.created", details={"list_category": "amber_alert"}))
    events.append(fact("alert.disposition", details={"disposition": "confirmed"}))
    # hotlist-svc's shape: a transition to "dispositioned" with the disposition code.
    events.append(
        fact(
            "alert.transition",
            details={"from": "status_checked", "to": "dispositioned", "code": "confirmed"},
        )
    )
    events.append(fact("alert.transition", details={"from": "new", "to": "acknowledged"}))
    events.append(decision("officer-9", day + timedelta(hours=10), purpose="amber_alert"))
    events.append(
        decision("officer-9", day + timedelta(hours=10), purpose="amber_alert", outcome="denied")
    )
    await post(client, service_headers, "/internal/v1/events", {"events": events})
    await post(
        client,
        service_headers,
        "/internal/v1/retention-receipts",
        {
            "receipts": [
                {
                    "retention_class": "non_hit_reads",
                    "range_start": day.isoformat(),
                    "range_end": (day + timedelta(hours=1)).isoformat(),
                    "deleted_count": 40,
                    "preserved_count": 2,
                    "deleted_ids_sha256": "ab" * 32,
                    "purged_at": at,
                }
            ]
        },
    )
    await post(
        client,
        service_headers,
        "/internal/v1/disseminations",
        {
            "records": [
                {
                    "occurred_at": at,
                    "recipient_agency": "NV0020000",
                    "mou_id": "mou-1",
                    "purpose": "stolen_vehicle",
                    "data_class": "reads",
                    "record_ids": ["r1", "r2"],
                    "record_count": 2,
                    "released_by": "officer-9",
                    "released_by_agency": "CA0010000",
                }
            ]
        },
    )
    path = "/v1/reports/transparency"
    window = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
    response = await client.get(
        path, params=window, headers=context_headers("GET", path, roles=("records",))
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["reads"] == 13
    assert {c["key"]: c["count"] for c in report["hits_by_list_category"]} == {
        "amber_alert": 1,
        "stolen_vehicle": 2,
    }
    assert report["alerts_by_disposition"] == [{"key": "confirmed", "count": 2}]
    assert report["searches_by_purpose"] == [{"key": "amber_alert", "count": 1}]
    assert report["sharing_by_recipient_agency"] == [
        {"recipient_agency": "NV0020000", "disseminations": 1, "records": 2}
    ]
    assert report["deletions_by_retention_class"] == [
        {"retention_class": "non_hit_reads", "purges": 1, "deleted": 40, "preserved": 2}
    ]
    assert "7SECRET1" not in response.text

    html = await client.get(
        path,
        params={**window, "format": "html"},
        headers=context_headers("GET", path, roles=("auditor",)),
    )
    assert html.headers["content-type"].startswith("text/html")
    assert html.text.count("<svg") >= 5
    assert "stolen_vehicle" in html.text
    assert "7SECRET1" not in html.text


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/audit/misuse", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
        ("/v1/reports/transparency", {"from": "0001-01-01T00:00:00+14:00"}, "from"),
        ("/v1/reports/transparency", {"to": "9999-12-31T23:59:59-14:00"}, "to"),
        ("/v1/dissemination", {"recipient_agency": "NV\x00"}, "recipient_agency"),
        ("/v1/dissemination", {"after_seq": 2**63}, "after_seq"),
    ],
    ids=[
        "misuse-from-before-year-1",
        "report-from-before-year-1",
        "report-to-after-year-9999",
        "nul-recipient",
        "dissemination-after-seq-over-bigint",
    ],
)
async def test_report_and_log_queries_name_the_bad_parameter(
    client: httpx.AsyncClient,
    context_headers: ContextHeaders,
    path: str,
    params: dict[str, Any],
    field: str,
) -> None:
    headers = context_headers("GET", path, roles=("auditor", "administrator"))
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("path", ["/v1/audit/misuse", "/v1/reports/transparency"])
@pytest.mark.parametrize(
    ("params", "period"),
    [
        # Without an offset a time is UTC, also beside one that has an offset.
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00"},
            ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
        ),
        # The default period stops at the earliest time the log can hold.
        ({"to": "0001-01-03T00:00:00Z"}, ("0001-01-02T00:00:00Z", "0001-01-03T00:00:00Z")),
    ],
    ids=["naive-to-is-utc", "default-period-near-year-1"],
)
async def test_report_periods_at_the_edges(
    client: httpx.AsyncClient,
    context_headers: ContextHeaders,
    path: str,
    params: dict[str, str],
    period: tuple[str, str],
) -> None:
    headers = context_headers("GET", path, roles=("auditor",))
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    assert (response.json()["period_start"], response.json()["period_end"]) == period


async def test_retention_settings_defaults_change_and_refusal(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    context_headers: ContextHeaders,
) -> None:
    path = "/v1/retention/settings"
    internal = "/internal/v1/retention-settings"
    defaults = await client.get(internal, headers=service_headers("GET", internal))
    by_class = {s["retention_class"]: s for s in defaults.json()["settings"]}
    assert by_class["non_hit_reads"]["period_minutes"] == 30 * 24 * 60
    assert by_class["audit_records"]["period_minutes"] >= 365 * 24 * 60
    assert by_class["preserved_reads"]["period_minutes"] is None

    officer = await client.put(
        path,
        json={"periods": {"non_hit_reads": 5}, "reason": "state law change"},
        headers=context_headers("PUT", path, roles=("auditor",)),
    )
    assert officer.status_code == 403

    refused = await client.put(
        path,
        json={"periods": {"non_hit_reads": 5, "audit_records": 60}, "reason": "too short"},
        headers=context_headers("PUT", path, roles=("administrator",)),
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "periods.audit_records"
    unchanged = await client.get(
        path, headers=context_headers("GET", path, roles=("administrator",))
    )
    by_class = {s["retention_class"]: s for s in unchanged.json()["settings"]}
    assert by_class["non_hit_reads"]["period_minutes"] == 30 * 24 * 60

    admin = f"admin-{uuid.uuid4().hex[:6]}"
    changed = await client.put(
        path,
        json={"periods": {"non_hit_reads": 3}, "reason": "NH RSA 236:130 three minutes"},
        headers=context_headers("PUT", path, roles=("administrator",), subject_id=admin),
    )
    assert changed.status_code == 200, changed.text
    by_class = {s["retention_class"]: s for s in changed.json()["settings"]}
    assert by_class["non_hit_reads"]["period_minutes"] == 3
    assert by_class["non_hit_reads"]["changed_by"] == admin
    events = "/v1/audit/events"
    audited = await client.get(
        events,
        params={"user": admin, "event_type": "retention.settings_changed"},
        headers=context_headers("GET", events),
    )
    assert audited.json()["items"][0]["fields"]["details"]["periods"] == {"non_hit_reads": 3}


@pytest.mark.parametrize(
    "minutes",
    [36_525 * 24 * 60 + 1, 10**12, 2**62, 2**63],
    ids=["100-years-and-a-minute", "1.9-million-years", "2^62", "over-bigint"],
)
async def test_retention_period_past_a_century_is_refused_naming_the_class(
    client: httpx.AsyncClient, context_headers: ContextHeaders, minutes: int
) -> None:
    # ``now - timedelta(minutes=10**12)`` would stop recognition's every purge.
    path = "/v1/retention/settings"
    headers = context_headers("PUT", path, roles=("administrator",))
    response = await client.put(
        path,
        json={"periods": {"non_hit_reads": minutes}, "reason": "review of limits"},
        headers=headers,
    )
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == ["periods.non_hit_reads"]
    unchanged = await client.get(path, headers=context_headers("GET", path, roles=("auditor",)))
    by_class = {s["retention_class"]: s for s in unchanged.json()["settings"]}
    assert by_class["non_hit_reads"]["period_minutes"] == 30 * 24 * 60


async def test_retention_receipt_lands_in_the_chain_with_its_hash(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, context_headers: ContextHeaders
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    digest = deleted_ids_digest(ids)
    assert digest == hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    path = "/internal/v1/retention-receipts"
    receipt = {
        "retention_class": "images",
        "range_start": "2026-11-01T00:00:00Z",
        "range_end": "2026-11-02T00:00:00Z",
        "deleted_count": 3,
        "preserved_count": 1,
        "deleted_ids_sha256": digest,
    }
    landed = await post(client, service_headers, path, {"receipts": [receipt]})
    bad = await client.post(
        path,
        json={"receipts": [{**receipt, "deleted_ids_sha256": "not-a-hash"}]},
        headers=service_headers("POST", path),
    )
    assert bad.status_code == 422
    export = "/v1/audit/exports"
    bundle = await client.get(
        export,
        params={"from_seq": landed["first_seq"], "to_seq": landed["last_seq"]},
        headers=context_headers("GET", export),
    )
    assert verify_bundle(bundle.content).ok
    events = "/v1/audit/events"
    found = await client.get(
        events,
        params={"event_type": "retention.purge", "after_seq": landed["first_seq"] - 1, "limit": 1},
        headers=context_headers("GET", events),
    )
    details = found.json()["items"][0]["fields"]["details"]
    assert details["deleted_ids_sha256"] == digest
    assert (details["deleted_count"], details["preserved_count"]) == (3, 1)


async def test_a_retention_receipt_resent_with_its_id_is_recorded_once(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, context_headers: ContextHeaders
) -> None:
    """A purge whose receipts' answer was lost resends them: the chain holds each once."""
    path = "/internal/v1/retention-receipts"
    receipt_id = str(uuid.uuid4())
    receipt = {
        "retention_class": "non_hit_reads",
        "range_start": "2026-10-01T00:00:00Z",
        "range_end": "2026-10-02T00:00:00Z",
        "deleted_count": 5,
        "preserved_count": 0,
        "deleted_ids_sha256": deleted_ids_digest([str(uuid.uuid4()) for _ in range(5)]),
        "receipt_id": receipt_id,
    }
    first = await post(client, service_headers, path, {"receipts": [receipt]})
    again = await post(client, service_headers, path, {"receipts": [receipt]})
    assert again["seqs"] == first["seqs"]
    assert (again["recorded"], again["already_recorded"]) == (0, 1)
    events = "/v1/audit/events"
    found = await client.get(
        events,
        params={"event_type": "retention.purge", "after_seq": first["first_seq"] - 1},
        headers=context_headers("GET", events),
    )
    assert found.status_code == 200, found.text
    ids = [item["fields"]["event_id"] for item in found.json()["items"]]
    assert ids.count(receipt_id) == 1


async def test_dissemination_log_query_and_export_for_administrators(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, context_headers: ContextHeaders
) -> None:
    recipient = f"NV{uuid.uuid4().int % 10**7:07d}"
    record = {
        "recipient_agency": recipient,
        "mou_id": "mou-7",
        "purpose": "stolen_vehicle",
        "case_number": "24-77",
        "data_class": "reads",
        "record_ids": ["a", "b", "c"],
        "record_count": 3,
        "released_by": "officer-7",
        "released_by_agency": "CA0010000",
    }
    landed = await post(
        client, service_headers, "/internal/v1/disseminations", {"records": [record, record]}
    )
    path = "/v1/dissemination"
    answer = await client.get(
        path,
        params={"recipient_agency": recipient},
        headers=context_headers("GET", path, roles=("administrator",)),
    )
    assert answer.status_code == 200, answer.text
    assert [i["fields"]["record_ids"] for i in answer.json()["items"]] == [["a", "b", "c"]] * 2
    officer = await client.get(path, headers=context_headers("GET", path, roles=("officer",)))
    assert officer.status_code == 403
    export = "/v1/dissemination/exports"
    bundle = await client.get(
        export,
        params={"format": "csv", "from_seq": landed["first_seq"], "to_seq": landed["last_seq"]},
        headers=context_headers("GET", export, roles=("auditor",)),
    )
    report = verify_bundle(bundle.content)
    assert report.ok, report.to_json()
    assert report.checked == 2


def dissemination(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "recipient_agency": "NV0000001",
        "data_class": "reads",
        "record_count": 1,
        "released_by": "officer-7",
        "released_by_agency": "CA0010000",
    }
    values.update(overrides)
    return {"records": [values]}


def receipt(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "retention_class": "images",
        "range_start": "2026-11-01T00:00:00Z",
        "range_end": "2026-11-02T00:00:00Z",
        "deleted_count": 0,
        "preserved_count": 0,
        "deleted_ids_sha256": deleted_ids_digest([]),
    }
    values.update(overrides)
    return {"receipts": [values]}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("disseminations", dissemination(record_count=2**31), "records.0.record_count"),
        (
            "disseminations",
            dissemination(occurred_at="9999-12-31T23:00:00-05:00"),
            "records.0.occurred_at",
        ),
        (
            "retention-receipts",
            receipt(range_start="0001-01-01T00:00:00+01:00"),
            "receipts.0.range_start",
        ),
        ("retention-receipts", receipt(deleted_count=2**63), "receipts.0.deleted_count"),
    ],
    ids=[
        "record-count-over-integer",
        "record-after-year-9999",
        "receipt-before-year-1",
        "receipt-count-over-bigint",
    ],
)
async def test_internal_appends_name_the_bad_field(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    path = f"/internal/v1/{path}"
    response = await client.post(path, json=body, headers=service_headers("POST", path))
    assert response.status_code == 422, response.text
    assert [e["field"] for e in response.json()["errors"]] == [field]


def test_shift_hours_are_read_on_the_agencys_clock() -> None:
    from lpr_audit.access_log.misuse import off_shift, rules
    from lpr_audit.settings import Settings

    pacific = Settings(audit_shift_timezone="America/Los_Angeles")
    # 03:00 UTC on a winter day is 19:00 the evening before in California: on shift there.
    evening = datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    assert not off_shift(evening, pacific)
    assert off_shift(evening, Settings())  # read as UTC it would be 03:00: off shift
    # 13:00 UTC is 05:00 in California: before the 06:00 start.
    assert off_shift(datetime(2026, 1, 15, 13, 0, tzinfo=UTC), pacific)
    statement = next(
        r.statement for r in rules(pacific) if r.rule == "searches-outside-shift-hours"
    )
    assert statement.endswith("06:00-22:00 America/Los_Angeles")
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        Settings(audit_shift_timezone="Mars/Olympus_Mons")
