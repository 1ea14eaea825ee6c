"""Demo step: historical search for a case (IACP C.8) and the partner (MOU) API (IACP D).

- :func:`officer_search`: an officer searches a plate for a case; results are FOUO.
- :func:`partner_search`: a partner agency gets a token with its client credentials and
  searches under its MOU; then the dissemination record and the audit events of that
  search are shown, as an auditor sees them.
- :func:`partner_refused`: the partner asks for a purpose its MOU does not cover and is
  refused with a problem naming the rule.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

DEFAULT_CASE = "PD-2026-000123"


def _window(days: float) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "start": (now - timedelta(days=days)).isoformat(),
        "end": (now + timedelta(minutes=1)).isoformat(),
    }


def _problem(response: httpx.Response) -> str:
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        body = response.json()
        return f"{body.get('rule') or body.get('title')}: {body.get('detail')}"
    return response.text[:200]


def _print_results(page: dict[str, Any], response: httpx.Response) -> None:
    print(
        f"  {page['count']} result(s), marking {page['marking']} "
        f"(header X-LPR-Marking: {response.headers.get('X-LPR-Marking')}), "
        f"audit event {response.headers.get('X-LPR-Audit-Event')}"
    )
    for result in page["results"][:5]:
        print(
            f"    {result['captured_at'][:19]}  {result['plate']:<10} {result['state'] or '--'}"
            f"  conf {result['confidence']:.2f}  camera {result['camera_id'][:8]}"
            f"  ({result['latitude']:.4f}, {result['longitude']:.4f})  image {result['links']['image']}"
        )


def search_body(
    plate: str, *, purpose: str, case_number: str, days: float, match: str | None = None
) -> dict[str, Any]:
    """A search request body."""
    body: dict[str, Any] = {
        "purpose": purpose,
        "case_number": case_number,
        "plate": plate,
        "time_range": _window(days),
    }
    if match is not None:
        body["match"] = match
    return body


def officer_search(
    client: httpx.Client,
    gateway_url: str,
    officer_token: str,
    plate: str,
    *,
    purpose: str = "stolen_vehicle",
    case_number: str = DEFAULT_CASE,
    days: float = 7,
) -> dict[str, Any]:
    """An officer searches a plate for a case (exact, then OCR-equivalent); return the page."""
    print(f"\n== search: an officer searches {plate} for case {case_number} ({purpose}) ==")
    headers = {"Authorization": f"Bearer {officer_token}"}
    response = client.post(
        f"{gateway_url}/v1/reads/search",
        headers=headers,
        json=search_body(plate, purpose=purpose, case_number=case_number, days=days),
    )
    if response.status_code != 200:
        raise RuntimeError(f"officer search: HTTP {response.status_code} {_problem(response)}")
    page: dict[str, Any] = response.json()
    _print_results(page, response)
    equivalent = client.post(
        f"{gateway_url}/v1/reads/search",
        headers=headers,
        json=search_body(
            plate, purpose=purpose, case_number=case_number, days=days, match="ocr_equivalent"
        ),
    )
    if equivalent.status_code == 200:
        print(f"  OCR-equivalent search: {equivalent.json()['count']} result(s)")
    return page


def partner_token(client: httpx.Client, gateway_url: str, client_id: str, secret: str) -> str:
    """A partner's bearer token from the OAuth2 client-credentials grant."""
    response = client.post(
        f"{gateway_url}/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    if response.status_code != 200:
        raise RuntimeError(f"partner token: HTTP {response.status_code} {_problem(response)}")
    token: str = response.json()["access_token"]
    return token


def auditor_token(client: httpx.Client, gateway_url: str, admin_token: str) -> str:
    """Create a trained auditor through the administration API and log it in."""
    username, password = f"auditor-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    created = client.post(
        f"{gateway_url}/v1/users",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={
            "username": username,
            "password": password,
            "roles": ["auditor"],
            "training_expires_at": (datetime.now(UTC) + timedelta(days=365)).isoformat(),
        },
    )
    if created.status_code >= 300:
        raise RuntimeError(f"create auditor: HTTP {created.status_code} {_problem(created)}")
    response = client.post(
        f"{gateway_url}/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def partner_search(
    client: httpx.Client,
    gateway_url: str,
    *,
    client_id: str,
    client_secret: str,
    plate: str,
    auditor: str,
    purpose: str = "stolen_vehicle",
    case_number: str = DEFAULT_CASE,
    days: float = 7,
) -> dict[str, Any]:
    """A partner searches under its MOU; show the dissemination record and audit events.

    Args:
        auditor: An auditor's bearer token (reads the dissemination and access logs).

    Returns:
        ``{"page", "dissemination", "events"}``: the search answer, the dissemination
        record of this answer and the access-log events of the partner's case.
    """
    print(f"\n== partner API: {client_id} searches {plate} under its MOU ==")
    token = partner_token(client, gateway_url, client_id, client_secret)
    response = client.post(
        f"{gateway_url}/v1/reads/search",
        headers={"Authorization": f"Bearer {token}"},
        json=search_body(plate, purpose=purpose, case_number=case_number, days=days),
    )
    if response.status_code != 200:
        raise RuntimeError(f"partner search: HTTP {response.status_code} {_problem(response)}")
    page: dict[str, Any] = response.json()
    _print_results(page, response)
    request_id = response.headers.get("X-Request-Id", "")
    audit = {"Authorization": f"Bearer {auditor}"}
    released = client.get(
        f"{gateway_url}/v1/dissemination",
        headers=audit,
        params={"case_number": case_number, "limit": 100},
    )
    if released.status_code != 200:
        raise RuntimeError(f"dissemination log: HTTP {released.status_code} {_problem(released)}")
    items = released.json().get("items", [])
    records = [_fields(item) for item in items]
    record = next((r for r in records if r.get("request_id") == request_id), None)
    if record is None and records:
        record = records[-1]
    print("  dissemination record (secondary dissemination log, IACP D.1):")
    if record is not None:
        print(
            f"    to {record.get('recipient_agency')} under MOU {record.get('mou_id')}: "
            f"{record.get('record_count')} {record.get('data_class')} for "
            f"{record.get('purpose')} / {record.get('case_number')}; "
            f"ids {', '.join(str(i)[:8] for i in record.get('record_ids') or [])}"
        )
    else:
        print("    none found")
    events_answer = client.get(
        f"{gateway_url}/v1/audit/events",
        headers=audit,
        params={"case_number": case_number, "limit": 1000},
    )
    events = []
    if events_answer.status_code == 200:
        events = [_fields(item) for item in events_answer.json().get("items", [])]
    partner_events = [e for e in events if e.get("subject_id") == client_id]
    print(f"  audit events of the partner for case {case_number}:")
    for event in partner_events[-5:]:
        print(
            f"    {str(event.get('occurred_at'))[:19]}  {event.get('event_type')}  "
            f"{event.get('outcome')}  {event.get('resource')}:{event.get('action')}  "
            f"rule {event.get('rule')}"
            + (
                f"  results {event['result_count']}"
                if event.get("result_count") is not None
                else ""
            )
        )
    return {"page": page, "dissemination": record, "events": partner_events}


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    fields = item.get("fields", item)
    return fields if isinstance(fields, dict) else {}


def partner_refused(
    client: httpx.Client,
    gateway_url: str,
    *,
    client_id: str,
    client_secret: str,
    plate: str,
    purpose: str = "wanted_person",
    case_number: str = DEFAULT_CASE,
) -> dict[str, Any]:
    """The partner asks for a purpose outside its MOU; return the refusal (status, problem)."""
    print(f"\n== partner API: a search for {purpose!r}, a purpose outside the MOU ==")
    token = partner_token(client, gateway_url, client_id, client_secret)
    response = client.post(
        f"{gateway_url}/v1/reads/search",
        headers={"Authorization": f"Bearer {token}"},
        json=search_body(plate, purpose=purpose, case_number=case_number, days=7),
    )
    problem: dict[str, Any] = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/problem+json")
        else {}
    )
    print(
        f"  HTTP {response.status_code}  rule {problem.get('rule')} (IACP {problem.get('clause')}): "
        f"{problem.get('detail')}; audit event {response.headers.get('X-LPR-Audit-Event')}"
    )
    return {"status": response.status_code, "problem": problem}
