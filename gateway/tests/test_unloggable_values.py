"""Every search attempt is in the access log, whatever values its body holds.

The guard copies body values (search fields, purpose) into the decision event. audit-svc
refuses an event it cannot hash exactly: the gateway then answered 503 and the attempt
was nowhere in the log (an integer beyond 2**53), or failed with a 500 while encoding it
(a lone surrogate). Integers are now recorded as their digits; a lone surrogate is refused
up front, naming the field, like U+0000.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.tests.conftest import Gateway
from lpr_common.values import EXACT_INTEGER_LIMIT

CASE = "PD-2026-000123"


def _search(**extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "purpose": "stolen_vehicle",
        "case_number": CASE,
        "plate": "ABC123",
        "time_range": {"start": (now - timedelta(days=3)).isoformat(), "end": now.isoformat()},
        **extra,
    }


@pytest.mark.parametrize(
    ("training_days", "extra", "status"),
    [
        (-5, {"cameras": [2**64]}, 403),
        (365, {"cameras": [2**64]}, None),
        (-5, {"purpose": "stolen_vehicle\ud800"}, 422),
        (365, {"purpose": "stolen_vehicle\ud800"}, 422),
    ],
    ids=["denied-inexact-integer", "allowed-inexact-integer", "denied-surrogate", "surrogate"],
)
async def test_every_search_attempt_is_recorded_whatever_its_body_holds(
    gateway: Gateway, training_days: int, extra: dict[str, Any], status: int | None
) -> None:
    """``status`` None: allowed, forwarded to the service (a stand-in here)."""
    officer = await gateway.user(
        f"ofc.unloggable.{training_days}", ["officer"], training_days=training_days
    )
    before = len(gateway.audit.of("access.decision"))
    response = await gateway.client.post(
        "/v1/reads/search",
        headers={**gateway.token(officer), "content-type": "application/json"},
        # json.dumps escapes a lone surrogate as \ud800, as any JSON client may send it.
        content=json.dumps(_search(**extra)).encode(),
    )
    if status is None:
        assert response.status_code < 300, response.text
    else:
        assert response.status_code == status, response.text
    recorded = [
        e
        for e in gateway.audit.of("access.decision")[before:]
        if e.get("subject_id") == str(officer.id)
    ]
    assert len(recorded) == 1
    if "cameras" in extra:
        assert recorded[0]["query"]["cameras"] == [str(2**64)]


async def test_integers_up_to_the_shared_exact_limit_are_logged_as_numbers(
    gateway: Gateway,
) -> None:
    """The gateway and audit-svc share one limit (lpr_common): the edge is a number both ways."""
    limit = EXACT_INTEGER_LIMIT
    officer = await gateway.user("ofc.unloggable.edge", ["officer"])
    response = await gateway.client.post(
        "/v1/reads/search",
        headers={**gateway.token(officer), "content-type": "application/json"},
        content=json.dumps(_search(cameras=[limit, -limit, limit + 1, -limit - 1])).encode(),
    )
    assert response.status_code < 300, response.text
    # Recorded at all: audit-svc (the real one, when it is there) took the event.
    [recorded] = [
        e for e in gateway.audit.of("access.decision") if e.get("subject_id") == str(officer.id)
    ]
    assert recorded["query"]["cameras"] == [limit, -limit, str(limit + 1), str(-limit - 1)]
