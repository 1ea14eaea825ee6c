"""The wire under the service-to-service httpx clients, against a real uvicorn peer."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from lpr_common.http import RetryingTransport, WireTransport, build_client
from lprctl.postgres import free_port


def _peer() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> Response:
        body = await request.body()
        return Response(
            body,
            status_code=201,
            media_type="application/octet-stream",
            headers={
                "X-Seen-Key": request.headers.get("idempotency-key", ""),
                "X-Seen-Query": request.url.query,
                "X-Seen-Length": request.headers.get("content-length", ""),
            },
        )

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            for number in range(3):
                yield f"id: {number}\ndata: {number}\n\n".encode()
                await asyncio.sleep(0.05)

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/slow")
    async def slow() -> dict[str, str]:
        await asyncio.sleep(2)
        return {"late": "yes"}

    @app.get("/multi")
    async def multi() -> Response:
        response = Response(b"{}", media_type="application/json")
        response.headers.append("X-Many", "one")
        response.headers.append("X-Many", "two")
        return response

    return app


@pytest.fixture(scope="module")
def peer_url() -> Iterator[str]:
    """A real HTTP/1.1 peer on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(_peer(), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


async def test_bodies_headers_and_query_arrive_unchanged(peer_url: str) -> None:
    payload = bytes(range(256)) * 300  # binary, and larger than one socket read
    async with build_client(peer_url) as client:
        for _ in range(3):  # the same kept-alive connection serves each
            response = await client.post(
                "/echo",
                content=payload,
                params={"q": "a b&c"},
                headers={"Idempotency-Key": "read-1"},
            )
            assert response.status_code == 201
            assert response.content == payload
            assert response.headers["x-seen-key"] == "read-1"
            assert response.headers["x-seen-query"] == "q=a+b%26c"
            assert response.headers["x-seen-length"] == str(len(payload))
        many = await client.get("/multi")
        assert many.headers.get_list("x-many") == ["one", "two"]


async def test_a_stream_arrives_chunk_by_chunk(peer_url: str) -> None:
    async with (
        build_client(peer_url) as client,
        client.stream("GET", "/stream") as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        arrivals = [(chunk, time.monotonic()) async for chunk in response.aiter_raw()]
    text = b"".join(chunk for chunk, _ in arrivals).decode()
    assert text.count("data:") == 3
    # Not buffered to the end: the first event came well before the last.
    assert arrivals[-1][1] - arrivals[0][1] > 0.05


async def test_failures_surface_as_the_httpx_errors_callers_handle(peer_url: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient(transport=WireTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{dead}/anything")
        with pytest.raises(httpx.ReadTimeout):
            await client.get(f"{peer_url}/slow", timeout=httpx.Timeout(0.3))


async def test_retries_run_over_the_wire_transport(peer_url: str) -> None:
    transport = RetryingTransport(retries=2, backoff_s=0.01)
    dead = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient(transport=transport) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            await client.get(f"{dead}/x")
        assert time.monotonic() - started < 5
        assert (await client.post(f"{peer_url}/echo", content=b"ok")).content == b"ok"
