"""Historical search and the partner API on the whole stack, as officers, partners and auditors.

Real gateway, recognition, hot-list and audit processes on the real database: the
officer's search is FOUO-marked; the partner's search under its MOU is written to the
dissemination log with its count and read ids, and to the access log; a purpose outside
the MOU is refused naming the rule (IACP C.8, D.1, D.2).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from lprctl.demo_steps.search import officer_search, partner_refused, partner_search
from lprctl.pytest_plugin import RunningStack
from lprctl.stack_client import StackClient, random_plate


@pytest.mark.slow
def test_officer_and_partner_search_a_case_with_dissemination_and_refusal(
    running_stack: RunningStack, stack_client: StackClient
) -> None:
    gateway = running_stack.gateway_url
    officer = stack_client.user("officer")
    auditor = stack_client.user("auditor")
    camera = stack_client.camera()
    plate = random_plate()
    read_ids = stack_client.post_plates(camera, [(plate, "CA"), (plate, "CA")])
    agency, client_id, secret = stack_client.partner()
    case = f"PD-2026-{secrets.randbelow(10**6):06d}"

    with httpx.Client(timeout=30) as http:
        page = officer_search(http, gateway, officer.token, plate, case_number=case)
        assert sorted(r["read_id"] for r in page["results"]) == sorted(read_ids)
        assert page["marking"] == "FOUO"

        shared = partner_search(
            http,
            gateway,
            client_id=client_id,
            client_secret=secret,
            plate=plate,
            auditor=auditor.token,
            case_number=case,
        )
        assert shared["page"]["count"] == 2
        record = shared["dissemination"]
        assert record is not None
        assert record["recipient_agency"] == agency
        assert record["record_count"] == 2
        assert sorted(record["record_ids"]) == sorted(read_ids)
        assert (record["purpose"], record["case_number"], record["data_class"]) == (
            "stolen_vehicle",
            case,
            "reads",
        )
        searches = [e for e in shared["events"] if e.get("action") == "search"]
        # The access, then (before the answer left the agency) what the answer carried.
        assert sorted((e["event_type"], e["outcome"], e["result_count"]) for e in searches) == [
            ("access.decision", "allowed", None),
            ("access.result", "success", 2),
        ]

        refused = partner_refused(
            http, gateway, client_id=client_id, client_secret=secret, plate=plate, case_number=case
        )
        assert refused["status"] == 403
        assert refused["problem"]["rule"] == "mou-purpose"

        bad = http.post(
            f"{gateway}/v1/reads/search",
            headers=officer.headers(None),
            json={
                "purpose": "stolen_vehicle",
                "case_number": case,
                "plate": "*?*",
                "time_range": {"start": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
            },
        )
        assert bad.status_code == 422
        assert [e["field"] for e in bad.json()["errors"]] == ["plate"]
