"""Refuse the NUL character (U+0000) wherever a request carries text.

PostgreSQL cannot store U+0000 in ``text`` or ``jsonb``: a value holding it fails deep in
a query, after a blob may already be stored, and answers 500. A request carrying it in
its path, its query string or a string of its JSON or form body is refused up front
with a 422 that names the field. Other content types (images, multipart uploads) are
bytes and pass untouched; what they hold is checked where it is parsed.

Services install :class:`RefuseNul`; the gateway screens in its guard instead, so that
the refusal is audited like any other.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lpr_common.errors import InvalidInput, problem_response

NUL = "\x00"
NUL_REASON = "must not contain the NUL character (U+0000) or a lone surrogate"
_JSON_NUL = b"\\u0000"
# How JSON spells a UTF-16 surrogate; a valid pair decodes to one character, a lone half
# stays a lone surrogate that no UTF-8 encoder (the log's, a response's) can write.
_JSON_SURROGATES = (b"\\ud", b"\\uD")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def screened(content_type: str | None) -> bool:
    """Whether a body of this content type is text that :func:`nul_field` reads."""
    media_type = _media_type(content_type)
    return _is_json(media_type) or media_type == "application/x-www-form-urlencoded"


def _printable(name: str) -> str:
    return name.replace(NUL, "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _in_pairs(encoded: str) -> str | None:
    for key, value in parse_qsl(encoded, keep_blank_values=True):
        if NUL in key or NUL in value:
            return _printable(key) or "query"
    return None


def _unstorable(text: str) -> bool:
    if NUL in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _in_document(document: Any, prefix: str) -> str | None:
    if isinstance(document, str):
        return prefix or "body" if _unstorable(document) else None
    if isinstance(document, dict):
        for key, value in document.items():
            path = f"{prefix}.{_printable(key)}" if prefix else _printable(key)
            if _unstorable(key):
                return path
            found = _in_document(value, path)
            if found is not None:
                return found
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found = _in_document(value, f"{prefix}.{index}" if prefix else str(index))
            if found is not None:
                return found
    return None


def nul_field(path: str, query_string: bytes, content_type: str | None, body: bytes) -> str | None:
    """The first field of a request holding U+0000 (``None``: there is none).

    In a JSON body a string holding a lone surrogate (``"\\ud800"``) counts too: nothing
    can write it as UTF-8, not the log, not even the refusal naming it. ``path`` is the
    decoded path; a body that is not valid JSON is left to the parser that refuses it.
    """
    if NUL in path:
        return "path"
    if b"%00" in query_string or b"\x00" in query_string:
        found = _in_pairs(query_string.decode("latin-1"))
        if found is not None:
            return found
    if not body:
        return None
    media_type = _media_type(content_type)
    if _is_json(media_type):
        if _JSON_NUL not in body and not any(s in body for s in _JSON_SURROGATES):
            return None
        try:
            document = json.loads(body)
        except ValueError:
            return None
        return _in_document(document, "")
    if media_type == "application/x-www-form-urlencoded" and b"%00" in body:
        return _in_pairs(body.decode("latin-1"))
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def screen(scope: Scope, receive: Receive) -> tuple[str | None, Receive]:
    """Find a field holding U+0000 in an HTTP request; the ``receive`` to go on with.

    A JSON or form body is read here (it is small: the app reads it whole anyway) and
    handed on unchanged; any other body is not touched.
    """
    content_type = _header(scope, b"content-type")
    field = nul_field(scope["path"], scope.get("query_string", b""), None, b"")
    if field is not None or not screened(content_type):
        return field, receive
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, _replay([message], receive)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    replayed: Message = {"type": "http.request", "body": body, "more_body": False}
    return nul_field("", b"", content_type, body), _replay([replayed], receive)


def _replay(messages: list[Message], receive: Receive) -> Callable[[], Awaitable[Message]]:
    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay


async def refuse(field: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the 422 problem naming ``field``."""
    response = problem_response(InvalidInput.field(field, NUL_REASON).to_problem())
    await response(scope, receive, send)


class RefuseNul:
    """ASGI middleware: a request holding U+0000 in a text field gets a 422 naming it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Screen an HTTP request, then pass it on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        field, receive = await screen(scope, receive)
        if field is not None:
            await refuse(field, scope, receive, send)
            return
        await self.app(scope, receive, send)
