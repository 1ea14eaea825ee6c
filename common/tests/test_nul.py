"""U+0000 is refused where a request carries text, naming the field; bytes pass untouched.

PostgreSQL cannot store U+0000 in text or jsonb: without this a value holding it fails
in a query, after whatever came before was done, as a 500.
"""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI, Request

from lpr_common.errors import install_problem_handlers
from lpr_common.nul import NUL_REASON, RefuseNul, nul_field

JSON = "application/json"


@pytest.mark.parametrize(
    ("path", "query", "content_type", "body", "field"),
    [
        ("/v1/agencies/CA\x00X", b"", None, b"", "path"),
        ("/v1/alerts", b"status=new&unit_id=car%0012", None, b"", "unit_id"),
        ("/v1/alerts", b"status=new", JSON, json.dumps({"note": "a\x00b"}).encode(), "note"),
        (
            "/x",
            b"",
            "application/merge-patch+json; charset=utf-8",
            json.dumps({"events": [{"ok": "1"}, {"query": {"plate": "\x00"}}]}).encode(),
            "events.1.query.plate",
        ),
        ("/x", b"", JSON, json.dumps({"k\x00": 1}).encode(), "k\ufffd"),
        ("/x", b"", "application/x-www-form-urlencoded", b"username=ofc%00x&p=1", "username"),
        # A lone UTF-16 surrogate: no UTF-8 writer (the log, the answer) can write it.
        ("/x", b"", JSON, b'{"purpose": "stolen\\ud800", "ok": "\\ud83d\\ude00"}', "purpose"),
        ("/x", b"", JSON, b'{"ok": "\\uD83D\\uDE00"}', None),
        # Not U+0000: a backslash followed by "u0000", as JSON escapes it.
        ("/x", b"", JSON, json.dumps({"note": "\\u0000"}).encode(), None),
        # Bytes (an image, a multipart upload) and bodies that are not JSON are not read here.
        ("/x", b"", "image/jpeg", b"\xff\xd8\x00\x00\\u0000", None),
        ("/x", b"", JSON, b'{"note": "\\u0000"', None),
        ("/x", b"a=%01", JSON, b'{"note": "fine"}', None),
    ],
)
def test_the_field_holding_nul_is_named(
    path: str, query: bytes, content_type: str | None, body: bytes, field: str | None
) -> None:
    assert nul_field(path, query, content_type, body) == field


def app_storing(stored: list[str]) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(RefuseNul)

    @app.post("/notes")
    async def add(request: Request) -> dict[str, str]:
        stored.append((await request.body()).decode())
        return {"stored": "yes"}

    return app


@pytest.mark.parametrize(
    ("url", "content", "content_type", "field"),
    [
        ("/notes", json.dumps({"note": "x\x00"}).encode(), JSON, "note"),
        ("/notes?unit_id=%00", b"{}", JSON, "unit_id"),
        ("/notes", b"note=%00", "application/x-www-form-urlencoded", "note"),
    ],
)
async def test_a_request_holding_nul_is_refused_before_the_endpoint_runs(
    url: str, content: bytes, content_type: str, field: str
) -> None:
    stored: list[str] = []
    transport = httpx.ASGITransport(app=app_storing(stored))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        refused = await client.post(url, content=content, headers={"content-type": content_type})
        fine = await client.post("/notes", json={"note": "fine"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["errors"] == [{"field": field, "reason": NUL_REASON}]
    # The endpoint never saw the refused request; the next one reaches it whole.
    assert fine.status_code == 200
    assert stored == ['{"note":"fine"}']
