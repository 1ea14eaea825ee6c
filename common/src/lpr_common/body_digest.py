"""The SHA-256 of a request's body as the service received it.

A signed request context states the digest of the body it was minted for
(:attr:`~lpr_common.context.RequestContext.body_sha256`); the verifier compares it with
the digest of the bytes that actually arrived. Those bytes are consumed by whoever reads
the body first: FastAPI (JSON, form and multipart parsing, before a route's dependencies
run), an express lane, or the verifier itself. So the digest is taken as the body streams
through ASGI ``receive``: :class:`DigestBody` (and :class:`~lpr_common.lanes.ExpressLanes`
for its lanes) wraps ``receive`` of each request carrying a context header, hashes each
chunk as it passes and leaves the digest in the scope once the last chunk has gone by. A
large multipart upload is hashed chunk by chunk on its way to the form parser, never held
twice. :func:`received_body_sha256` reads whatever the route has not read yet (cached on
the request, so the route still gets it) before answering.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCOPE_KEY = "lpr.body_digest"
"""Where the :class:`BodyDigest` of a request lives in its ASGI scope."""

_CONTEXT_HEADER = b"x-lpr-context"
"""``lpr_common.context.CONTEXT_HEADER`` as ASGI spells header names (not imported: cycle)."""


def body_sha256(body: bytes) -> str:
    """The digest a context states for ``body``: SHA-256, lowercase hex."""
    return hashlib.sha256(body).hexdigest()


EMPTY_BODY_SHA256 = body_sha256(b"")
"""The digest of a request without a body (a GET, a DELETE without one)."""


class BodyDigest:
    """The running SHA-256 of one request's body; :attr:`hexdigest` once it is complete."""

    __slots__ = ("_hash", "hexdigest", "started")

    def __init__(self) -> None:
        self._hash: hashlib._Hash | None = None
        self.hexdigest: str | None = None
        """Lowercase hex SHA-256 of the whole body; ``None`` until its last chunk passed."""
        self.started = False
        """Whether any of the body has been received yet."""

    def update(self, message: Message) -> None:
        """Take one ``http.request`` message into the digest."""
        chunk: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        if not self.started and not more:
            # The usual case (a JSON body in one message): one call, no running state.
            self.started = True
            self.hexdigest = hashlib.sha256(chunk).hexdigest()
            return
        self.started = True
        if self._hash is None:
            self._hash = hashlib.sha256()
        self._hash.update(chunk)
        if not more:
            self.hexdigest = self._hash.hexdigest()
            self._hash = None


def _carries_context(scope: Scope) -> bool:
    return any(name == _CONTEXT_HEADER for name, _ in scope.get("headers", ()))


def digesting(scope: Scope, receive: Receive) -> Receive:
    """``receive`` hashing the body of an HTTP request that carries a signed context.

    A request without a context header is never verified, so its body is not hashed (the
    gateway's own callers send none). Wrapping twice hashes once.
    """
    if scope["type"] != "http" or SCOPE_KEY in scope or not _carries_context(scope):
        return receive
    digest = scope[SCOPE_KEY] = BodyDigest()

    async def receive_and_hash() -> Message:
        message = await receive()
        if message["type"] == "http.request" and digest.hexdigest is None:
            digest.update(message)
        return message

    return receive_and_hash


class DigestBody:
    """ASGI middleware: the digest of each verified request's body, taken as it streams."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``receive`` of a request carrying a context, then pass it on."""
        await self.app(scope, digesting(scope, receive), send)


async def received_body_sha256(request: Request) -> str:
    """The digest of the whole body this request received.

    A body the route has not read yet (a route without a body parameter; an express lane
    that verifies first) is read here and kept on the request (``request.body()``), so the
    route reads the same bytes afterwards; FastAPI has read JSON, form and multipart bodies
    before the dependencies run, and their digest is already there.

    Raises:
        RuntimeError: the body was partly read before its context was verified: the
            digest of the whole body cannot be known without losing the rest of it.
    """
    digest: BodyDigest | None = request.scope.get(SCOPE_KEY)
    if digest is not None:
        if digest.hexdigest is not None:
            return digest.hexdigest
        if digest.started:
            raise RuntimeError("the request body was partly read before its context was verified")
    # Read through the wrapped receive where there is one (the digest completes on the
    # way); an app without :class:`DigestBody` hashes the bytes its route will read.
    body = await request.body()
    if digest is not None and digest.hexdigest is not None:
        return digest.hexdigest
    return body_sha256(body)
