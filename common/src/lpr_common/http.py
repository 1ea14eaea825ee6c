"""httpx clients for service-to-service calls: timeouts always, retries when safe.

Idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) and requests that carry an
``Idempotency-Key`` are retried with exponential backoff on connection errors, timeouts
and 502/503/504. Anything else is sent once: retrying a plain POST could do it twice.
Trace context is injected by the httpx OpenTelemetry instrumentation (see telemetry).
"""

from __future__ import annotations

import asyncio
import random

import httpx

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({502, 503, 504})


class RetryingTransport(httpx.AsyncBaseTransport):
    """Wrap a transport and retry requests that are safe to repeat."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        retries: int = 3,
        backoff_s: float = 0.1,
    ) -> None:
        self._inner = inner or httpx.AsyncHTTPTransport()
        self._retries = retries
        self._backoff_s = backoff_s

    @staticmethod
    def is_retryable(request: httpx.Request) -> bool:
        """True when sending ``request`` twice has the effect of sending it once."""
        return request.method in IDEMPOTENT_METHODS or "idempotency-key" in request.headers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the request, retrying transient failures of retryable requests."""
        attempts = self._retries + 1 if self.is_retryable(request) else 1
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await self._inner.handle_async_request(request)
            except (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.ReadTimeout,
                httpx.RemoteProtocolError,
            ):
                if last:
                    raise
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return response
                await response.aclose()
            # Full jitter keeps replicas from retrying in lockstep.
            await asyncio.sleep(random.uniform(0, self._backoff_s * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self._inner.aclose()


def build_client(
    base_url: str,
    *,
    timeout_s: float = 5.0,
    retries: int = 3,
    transport: httpx.AsyncBaseTransport | None = None,
    auth: httpx.Auth | None = None,
) -> httpx.AsyncClient:
    """Build the client for one peer service (open it in the lifespan, close it there too)."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
        transport=RetryingTransport(transport, retries=retries),
        auth=auth,
    )
