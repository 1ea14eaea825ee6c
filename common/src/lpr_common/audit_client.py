"""What every component sends to audit-svc, and the client that sends it.

The fields of :class:`AuditEvent` are those CJIS 5.4.1.1.1 and Cal. Civ. Code
1798.90.52 ask an access log to hold: when, which component, what kind of event, who
(user identity and agency), the outcome, the purpose and case number, the data queried
(plate or filter) and how many results came back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import httpx
from pydantic import BaseModel, Field

from lpr_common.context import RequestContext
from lpr_common.errors import ServiceUnavailable

_JSON_NUL = b"\\u0000"
# U+0000 as JSON escapes it: ``\u0000`` not preceded by an odd number of backslashes.
_ESCAPED_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")

_JSON_HEADERS = {"content-type": "application/json"}

Outcome = Literal["allowed", "denied", "success", "failure", "error"]


class AuditEvent(BaseModel):
    """One auditable event."""

    event_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    component: str
    event_type: str = Field(description="e.g. access.decision, auth.login, alert.transition")
    outcome: Outcome
    subject_kind: str | None = None
    subject_id: str | None = None
    subject_name: str | None = None
    agency: str | None = None
    roles: list[str] = Field(default_factory=list)
    purpose: str | None = None
    case_number: str | None = None
    resource: str | None = None
    action: str | None = None
    method: str | None = None
    path: str | None = None
    query: dict[str, Any] | None = Field(
        default=None, description="The data queried: plate, filter or record ids"
    )
    plate: str | None = Field(default=None, description="Plate searched or acted on, normalised")
    result_count: int | None = None
    rule: str | None = None
    reason: str | None = None
    clause: str | None = None
    mou_id: str | None = None
    target_agency: str | None = None
    request_id: str | None = None
    client_address: str | None = None
    details: dict[str, Any] | None = None

    @classmethod
    def for_context(
        cls,
        context: RequestContext,
        *,
        component: str,
        event_type: str,
        outcome: Outcome = "success",
        **fields: Any,
    ) -> AuditEvent:
        """An event for something the caller of ``context`` did: who, why, which request."""
        values: dict[str, Any] = {
            "subject_kind": context.subject_kind,
            "subject_id": context.subject_id,
            "subject_name": context.subject_name,
            "agency": context.agency,
            "roles": list(context.roles),
            "purpose": context.purpose,
            "case_number": context.case_number,
            "method": context.method,
            "path": context.path,
            "mou_id": context.mou_id,
            "request_id": str(context.request_id),
        }
        values.update(fields)
        return cls(component=component, event_type=event_type, outcome=outcome, **values)


class DisseminationRecord(BaseModel):
    """Data that left the agency (IACP D.1): to whom, under which MOU, why, and what."""

    record_id: UUID = Field(default_factory=uuid4)
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    recipient_agency: str
    mou_id: str | None = None
    purpose: str | None = None
    case_number: str | None = None
    data_class: str = Field(description="reads, hits or images")
    record_ids: list[str] = Field(default_factory=list, description="ids of what was sent")
    query: dict[str, Any] | None = Field(default=None, description="the query, when ids are many")
    record_count: int
    released_by: str = Field(description="who sent or allowed it (subject id)")
    released_by_agency: str
    request_id: str | None = None


class AuditRefused(ServiceUnavailable):
    """audit-svc answered, and did not take the records: a 503 for the caller's request.

    A queue that resends (an outbox) tells from :attr:`permanent` whether a resend can
    succeed: a 4xx other than a timeout or a rate limit is refused again as it stands.
    """

    def __init__(self, answered_status: int) -> None:
        super().__init__(f"audit log refused the record: HTTP {answered_status}")
        self.answered_status = answered_status

    @property
    def permanent(self) -> bool:
        """True when sending the same records again would be refused again."""
        return refused_for_good(self.answered_status)


def refused_for_good(status: int) -> bool:
    """Whether audit-svc's answer ``status`` refuses a resend too: a 4xx other than a
    timeout (408) or a rate limit (429)."""
    return 400 <= status < 500 and status not in {408, 429}


class AuditClient:
    """Sends events and dissemination records to audit-svc; raises 503 when it cannot."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._urls: dict[str, httpx.URL] = {}

    def _request(self, path: str, content: bytes) -> httpx.Request:
        # Built here, not by ``client.post``: httpx re-parses and merges the URL, headers and
        # cookies of every request it builds, a third of the cost of a gateway request's
        # audit call. The client still sends it (its auth signs the context, its transport).
        url = self._urls.get(path)
        if url is None:
            # Under the base URL, as ``client.post`` merges it (``join`` would drop a base
            # path such as an ingress prefix).
            base = self._client.base_url
            url = base.copy_with(raw_path=base.raw_path + path.lstrip("/").encode("ascii"))
            self._urls[path] = url
        return httpx.Request(
            "POST",
            url,
            content=content,
            headers=_JSON_HEADERS,
            extensions={"timeout": self._client.timeout.as_dict()},
        )

    async def _post(self, path: str, name: str, items: Sequence[BaseModel]) -> dict[str, Any]:
        # Encoded by pydantic (the same JSON as ``model_dump(mode="json")``, several times
        # cheaper than the json module): every gateway request waits for one of these.
        content = b"".join(
            (
                b'{"',
                name.encode(),
                b'":[',
                b",".join(i.model_dump_json().encode() for i in items),
                b"]}",
            )
        )
        if _JSON_NUL in content:
            # audit-svc refuses U+0000 (PostgreSQL cannot store it); the event must still
            # be recorded, so the character is recorded as U+FFFD.
            content = _ESCAPED_NUL.sub(rb"\1\\ufffd", content)
        try:
            response = await self._client.send(self._request(path, content))
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"audit log unavailable: {type(exc).__name__}") from exc
        if response.status_code >= 300:
            raise AuditRefused(response.status_code)
        answer: dict[str, Any] = response.json()
        return answer

    async def record(self, *events: AuditEvent) -> dict[str, Any]:
        """Append events to the access log (the call returns once they are durable)."""
        return await self._post("/internal/v1/events", "events", events)

    async def disseminate(self, *records: DisseminationRecord) -> dict[str, Any]:
        """Append records to the dissemination log."""
        return await self._post("/internal/v1/disseminations", "records", records)
