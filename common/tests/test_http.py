"""Service-to-service client: retries only what is safe to repeat.

The peer here is an httpx MockTransport standing in for another service: the thing under
test is the retry policy of our client, and the peer's failures must be scripted.
"""

from __future__ import annotations

import httpx

from lpr_common.http import RetryingTransport, build_client


def flaky_peer(failures: int, status: int = 503) -> tuple[httpx.MockTransport, list[str]]:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) <= failures:
            return httpx.Response(status)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handler), calls


async def test_get_is_retried_until_the_peer_recovers() -> None:
    transport, calls = flaky_peer(failures=2)
    async with build_client("http://peer", transport=transport) as client:
        client._transport = RetryingTransport(transport, retries=3, backoff_s=0.001)
        response = await client.get("/x")
    assert response.status_code == 200
    assert calls == ["GET", "GET", "GET"]


async def test_plain_post_is_sent_once() -> None:
    transport, calls = flaky_peer(failures=1)
    async with httpx.AsyncClient(
        base_url="http://peer", transport=RetryingTransport(transport, backoff_s=0.001)
    ) as client:
        response = await client.post("/x", json={})
    assert response.status_code == 503
    assert calls == ["POST"]


async def test_post_with_idempotency_key_is_retried() -> None:
    transport, calls = flaky_peer(failures=1)
    async with httpx.AsyncClient(
        base_url="http://peer", transport=RetryingTransport(transport, backoff_s=0.001)
    ) as client:
        response = await client.post("/x", json={}, headers={"Idempotency-Key": "read-42"})
    assert response.status_code == 200
    assert calls == ["POST", "POST"]


async def test_retries_give_up_and_return_the_last_answer() -> None:
    transport, calls = flaky_peer(failures=10)
    async with httpx.AsyncClient(
        base_url="http://peer", transport=RetryingTransport(transport, retries=2, backoff_s=0.001)
    ) as client:
        response = await client.get("/x")
    assert response.status_code == 503
    assert len(calls) == 3
