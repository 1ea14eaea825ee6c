"""The context the gateway forwards is bound to the body it forwards.

Bound to method, path and query only, a context captured inside the cluster on its way
to recognition-svc was good for 120 s with any other body on the same path: a search for
another plate, a time range beyond the caller's lookback, another purpose; another
camera read. These tests go through the real gateway to the real recognition-svc (ingest
only, no Triton), then replay what they captured straight at the service.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from gateway.tests.conftest import (
    AuditSpy,
    Gateway,
    gateway_settings,
    problem,
    upstream_app,
)
from gateway.tests.test_partner_api import search_body
from lpr_common.body_digest import EMPTY_BODY_SHA256, body_sha256
from lpr_common.context import CONTEXT_HEADER
from lpr_common.service import context_keys
from lpr_gateway.app import create_app
from lpr_recognition.app import create_app as create_recognition_app
from lpr_recognition.settings import Settings as RecognitionSettings
from lpr_recognition.testing import jpeg_bytes, metadata
from lprctl.pytest_plugin import app_client

KEY = "lprcam_body-binding-000000000000000000000000000000000"
ANOTHER_BODY = "signed request context was minted for another body"


class Recorder(httpx.AsyncBaseTransport):
    """The wire to recognition-svc, keeping what the gateway sent on it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.sent: list[tuple[dict[str, str], bytes]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((dict(request.headers), await request.aread()))
        return await self.inner.handle_async_request(request)


@pytest.fixture
async def stack(
    service_env: dict[str, str], session: AsyncSession, audit_spy: AuditSpy, tmp_path: Path
) -> AsyncIterator[tuple[Gateway, Recorder, httpx.AsyncClient]]:
    """The gateway in front of a real, ingest-only recognition-svc (and a direct client of it)."""
    recognition = create_recognition_app(
        RecognitionSettings(
            recognition_enabled=False, workers_enabled=False, blob_dir_override=tmp_path / "blobs"
        )
    )
    async with app_client(recognition, session, base_url="http://recognition") as direct:
        recorder = Recorder(httpx.ASGITransport(app=recognition))
        settings = gateway_settings()
        app = create_app(settings)
        transports: dict[str, httpx.AsyncBaseTransport] = {
            "audit-log": audit_spy,
            "recognition": recorder,
        }
        for name in ("hotlist", "audit"):
            upstream = upstream_app(name)
            upstream.state.context_verifier = context_keys(settings, name)[1]
            transports[name] = httpx.ASGITransport(app=upstream)
        app.state.upstream_transports = transports
        async with app_client(app, session) as client:
            yield Gateway(app, client, session, audit_spy, settings), recorder, direct


def forwarded(recorder: Recorder) -> tuple[str, bytes, str]:
    """The context, body and content type of the last request sent to recognition-svc."""
    headers, body = recorder.sent[-1]
    return headers[CONTEXT_HEADER.lower()], body, headers.get("content-type", "")


def stated_digest(header: str) -> str | None:
    """The body digest a context header states (read, not verified)."""
    payload = header.split(".", 1)[0]
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    digest: str | None = json.loads(decoded).get("body_sha256")
    return digest


async def test_a_captured_search_context_is_refused_with_another_body(
    stack: tuple[Gateway, Recorder, httpx.AsyncClient],
) -> None:
    gateway, recorder, recognition = stack
    officer = await gateway.user("ofc.body.binding", ["officer"])
    searched = await gateway.client.post(
        "/v1/reads/search", headers=gateway.token(officer), json=search_body(days=7)
    )
    assert searched.status_code == 200, searched.text
    minted, sent, content_type = forwarded(recorder)
    assert stated_digest(minted) == body_sha256(sent)
    headers = {CONTEXT_HEADER: minted, "Content-Type": content_type}
    # Another plate over a time range beyond the officer's 90 days, under the same context.
    other = json.dumps(search_body(days=300, plate="XYZ999")).encode()
    replayed = await recognition.post("/v1/reads/search", content=other, headers=headers)
    assert replayed.status_code == 401, replayed.text
    assert problem(replayed)["detail"] == ANOTHER_BODY
    # The body it was minted for still verifies: the binding is exact, not a refusal.
    again = await recognition.post("/v1/reads/search", content=sent, headers=headers)
    assert again.status_code == 200, again.text


async def test_a_captured_camera_read_context_is_refused_with_another_read(
    stack: tuple[Gateway, Recorder, httpx.AsyncClient],
) -> None:
    gateway, recorder, recognition = stack
    await gateway.camera(await gateway.deployment(), key=KEY)
    read = metadata()
    posted = await gateway.client.post(
        "/v1/reads",
        files={"image": ("read.jpg", jpeg_bytes(), "image/jpeg")},
        data={"metadata": json.dumps(read)},
        headers={"X-Camera-Key": KEY},
    )
    assert posted.status_code == 202, posted.text
    minted, sent, content_type = forwarded(recorder)
    assert content_type.startswith("multipart/form-data")
    assert stated_digest(minted) == body_sha256(sent)
    headers = {CONTEXT_HEADER: minted, "Content-Type": content_type}
    # The same camera posting another read (another plate, another image) in its name.
    other = sent.replace(read["camera_read_id"].encode(), b"r-forged-read-id-0000000000000000000")
    assert other != sent
    replayed = await recognition.post("/v1/reads", content=other, headers=headers)
    assert replayed.status_code == 401, replayed.text
    assert problem(replayed)["detail"] == ANOTHER_BODY
    again = await recognition.post("/v1/reads", content=sent, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["read_id"] == posted.json()["read_id"]


async def test_a_forwarded_request_without_a_body_is_bound_to_the_empty_body(
    gateway: Gateway,
) -> None:
    officer = await gateway.user("ofc.body.empty", ["officer"])
    response = await gateway.client.get(
        "/v1/reads/00000000-0000-0000-0000-000000000001",
        headers={**gateway.token(officer), "X-LPR-Purpose": "stolen_vehicle"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["context"]["body_sha256"] == EMPTY_BODY_SHA256
