"""Audit fails closed (except camera reads, which queue durably) and routing streams."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from gateway.tests.conftest import Gateway, problem, refused_fields
from lpr_common.audit_client import AuditClient, AuditEvent
from lpr_gateway.access import forward
from lpr_gateway.access.audit import flush_outbox
from lpr_gateway.access.models import AuditOutbox
from lpr_gateway.access.subjects import subject_cache
from lpr_gateway.identity.models import TrainingRecord, User

KEY = "lprcam_outbox-key-00000000000000000000000000000000"
READ = b'{"captured_at": "2026-11-29T10:00:00Z", "plate": "OUT123"}'


async def outbox_rows(engine: AsyncEngine, marker: str) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count())
            .select_from(AuditOutbox)
            .where(text("event->>'request_id' = :marker").bindparams(marker=marker))
        )
    return int(count or 0)


async def test_user_requests_fail_closed_when_audit_is_down(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.failclosed", ["officer"])
    gateway.audit.down = True
    response = await gateway.client.get("/v1/cameras", headers=gateway.token(officer))
    assert response.status_code == 503
    assert "audit log unavailable" in problem(response)["detail"]
    denied = await gateway.client.get("/v1/cameras")
    assert denied.status_code == 503  # even a refusal is not answered unaudited
    gateway.audit.down = False
    assert (
        await gateway.client.get("/v1/cameras", headers=gateway.token(officer))
    ).status_code == 200


async def test_a_read_is_not_released_before_its_access_is_durable(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.heldback", ["officer"])
    headers = {**gateway.token(officer), "X-LPR-Purpose": "amber_alert"}
    gateway.audit.down = True
    held = await gateway.client.get(
        "/v1/reads/3f7c1a52-0000-4000-8000-00000000000a", headers=headers
    )
    assert held.status_code == 503
    assert "audit log unavailable" in problem(held)["detail"]
    assert "context" not in held.json()  # the owner answered, but none of it went out
    gateway.audit.down = False
    released = await gateway.client.get(
        "/v1/reads/3f7c1a52-0000-4000-8000-00000000000a", headers=headers
    )
    assert released.status_code == 200
    decision = gateway.audit.last()
    assert released.headers["X-LPR-Audit-Event"] == decision["event_id"]
    [result] = [
        r
        for r in await gateway.results()
        if r["details"]["decision_event_id"] == decision["event_id"]
    ]
    assert (result["result_count"], result["query"]["record_ids"]) == (2, ["r-1", "r-2"])
    assert result["request_id"] == decision["request_id"]


async def test_result_events_go_to_the_outbox_when_audit_is_down(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    marker = "result-outbox-0001"
    event = AuditEvent(
        component="gateway",
        event_type="access.result",
        outcome="success",
        request_id=marker,
        result_count=3,
    )
    gateway.audit.down = True
    gateway.app.state.result_log.post(event)
    await gateway.app.state.result_log.drain()
    assert await outbox_rows(engine, marker) == 1
    gateway.audit.down = False
    await flush_outbox(gateway.app)
    assert await outbox_rows(engine, marker) == 0
    assert [e["result_count"] for e in gateway.audit.events if e["request_id"] == marker] == [3]


async def test_camera_reads_are_accepted_and_queued_while_audit_is_down(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    # Only the flush below sends the queue: the background flusher must not race it.
    await gateway.camera(await gateway.deployment(), key=KEY)
    gateway.audit.down = True
    response = await gateway.client.post(
        "/v1/reads",
        content=READ,
        headers={"X-Camera-Key": KEY, "Content-Type": "application/json"},
    )
    assert response.status_code == 201, response.text
    request_id = response.json()["context"]["request_id"]
    # Queued: the decision before the read was forwarded, the owner's answer after it.
    await gateway.app.state.result_log.drain()
    assert await outbox_rows(engine, request_id) == 2
    assert not any(e.get("request_id") == request_id for e in gateway.audit.events)

    gateway.audit.down = False
    for _ in range(50):
        if await outbox_rows(engine, request_id) == 0:
            break
        await flush_outbox(gateway.app)
        await asyncio.sleep(0.05)
    assert await outbox_rows(engine, request_id) == 0
    delivered = {
        e["event_type"]: e for e in gateway.audit.events if e.get("request_id") == request_id
    }
    assert sum(e.get("request_id") == request_id for e in gateway.audit.events) == 2
    decision, result = delivered["access.decision"], delivered["access.result"]
    assert (decision["outcome"], decision["resource"]) == ("allowed", "reads")
    assert result["outcome"] == "success"


async def test_unknown_routes_are_404_and_audited(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.unknown", ["officer"])
    response = await gateway.client.delete("/v1/nothing/here", headers=gateway.token(officer))
    assert response.status_code == 404
    assert "no such operation" in problem(response)["detail"]
    event = gateway.audit.last()
    assert (event["outcome"], event["rule"], event["path"]) == (
        "denied",
        "unknown-route",
        "/v1/nothing/here",
    )
    assert event["subject_id"] == str(officer.id)
    internal = await gateway.client.get("/internal/v1/anything")
    assert internal.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", "/v1/agencies/CA%00X", None, "path"),
        (
            "POST",
            "/v1/reads/search",
            {
                "purpose": "stolen_vehicle",
                "case_number": "PD-2026-000123\x00",
                "plate": "ABC123",
                "time_range": {"start": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
            },
            "case_number",
        ),
    ],
    ids=["nul-in-path", "nul-in-search-body"],
)
async def test_nul_characters_are_refused_naming_the_field_and_audited(
    gateway: Gateway, method: str, path: str, body: dict[str, Any] | None, field: str
) -> None:
    officer = await gateway.user("ofc.nul", ["officer"])
    response = await gateway.client.request(
        method,
        path,
        headers={**gateway.token(officer), "X-LPR-Purpose": "stolen_vehicle"},
        json=body,
    )
    assert field in refused_fields(response)
    event = gateway.audit.last()
    assert (event["outcome"], event["rule"], event["subject_id"]) == (
        "denied",
        "nul-character",
        str(officer.id),
    )
    assert response.headers["X-LPR-Audit-Event"] == event["event_id"]


async def test_alert_stream_flows_through_the_gateway(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.stream", ["officer"])
    chunks = []
    async with gateway.client.stream(
        "GET", "/v1/alerts/stream", headers=gateway.token(officer)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for chunk in response.aiter_text():
            chunks.append(chunk)
    text_body = "".join(chunks)
    assert text_body.count("event: alert") == 3
    assert "id: 2" in text_body


class SlowAlerts(httpx.AsyncByteStream, httpx.AsyncBaseTransport):
    """hotlist-svc's alert stream: one alert, ``meanwhile``, a second alert 5 s later."""

    def __init__(self, meanwhile: Callable[[], Awaitable[None]] | None = None) -> None:
        self.meanwhile = meanwhile
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream", "X-LPR-Data-Class": "hits"},
            stream=self,
        )

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b'id: 1\nevent: alert\ndata: {"n": 1}\n\n'
        if self.meanwhile is not None:
            await self.meanwhile()
        await asyncio.sleep(5)
        yield b'id: 2\nevent: alert\ndata: {"n": 2, "after": "access ended"}\n\n'

    async def aclose(self) -> None:
        self.closed = True


async def relayed_alerts(gateway: Gateway, alerts: SlowAlerts, headers: dict[str, str]) -> str:
    """What the gateway relays of ``alerts``, once its stream ended."""
    gateway.app.state.upstream_wires["hotlist"] = alerts
    response = await gateway.client.get("/v1/alerts/stream", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert '"n": 1' in response.text
    return response.text


def stream_end(gateway: Gateway, officer: User) -> dict[str, Any]:
    """The ``access.decision`` that ended ``officer``'s stream, checked against its opening."""
    opened, ended = [
        e
        for e in gateway.audit.of("access.decision")
        if e["subject_id"] == str(officer.id) and e["path"] == "/v1/alerts/stream"
    ]
    assert (opened["outcome"], ended["outcome"]) == ("allowed", "denied")
    # Tied to the request it ends and to the decision that allowed it.
    assert ended["request_id"] == opened["request_id"]
    assert ended["details"]["decision_event_id"] == opened["event_id"]
    assert ended["event_id"] != opened["event_id"]
    assert (ended["resource"], ended["action"]) == (opened["resource"], opened["action"])
    return ended


def expiring_token(gateway: Gateway, officer: User, seconds: int = 2) -> dict[str, str]:
    """A bearer token with ``seconds`` of its lifetime left."""
    issued = datetime.now(UTC) - gateway.issuer.ttl + timedelta(seconds=seconds)
    return gateway.token(officer, now=issued)


async def test_alert_stream_ends_when_the_callers_token_expires(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.stream.expiry", ["officer"])
    alerts = SlowAlerts()
    relayed = await relayed_alerts(gateway, alerts, expiring_token(gateway, officer))
    assert "access ended" not in relayed
    assert alerts.closed
    ended = stream_end(gateway, officer)
    assert (ended["rule"], ended["reason"]) == ("unauthenticated", "token expired")


async def queued_stream_ends(gateway: Gateway, engine: AsyncEngine, officer: Any) -> int:
    """How many denied events of the officer's stream wait in the gateway's outbox."""
    [opened] = [e for e in gateway.audit.of() if e["subject_id"] == str(officer.id)]
    async with engine.connect() as connection:
        queued = await connection.scalar(
            select(func.count())
            .select_from(AuditOutbox)
            .where(
                text("event->>'request_id' = :marker and event->>'outcome' = 'denied'").bindparams(
                    marker=opened["request_id"]
                )
            )
        )
    return int(queued or 0)


async def test_an_ended_stream_is_queued_durably_when_audit_is_down(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    officer = await gateway.user("ofc.stream.outbox", ["officer"])

    async def audit_goes_down() -> None:
        gateway.audit.down = True

    try:
        await relayed_alerts(gateway, SlowAlerts(audit_goes_down), expiring_token(gateway, officer))
    finally:
        gateway.audit.down = False
    assert await queued_stream_ends(gateway, engine, officer) == 1
    await flush_outbox(gateway.app)
    assert stream_end(gateway, officer)["reason"] == "token expired"


class HangingAudit:
    """An audit client that never answers for a refusal (audit-svc takes it, and hangs)."""

    def __init__(self, inner: AuditClient) -> None:
        self.inner = inner
        self.refusals: list[AuditEvent] = []

    async def record(self, *events: AuditEvent) -> dict[str, Any]:
        refusals = [e for e in events if e.outcome == "denied"]
        if not refusals:
            return await self.inner.record(*events)
        self.refusals.extend(refusals)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_an_audit_log_that_never_answers_does_not_hold_an_ended_stream(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forward, "STREAM_END_AUDIT_S", 0.5)
    officer = await gateway.user("ofc.stream.hang", ["officer"])
    audit_client = gateway.app.state.audit
    hanging = HangingAudit(audit_client)

    async def audit_hangs() -> None:
        gateway.app.state.audit = hanging

    started = asyncio.get_running_loop().time()
    try:
        relayed = await asyncio.wait_for(
            relayed_alerts(gateway, SlowAlerts(audit_hangs), expiring_token(gateway, officer)),
            timeout=15,
        )
    finally:
        gateway.app.state.audit = audit_client
        for recording in list(forward._stream_end_records):
            recording.cancel()
    # Two seconds of token, half a second for the audit log: not the second alert's five.
    assert asyncio.get_running_loop().time() - started < 4.5
    assert "access ended" not in relayed
    [ended] = hanging.refusals
    assert ended.reason == "token expired"


class ClosedAudit:
    """An audit client closed under a refusal, as at shutdown: it raises, not 503."""

    def __init__(self, inner: AuditClient) -> None:
        self.inner = inner

    async def record(self, *events: AuditEvent) -> dict[str, Any]:
        if any(e.outcome == "denied" for e in events):
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        return await self.inner.record(*events)


async def test_an_ended_stream_is_queued_when_the_audit_client_is_already_closed(
    gateway: Gateway, engine: AsyncEngine
) -> None:
    officer = await gateway.user("ofc.stream.closed", ["officer"])
    audit_client = gateway.app.state.audit

    async def client_closes() -> None:
        gateway.app.state.audit = ClosedAudit(audit_client)

    try:
        await relayed_alerts(gateway, SlowAlerts(client_closes), expiring_token(gateway, officer))
        await asyncio.gather(*forward._stream_end_records)
    finally:
        gateway.app.state.audit = audit_client
    assert await queued_stream_ends(gateway, engine, officer) == 1
    await flush_outbox(gateway.app)
    assert stream_end(gateway, officer)["reason"] == "token expired"


async def test_alert_stream_ends_once_the_callers_account_is_disabled(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.stream.disabled", ["officer"])
    cache = subject_cache(gateway.app)
    assert cache is not None

    async def disable() -> None:
        await gateway.session.execute(
            update(User).where(col(User.id) == officer.id).values(active=False)
        )
        cache.clear()  # what the change's NOTIFY does on every replica

    alerts = SlowAlerts(disable)
    relayed = await relayed_alerts(gateway, alerts, gateway.token(officer))
    assert "access ended" not in relayed
    assert alerts.closed
    ended = stream_end(gateway, officer)
    assert (ended["rule"], ended["reason"]) == ("unauthenticated", "account disabled")


async def test_alert_stream_ends_once_the_callers_training_lapses(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forward, "STREAM_RECHECK_S", 0.2)
    officer = await gateway.user("ofc.stream.training", ["officer"])

    async def lapse() -> None:
        # No notification: the periodic decision finds it.
        await gateway.session.execute(
            update(TrainingRecord)
            .where(col(TrainingRecord.user_id) == officer.id)
            .values(expires_at=datetime.now(UTC) - timedelta(days=1))
        )

    alerts = SlowAlerts(lapse)
    relayed = await relayed_alerts(gateway, alerts, gateway.token(officer))
    assert "access ended" not in relayed
    assert alerts.closed
    ended = stream_end(gateway, officer)
    assert (ended["rule"], ended["clause"]) == ("training-expired", "C.2")
    assert ended["reason"].startswith("LPR training expired on ")


async def test_upstream_problems_and_statuses_pass_through(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.upstream", ["officer"])
    response = await gateway.client.get(
        "/v1/reads/missing", headers={**gateway.token(officer), "X-LPR-Purpose": "amber_alert"}
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "no read"
    result = (await gateway.results())[-1]
    assert result["details"]["decision_event_id"] == gateway.audit.last()["event_id"]
    assert (result["outcome"], result["details"]["upstream_status"]) == ("failure", 404)


async def test_forwarded_context_is_signed_by_the_gateway_not_the_caller(
    gateway: Gateway,
) -> None:
    officer = await gateway.user("ofc.smuggle", ["officer"])
    response = await gateway.client.get(
        "/v1/hotlists?since=2026-01-01",
        headers={**gateway.token(officer), "X-LPR-Context": "forged.context"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["context"]["subject_id"] == str(officer.id)
    assert body["context"]["roles"] == ["officer"]
    assert body["query"] == {"since": "2026-01-01"}
    assert "authorization" not in body["received_headers"]
    assert body["received_headers"]["x-lpr-context"] != "forged.context"


async def test_state_changes_upstream_are_audited_before_they_happen(gateway: Gateway) -> None:
    officer = await gateway.user("ofc.entry", ["officer"])
    gateway.audit.down = True
    response = await gateway.client.post(
        "/v1/hotlists/list-1/entries",
        headers=gateway.token(officer),
        json={"plate": "MAN123", "reason": "suspect vehicle seen at the burglary scene"},
    )
    assert response.status_code == 503
    gateway.audit.down = False
    response = await gateway.client.post(
        "/v1/hotlists/list-1/entries",
        headers=gateway.token(officer),
        json={"plate": "MAN123", "reason": "too short"},
    )
    assert response.status_code == 403
    assert problem(response)["rule"] == "reason-required"
    response = await gateway.client.post(
        "/v1/hotlists/list-1/entries",
        headers=gateway.token(officer),
        json={"plate": "MAN123", "reason": "suspect vehicle seen at the burglary scene"},
    )
    assert response.status_code == 201, response.text
    assert gateway.audit.last()["rule"] == "C.6:officer-manual-entry-with-reason"


async def test_a_state_change_forwarded_to_its_owner_has_an_access_result(
    gateway: Gateway,
) -> None:
    officer = await gateway.user("ofc.mutating.result", ["officer"])
    path = "/v1/alerts/3f7c1a52-0000-4000-8000-0000000000aa/acknowledge"
    response = await gateway.client.post(
        path, headers={**gateway.token(officer), "X-LPR-Purpose": "stolen_vehicle"}, json={}
    )
    assert response.status_code == 201, response.text
    decision_id = response.headers["X-LPR-Audit-Event"]
    [result] = [
        r for r in await gateway.results() if r["details"]["decision_event_id"] == decision_id
    ]
    assert (result["outcome"], result["details"]["upstream_status"]) == ("success", 201)
    assert result["query"]["record_ids"] == ["r-1", "r-2"]


class Refuses(httpx.AsyncBaseTransport):
    """hotlist-svc refusing an alert step (or unreachable, with ``status`` None)."""

    def __init__(self, status: int | None) -> None:
        self.status = status

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.status is None:
            raise httpx.ConnectError("connection refused", request=request)
        body = {"type": "about:blank", "title": "Conflict", "status": self.status}
        # A stream, as answers come off the wire.
        return httpx.Response(self.status, stream=httpx.ByteStream(json.dumps(body).encode()))


@pytest.mark.parametrize(
    ("status", "answered", "outcome", "error"),
    [(409, 409, "failure", None), (None, 503, "error", "ConnectError")],
    ids=["refused-by-owner", "owner-unreachable"],
)
async def test_a_state_change_the_owner_did_not_make_reads_so_in_the_log(
    gateway: Gateway, status: int | None, answered: int, outcome: str, error: str | None
) -> None:
    officer = await gateway.user("ofc.mutating.refused", ["officer"])
    gateway.app.state.upstream_wires["hotlist"] = Refuses(status)
    response = await gateway.client.post(
        "/v1/alerts/3f7c1a52-0000-4000-8000-0000000000ab/acknowledge",
        headers={**gateway.token(officer), "X-LPR-Purpose": "stolen_vehicle"},
        json={},
    )
    assert response.status_code == answered, response.text
    decision = gateway.audit.last()
    assert (decision["outcome"], decision["subject_id"]) == ("allowed", str(officer.id))
    [result] = [
        r
        for r in await gateway.results()
        if r["details"]["decision_event_id"] == decision["event_id"]
    ]
    assert result["outcome"] == outcome
    assert result["details"].get("upstream_status") == status
    assert result["details"].get("upstream_error") == error


async def test_each_prefix_goes_to_its_owner_longest_prefix_first(gateway: Gateway) -> None:
    admin = await gateway.user("adm.routing", ["administrator"])
    officer = await gateway.user("ofc.routing", ["officer"])
    cases = [
        (admin, "/v1/retention/settings", "audit"),
        (admin, "/v1/retention/runs", "recognition"),
        (officer, "/v1/hotlists", "hotlist"),
        (officer, "/v1/alerts/a-1", "hotlist"),
        (admin, "/v1/reports/transparency", "audit"),
    ]
    for caller, path, owner in cases:
        response = await gateway.client.get(path, headers=gateway.token(caller))
        assert response.status_code == 200, (path, response.text)
        assert response.json()["service"] == owner, path
