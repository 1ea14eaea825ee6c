"""Demo step: governance records, then allowed and refused requests with their audit events.

Everything after the first administrator goes through the gateway's API, under the policy.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from lpr_common.settings import LprSettings

PARTNER_AGENCY = "NV0020000"


def _check(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise RuntimeError(f"{what}: HTTP {response.status_code} {response.text}")
    body: dict[str, Any] = response.json()
    return body


def _token(client: httpx.Client, gateway_url: str, **form: str) -> str:
    response = client.post(f"{gateway_url}/v1/auth/token", data=form)
    return str(_check(response, "token")["access_token"])


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of a bearer token."""
    return {"Authorization": f"Bearer {token}"}


def login(client: httpx.Client, gateway_url: str, username: str, password: str) -> str:
    """Log a user in with the OAuth2 password flow; return the access token."""
    return _token(client, gateway_url, grant_type="password", username=username, password=password)


def bootstrap_administrator(database_url: str, agency: str, username: str, password: str) -> None:
    """Create the first administrator straight in the database (nothing else can)."""
    from lpr_gateway.bootstrap import bootstrap_user

    bootstrap_user(
        database_url,
        username=username,
        password=password,
        roles=["administrator"],
        agency=agency,
        training_expires_at=datetime.now(UTC) + timedelta(days=365),
    )


def create_user(
    client: httpx.Client,
    gateway_url: str,
    admin: dict[str, str],
    *,
    username: str,
    password: str,
    roles: list[str],
    training_days: int = 365,
) -> dict[str, Any]:
    """Create a user through the administration API, trained until ``training_days`` from now."""
    expires = datetime.now(UTC) + timedelta(days=training_days)
    return _check(
        client.post(
            f"{gateway_url}/v1/users",
            headers=admin,
            json={
                "username": username,
                "password": password,
                "roles": roles,
                "training_expires_at": expires.isoformat(),
            },
        ),
        f"create user {username}",
    )


def create_deployment(
    client: httpx.Client, gateway_url: str, admin: dict[str, str], *, name: str
) -> dict[str, Any]:
    """Create a fixed-location deployment running from an hour ago for 90 days."""
    now = datetime.now(UTC)
    return _check(
        client.post(
            f"{gateway_url}/v1/deployments",
            headers=admin,
            json={
                "name": name,
                "kind": "location",
                "location": "Main St & 1st Ave",
                "purpose": "stolen vehicles and AMBER alerts on the corridor",
                "starts_at": (now - timedelta(hours=1)).isoformat(),
                "ends_at": (now + timedelta(days=90)).isoformat(),
            },
        ),
        "create deployment",
    )


def register_camera(
    client: httpx.Client,
    gateway_url: str,
    admin: dict[str, str],
    *,
    name: str,
    deployment_id: str,
    kind: str = "fixed",
) -> dict[str, Any]:
    """Register a camera on a deployment; the answer holds its key (``api_key``), shown once."""
    return _check(
        client.post(
            f"{gateway_url}/v1/cameras",
            headers=admin,
            json={"name": name, "kind": kind, "deployment_id": deployment_id},
        ),
        "register camera",
    )


def _show(label: str, response: httpx.Response) -> dict[str, object]:
    """Print one request's outcome and the audit event that recorded its decision."""
    rule = "-"
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        problem = response.json()
        rule = f"{problem.get('rule', problem.get('title'))} ({problem.get('detail')})"
    if response.status_code in (401, 403, 413, 423):
        outcome = "refused"
    else:
        outcome = "error" if response.status_code >= 500 else "allowed"
    event = response.headers.get("X-LPR-Audit-Event", "-")
    print(f"  {label:<58} {response.status_code}  {outcome:<8} audit event {event}  {rule}")
    return {
        "request": label,
        "status": response.status_code,
        "audit_event": event,
        "rule": rule,
    }


def setup_governance(
    client: httpx.Client, gateway_url: str, database_url: str
) -> dict[str, object]:
    """Create the governance records of the demo and show decisions.

    Creates (the first administrator straight in the database, the rest through the API):
    an administrator, an officer with current training, an officer with expired training,
    a camera (its key), an approved deployment and an MOU partner (client credentials).
    """
    settings = LprSettings()
    agency = settings.agency
    suffix = secrets.token_hex(3)
    now = datetime.now(UTC)
    print("\n== gateway: governance ==")
    admin_name, admin_password = f"admin-{suffix}", secrets.token_urlsafe(16)
    bootstrap_administrator(database_url, agency, admin_name, admin_password)
    admin = bearer(login(client, gateway_url, admin_name, admin_password))
    print(f"  administrator {admin_name} bootstrapped and logged in")

    officers: dict[str, dict[str, str]] = {}
    for label, days in (("current", 365), ("expired", -1)):
        username, password = f"officer-{label}-{suffix}", secrets.token_urlsafe(16)
        create_user(
            client,
            gateway_url,
            admin,
            username=username,
            password=password,
            roles=["officer"],
            training_days=days,
        )
        officers[label] = {"username": username, "password": password}
        print(f"  officer {username}: training {label}")

    deployment = create_deployment(client, gateway_url, admin, name=f"Main St corridor {suffix}")
    camera = register_camera(
        client,
        gateway_url,
        admin,
        name=f"Main St fixed {suffix}",
        deployment_id=deployment["id"],
    )
    print(f"  deployment {deployment['id']} ({deployment['status']}), camera {camera['id']}")

    client.post(
        f"{gateway_url}/v1/agencies",
        headers=admin,
        json={"id": PARTNER_AGENCY, "name": "Neighbouring County Sheriff"},
    )
    mou = _check(
        client.post(
            f"{gateway_url}/v1/mous",
            headers=admin,
            json={
                "partner_agency": PARTNER_AGENCY,
                "status": "active",
                "data_classes": ["reads", "hits"],
                "purposes": ["stolen_vehicle", "amber_alert"],
                "max_lookback_days": 30,
                "signed_on": (now - timedelta(days=1)).date().isoformat(),
                "expires_on": (now + timedelta(days=365)).date().isoformat(),
                "contact": "records@partner.example.gov",
            },
        ),
        "create MOU",
    )
    partner = _check(
        client.post(f"{gateway_url}/v1/mous/{mou['id']}/clients", headers=admin),
        "create partner client",
    )
    print(f"  MOU {mou['id']} with {PARTNER_AGENCY}, partner client {partner['client_id']}")

    current = {
        "Authorization": "Bearer "
        + _token(client, gateway_url, grant_type="password", **officers["current"])
    }
    expired = {
        "Authorization": "Bearer "
        + _token(client, gateway_url, grant_type="password", **officers["expired"])
    }
    partner_auth = {
        "Authorization": "Bearer "
        + _token(
            client,
            gateway_url,
            grant_type="client_credentials",
            client_id=partner["client_id"],
            client_secret=partner["client_secret"],
        )
    }
    window = {
        "start": (now - timedelta(days=7)).isoformat(),
        "end": now.isoformat(),
    }
    print("\n== gateway: decisions (each recorded as an access.decision audit event) ==")
    decisions = [
        _show(
            "officer (trained) lists cameras",
            client.get(f"{gateway_url}/v1/cameras", headers=current),
        ),
        _show(
            "officer (training expired) lists cameras",
            client.get(f"{gateway_url}/v1/cameras", headers=expired),
        ),
        _show(
            "officer (trained) creates a user",
            client.post(
                f"{gateway_url}/v1/users",
                headers=current,
                json={"username": f"x-{suffix}", "roles": ["officer"]},
            ),
        ),
        _show(
            "officer searches with a vague purpose",
            client.post(
                f"{gateway_url}/v1/reads/search",
                headers=current,
                json={
                    "purpose": "law enforcement",
                    "case_number": "PD-2026-000123",
                    "plate": "ABC123",
                    "time_range": window,
                },
            ),
        ),
        _show(
            "partner searches for a purpose outside its MOU",
            client.post(
                f"{gateway_url}/v1/reads/search",
                headers=partner_auth,
                json={
                    "purpose": "wanted_person",
                    "case_number": "PD-2026-000123",
                    "plate": "ABC123",
                    "time_range": window,
                },
            ),
        ),
        _show(
            "partner asks for images its MOU excludes",
            client.get(
                f"{gateway_url}/v1/reads/00000000-0000-4000-8000-000000000000/image",
                headers={**partner_auth, "X-LPR-Purpose": "stolen_vehicle"},
            ),
        ),
        _show(
            "unknown camera key posts a read",
            client.post(
                f"{gateway_url}/v1/reads", headers={"X-Camera-Key": "lprcam_nobody"}, json={}
            ),
        ),
        _show("request without credentials", client.get(f"{gateway_url}/v1/users")),
    ]
    return {
        "administrator": {"username": admin_name, "password": admin_password},
        "officer_current": officers["current"],
        "officer_expired": officers["expired"],
        "deployment_id": deployment["id"],
        "camera_id": camera["id"],
        "camera_key": camera["api_key"],
        "mou_id": mou["id"],
        "partner_client_id": partner["client_id"],
        "partner_client_secret": partner["client_secret"],
        "decisions": decisions,
    }
