"""The audit client posts where its peer client posts: under the audit base URL."""

from __future__ import annotations

import httpx

from lpr_common.audit_client import AuditClient, AuditEvent
from lpr_common.http import build_client


async def test_events_are_posted_under_a_base_url_with_a_path() -> None:
    # LPR_AUDIT_URL behind a path-routing ingress (``http://ingress/audit``): every other
    # peer call (``client.post``) keeps the prefix, so the audit log must too.
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(201, json={"accepted": 1})

    client = build_client("http://ingress/audit", transport=httpx.MockTransport(answer))
    async with client:
        await AuditClient(client).record(
            AuditEvent(component="test", event_type="test.event", outcome="success")
        )
        await client.post("/internal/v1/events", json={"events": []})
    assert seen == ["/audit/internal/v1/events", "/audit/internal/v1/events"]
