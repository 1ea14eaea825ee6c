"""The demo step's functions against the real service over HTTP (a signing hook plays the gateway)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import httpx
import pytest
import uvicorn

from lpr_common.testing import context_headers, service_headers
from lpr_hotlist.app import create_app
from lpr_hotlist.settings import Settings
from lpr_hotlist.testing import AuditLog, use_audit_log
from lprctl.demo_steps.hotlist import import_demo_lists, watch_alerts, work_alerts
from lprctl.postgres import free_port


@pytest.fixture
def service_url(service_env: dict[str, str]) -> Iterator[str]:
    """The hot-list service on a free port, in a thread."""
    app = create_app(Settings(hotlist_stream_poll_s=0.2))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "service did not start"
        time.sleep(0.05)
    use_audit_log(app, AuditLog())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_demo_imports_watches_and_works_alerts(service_url: str) -> None:
    agency = "ZD" + secrets.token_hex(4).upper()[:7]

    def as_gateway(request: httpx.Request) -> None:
        if request.url.path.startswith("/internal/"):
            request.headers.update(service_headers(request.method, request.url.path))
            return
        assert request.headers["Authorization"] == "Bearer demo-token"
        request.headers.update(
            context_headers(
                request.method,
                request.url.path,
                agency=agency,
                subject_id="demo-officer",
                roles=["administrator", "officer"],
            )
        )

    with httpx.Client(event_hooks={"request": [as_gateway]}, timeout=30) as client:
        import_demo_lists(
            client,
            service_url,
            "demo-token",
            [("7ABC123", "CA"), ("DEMO42", "NV"), ("XYZ789", "CA")],
        )
        # The service's own LISTEN picks the new lists up; wait until a read matches.
        read_ids = []
        deadline = time.monotonic() + 15
        for plate in ("7ABC123", "DEM042"):
            while True:
                read_id = str(uuid4())
                body = {
                    "read_id": read_id,
                    "agency": agency,
                    "captured_at": datetime.now(UTC).isoformat(),
                    "plates": [{"index": 0, "text": plate, "state": "CA"}],
                }
                answer = client.post(f"{service_url}/internal/v1/matches", json=body).json()
                if answer["alerts"] or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert answer["alerts"], plate
            read_ids.append(read_id)

        events = watch_alerts(client, service_url, "demo-token", 2, timeout_s=10)
        assert [e["event"] for e in events] == ["alert.created", "alert.created"]
        assert [e["data"]["alert"]["read_id"] for e in events] == read_ids
        assert "(0≈O)" in events[1]["data"]["alert"]["explanation"]
        alert_ids = [e["data"]["alert"]["id"] for e in events]
        work_alerts(client, service_url, "demo-token", alert_ids)

        later = watch_alerts(
            client, service_url, "demo-token", 7, last_event_id=events[-1]["id"], timeout_s=10
        )
        assert [e["data"]["to_status"] for e in later] == [
            "acknowledged",
            "verified",
            "status_checked",
            "dispositioned",
            "acknowledged",
            "misread",
            "dispositioned",
        ]
        # Nothing more arrives: the watcher gives up after its timeout with what it has.
        started = time.monotonic()
        assert (
            watch_alerts(client, service_url, "demo-token", 1, last_event_id=None, timeout_s=1)
            == []
        )
        assert time.monotonic() - started < 5
