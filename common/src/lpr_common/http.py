"""httpx clients for service-to-service calls: timeouts always, retries when safe.

Idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) and requests that carry an
``Idempotency-Key`` are retried with exponential backoff on connection errors, timeouts
and 502/503/504. Anything else is sent once: retrying a plain POST could do it twice.

Callers use httpx's client API. On the wire, :class:`WireTransport` sends through aiohttp:
measured on this project's 2-core machine, an httpx request over httpcore cost about
0.65 ms of client CPU against about 0.19 ms through aiohttp, and httpcore was over half
of the gateway's CPU per search (two to three internal calls per request). Trace context
is injected by the transport itself when tracing is on (see telemetry), since the httpx
instrumentation only wraps httpx's own transports.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import yarl
from opentelemetry import propagate, trace

# aiohttp computes these itself from the URL and the body.
_COMPUTED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_tracer = trace.get_tracer("lpr_common.http")


def _map_error(error: BaseException, request: httpx.Request) -> httpx.TransportError:
    """The httpx exception a caller (and :class:`RetryingTransport`) expects for ``error``."""
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(error, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(error, (aiohttp.ServerTimeoutError, TimeoutError)):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)


class _ResponseStream(httpx.AsyncByteStream):
    """An aiohttp response body, as httpx reads it (chunks as they arrive: SSE works)."""

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _map_error(error, self._request) from error

    async def aclose(self) -> None:
        self._response.release()


class WireTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive through aiohttp, behind httpx's transport interface.

    Bodies go out as given and come back as sent (no decompression, no cookies, no
    redirects: the httpx client above decides those). Timeouts come from the request
    (``httpx.Timeout``): connect, and read between chunks.
    """

    def __init__(self, *, connections: int = 100, keepalive_s: float = 30.0) -> None:
        self._connections = connections
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds it to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self._connections, keepalive_timeout=self._keepalive_s
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
                timeout=aiohttp.ClientTimeout(total=None),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return the response with its body still to be read."""
        if trace.get_current_span().is_recording():
            with _tracer.start_as_current_span(
                f"{request.method}", kind=trace.SpanKind.CLIENT
            ) as span:
                span.set_attribute("http.request.method", request.method)
                span.set_attribute("url.full", str(request.url))
                response = await self._send(request, traced=True)
                span.set_attribute("http.response.status_code", response.status_code)
                return response
        return await self._send(request, traced=False)

    async def _send(self, request: httpx.Request, *, traced: bool) -> httpx.Response:
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers.raw
            if name.lower().decode("latin-1") not in _COMPUTED_HEADERS
        ]
        if traced:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            headers.extend(carrier.items())
        body = await request.aread()
        timeouts: dict[str, Any] = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        try:
            response = await self._client().request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _map_error(error, request) from error
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response, request),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        """Close the pooled connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None


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
        self._inner = inner or WireTransport()
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
