"""Trace context crosses service-to-service calls, so one trace follows a request."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from lpr_common.http import build_client
from lpr_common.telemetry import instrument_app, setup_tracing
from lprctl.postgres import free_port


@pytest.fixture(scope="module")
def traced_peer() -> Iterator[tuple[str, InMemorySpanExporter]]:
    """A downstream service on a real port, traced into memory."""
    provider = setup_tracing("lpr-test", otlp_endpoint=None, console=False)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    peer = FastAPI()

    @peer.get("/echo")
    async def echo(request: Request) -> dict[str, str | None]:
        return {"traceparent": request.headers.get("traceparent")}

    instrument_app(peer, provider)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(peer, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", exporter
    server.should_exit = True
    thread.join(timeout=10)


def assert_propagated(response: httpx.Response, trace_id: str) -> None:
    """The peer (which echoes the ``traceparent`` it received) saw the caller's trace."""
    traceparent = response.json()["traceparent"]
    assert traceparent is not None
    assert traceparent.split("-")[1] == trace_id


async def test_a_call_to_a_peer_carries_the_callers_trace(
    traced_peer: tuple[str, InMemorySpanExporter],
) -> None:
    url, exporter = traced_peer
    tracer = trace.get_tracer("lpr-test")
    async with httpx.AsyncClient(base_url=url) as client:
        with tracer.start_as_current_span("gateway-request") as span:
            response = await client.get("/echo")
            trace_id = format(span.get_span_context().trace_id, "032x")
    assert_propagated(response, trace_id)
    # The peer's server span joined the same trace.
    server_spans = [s for s in exporter.get_finished_spans() if s.name.startswith("GET /echo")]
    assert server_spans
    assert all(format(s.context.trace_id, "032x") == trace_id for s in server_spans)


async def test_the_service_client_carries_the_callers_trace(
    traced_peer: tuple[str, InMemorySpanExporter],
) -> None:
    url, exporter = traced_peer
    tracer = trace.get_tracer("lpr-test")
    async with build_client(url) as client:
        with tracer.start_as_current_span("gateway-request") as span:
            response = await client.get("/echo")
            trace_id = format(span.get_span_context().trace_id, "032x")
    assert_propagated(response, trace_id)
    client_spans = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == trace.SpanKind.CLIENT and format(s.context.trace_id, "032x") == trace_id
    ]
    assert client_spans, "the call itself is a span of the caller's trace"
