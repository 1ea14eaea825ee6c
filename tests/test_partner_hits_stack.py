"""Hot-list hit sharing with a partner agency under an MOU, on the whole stack (IACP D.1, D.2).

A camera's read matches a hot list; a partner whose MOU covers ``hits`` asks for the
plate's hits with its client credentials and gets that hit, and the gateway writes the
dissemination record with its id. A partner whose MOU does not cover hits, or who asks
further back than the MOU allows, is refused naming the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from lprctl.demo_steps.search import partner_token
from lprctl.stack_client import StackClient, random_plate

pytestmark = pytest.mark.slow


def _since(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def _ask(
    http: httpx.Client, gateway: str, token: str, plate: str, since: str | None
) -> httpx.Response:
    params = {"plate": plate} if since is None else {"plate": plate, "since": since}
    return http.get(
        f"{gateway}/v1/hits",
        params=params,
        headers={"Authorization": f"Bearer {token}", "X-LPR-Purpose": "stolen_vehicle"},
    )


def test_partner_gets_a_hit_under_its_mou_and_the_release_is_logged(
    stack_client: StackClient,
) -> None:
    gateway = stack_client.gateway_url
    officer = stack_client.user("officer")
    auditor = stack_client.user("auditor")
    camera = stack_client.camera()
    plate = random_plate()
    list_id = stack_client.hotlist()
    stack_client.import_list(list_id, ["plate,state,reason", f"{plate},CA,stolen"], format="csv")
    stack_client.post_plates(camera, [(plate, "CA")])
    [alert] = stack_client.wait_hits(officer, plate)
    sharing, client_id, secret = stack_client.partner(["reads", "hits"])
    reads_only, other_id, other_secret = stack_client.partner(["reads"])

    with httpx.Client(timeout=30) as http:
        token = partner_token(http, gateway, client_id, secret)
        shared = _ask(http, gateway, token, plate, _since(7))
        assert shared.status_code == 200, shared.text
        assert shared.headers["X-LPR-Marking"] == "FOUO"
        body: dict[str, Any] = shared.json()
        assert (body["owner_agency"], body["count"]) == (stack_client.agency, 1)
        [hit] = body["hits"]
        assert (hit["hit_id"], hit["plate"], hit["reason"]) == (alert["id"], plate, "stolen")
        assert not {"status", "camera_id", "entry"} & set(hit)

        released = http.get(
            f"{gateway}/v1/dissemination",
            headers={"Authorization": f"Bearer {auditor.token}"},
            params={"recipient_agency": sharing, "limit": 100},
        )
        assert released.status_code == 200, released.text
        records = [item["fields"] for item in released.json()["items"]]
        [record] = [r for r in records if r["request_id"] == shared.headers["X-Request-Id"]]
        assert record["data_class"] == "hits"
        assert record["record_ids"] == [alert["id"]]
        assert record["record_count"] == 1
        assert record["purpose"] == "stolen_vehicle"
        assert record["released_by_agency"] == stack_client.agency

        too_far = _ask(http, gateway, token, plate, _since(45))
        assert too_far.status_code == 403, too_far.text
        assert too_far.json()["rule"] == "mou-lookback"
        # A body's recent time range does not stand in for ``since``: the gateway reads no
        # body on a GET and holds ``since`` to the MOU.
        smuggled = http.request(
            "GET",
            f"{gateway}/v1/hits",
            params={"plate": plate, "since": _since(45)},
            json={"time_range": {"start": _since(1)}},
            headers={"Authorization": f"Bearer {token}", "X-LPR-Purpose": "stolen_vehicle"},
        )
        assert smuggled.status_code == 403, smuggled.text
        assert smuggled.json()["rule"] == "mou-lookback"
        unbounded = _ask(http, gateway, token, plate, None)
        assert unbounded.status_code == 403, unbounded.text
        assert unbounded.json()["rule"] == "time-range-required"

        other_token = partner_token(http, gateway, other_id, other_secret)
        refused = _ask(http, gateway, other_token, plate, _since(7))
        assert refused.status_code == 403, refused.text
        assert refused.json()["rule"] == "mou-data-class"
        nothing = http.get(
            f"{gateway}/v1/dissemination",
            headers={"Authorization": f"Bearer {auditor.token}"},
            params={"recipient_agency": reads_only, "limit": 100},
        )
        assert nothing.json()["items"] == []
