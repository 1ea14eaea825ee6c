"""Helpers for the hot-list service tests (only tests import this module)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from lpr_common.audit_client import AuditClient
from lpr_common.testing import context_headers, service_headers

AGENCY = "CA0010000"


@dataclass
class AuditLog:
    """Events the service sent to the audit log, in order; ``fail`` makes it refuse them."""

    events: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer as audit-svc's ``POST /internal/v1/events`` does."""
        if self.fail:
            return httpx.Response(503)
        events = json.loads(request.content)["events"]
        self.events.extend(events)
        return httpx.Response(201, json={"accepted": len(events)})

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        """The events of one type."""
        return [e for e in self.events if e["event_type"] == event_type]


def use_audit_log(app: FastAPI, log: AuditLog) -> None:
    """Send the app's audit events to ``log`` (audit-svc itself is tested in its own suite)."""
    transport = httpx.MockTransport(log.handler)
    app.state.audit = AuditClient(httpx.AsyncClient(transport=transport, base_url="http://audit"))


class Api:
    """Calls the service as the gateway would, with a signed context per request."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(
        self,
        method: str,
        path: str,
        *,
        roles: list[str] | None = None,
        agency: str = AGENCY,
        user: str = "officer-1",
        service: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; ``kwargs`` go to httpx (json, params, files, data, headers)."""
        url_path = path.split("?", 1)[0]
        if service:
            headers = service_headers(method, url_path, service="recognition")
        else:
            headers = context_headers(
                method,
                url_path,
                subject_id=user,
                agency=agency,
                roles=roles if roles is not None else ["officer"],
            )
        headers.update(kwargs.pop("headers", {}))
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request as an administrator."""
        kwargs.setdefault("user", "admin-1")
        return await self.call(method, path, roles=["administrator"], **kwargs)


NCIC_LINE = "V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK"


def ncic_line(code: str, plate: str, state: str = "CA", date_text: str = "20240105") -> str:
    """One NCIC fixed-width line (the issue's layout)."""
    return f"{code}123456789LA0570200{date_text}{plate:<10}{state}2024  2015HONDCIV  BLK"
