"""Demo step: hot lists, alerts on the stream, and an officer working them (IACP C.3-C.5).

Everything goes through the gateway with a bearer token, as an agency's own client would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

NCIC_LIST = "Demo NCIC stolen vehicles"
CSV_LIST = "Demo local wanted"
DEFAULT_PURPOSE = "stolen_vehicle"


def _headers(token: str, purpose: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if purpose:
        headers["X-LPR-Purpose"] = purpose
    return headers


def ncic_line(code: str, plate: str, state: str, date_text: str = "20260101") -> str:
    """One line of an NCIC fixed-width extract (list code, NIC, ORI, date, plate, state, ...)."""
    return f"{code}123456789CA0010000{date_text}{plate:<10}{state:<2}2026  2018TOYTCAM  BLK"


def ensure_list(client: httpx.Client, base: str, token: str, body: dict[str, Any]) -> str:
    """The id of the hot list named ``body["name"]``, created from ``body`` when missing."""
    headers = _headers(token)
    lists = client.get(f"{base}/v1/hotlists", headers=headers)
    lists.raise_for_status()
    for hot_list in lists.json():
        if hot_list["name"] == body["name"]:
            list_id: str = hot_list["id"]
            return list_id
    created = client.post(f"{base}/v1/hotlists", json=body, headers=headers)
    created.raise_for_status()
    new_id: str = created.json()["id"]
    return new_id


def import_file(
    client: httpx.Client, base: str, token: str, list_id: str, name: str, data: bytes, format: str
) -> dict[str, Any]:
    """Import a file (``format``: ncic, csv, genetec) as the list's new version; return the report."""
    response = client.post(
        f"{base}/v1/hotlists/{list_id}/imports",
        files={"file": (name, data, "text/plain")},
        data={"format": format},
        headers=_headers(token),
    )
    if response.status_code >= 400:
        raise RuntimeError(f"import of {name} refused: HTTP {response.status_code} {response.text}")
    report: dict[str, Any] = response.json()
    return report


def import_demo_lists(
    client: httpx.Client, gateway_url: str, token: str, plates: list[tuple[str, str]]
) -> None:
    """Write an NCIC file and a CSV holding the given ``(plate, state)`` pairs and import them.

    Plates alternate between the two files (the first, third, ... go to NCIC), so a read of
    any of them raises an alert. The CSV's list allows one-edit matches. ``token`` must be an
    administrator's.
    """
    base = gateway_url.rstrip("/")
    ncic_plates = plates[0::2]
    csv_plates = plates[1::2]
    ncic_id = ensure_list(
        client,
        base,
        token,
        {"name": NCIC_LIST, "source": "NCIC", "category": "stolen vehicle", "priority": 10},
    )
    ncic = "\n".join(ncic_line("V", plate, state) for plate, state in ncic_plates) + "\n"
    report = import_file(client, base, token, ncic_id, "demo-ncic.txt", ncic.encode(), "ncic")
    print(
        f"hot list {NCIC_LIST!r}: version {report['version']}, {report['entry_count']} entries, "
        f"sha256 {report['sha256'][:16]}..."
    )
    if not csv_plates:
        return
    csv_id = ensure_list(
        client,
        base,
        token,
        {
            "name": CSV_LIST,
            "source": "local",
            "category": "wanted person",
            "priority": 20,
            "allow_one_edit": True,
        },
    )
    rows = ["plate,state,reason,case_number"]
    rows += [
        f"{plate},{state},wanted for questioning,DEMO-{i:04d}"
        for i, (plate, state) in enumerate(csv_plates)
    ]
    report = import_file(
        client, base, token, csv_id, "demo-wanted.csv", ("\n".join(rows) + "\n").encode(), "csv"
    )
    print(
        f"hot list {CSV_LIST!r}: version {report['version']}, {report['entry_count']} entries, "
        f"sha256 {report['sha256'][:16]}..."
    )


def _sse_events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    fields: dict[str, str] = {}
    for line in lines:
        if not line:
            if "data" in fields:
                yield {
                    "id": fields.get("id"),
                    "event": fields.get("event", "message"),
                    "data": json.loads(fields["data"]),
                }
            fields = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        fields[key] = fields[key] + "\n" + value if key == "data" and key in fields else value


def watch_alerts(
    client: httpx.Client,
    gateway_url: str,
    token: str,
    count: int,
    *,
    last_event_id: str | None = "0",
    unit_id: str | None = None,
    camera_id: str | None = None,
    timeout_s: float = 60.0,
    purpose: str = DEFAULT_PURPOSE,
) -> list[dict[str, Any]]:
    """Read ``count`` events from ``GET /v1/alerts/stream`` and return them (printing each).

    Args:
        last_event_id: Resume after this event id (``"0"``: from the first event of the
            agency; ``None``: only events from now on).
        unit_id: Only alerts of this unit.
        camera_id: Only alerts of this camera.
        timeout_s: Give up (returning what arrived) after this long.
    """
    params: dict[str, str | int] = {"limit": count}
    if unit_id is not None:
        params["unit_id"] = unit_id
    if camera_id is not None:
        params["camera_id"] = camera_id
    headers = _headers(token, purpose)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    timeout = httpx.Timeout(10.0, read=timeout_s)
    try:
        with client.stream(
            "GET",
            f"{gateway_url.rstrip('/')}/v1/alerts/stream",
            params=params,
            headers=headers,
            timeout=timeout,
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise RuntimeError(
                    f"alert stream refused: HTTP {response.status_code} {response.text}"
                )
            for event in _sse_events(response.iter_lines()):
                alert = event["data"]["alert"]
                print(
                    f"  [{event['id']}] {event['event']}: {alert['explanation']} "
                    f"(list {alert['entry'].get('list_name')}, status {alert['status']})"
                )
                received.append(event)
                if len(received) >= count or time.monotonic() > deadline:
                    break
    except httpx.ReadTimeout:
        pass  # nothing more arrived in time: return what did
    return received


def _step(
    client: httpx.Client, base: str, token: str, alert_id: str, action: str, body: Any, purpose: str
) -> dict[str, Any]:
    response = client.post(
        f"{base}/v1/alerts/{alert_id}/{action}", json=body, headers=_headers(token, purpose)
    )
    if response.status_code >= 400:
        raise RuntimeError(f"{action} refused: HTTP {response.status_code} {response.text}")
    alert: dict[str, Any] = response.json()
    return alert


def work_alerts(
    client: httpx.Client,
    gateway_url: str,
    token: str,
    alert_ids: Sequence[str],
    *,
    purpose: str = DEFAULT_PURPOSE,
) -> None:
    """As an officer: verify the first alert and record its disposition; flag the second as a misread.

    Args:
        alert_ids: At least one alert id (from :func:`watch_alerts` events'
            ``data["alert"]["id"]``); a second one, if given, is flagged as a misread.
    """
    base = gateway_url.rstrip("/")
    if not alert_ids:
        raise ValueError("work_alerts needs at least one alert id")
    first = alert_ids[0]
    _step(client, base, token, first, "acknowledge", {"note": "on my screen"}, purpose)
    _step(
        client,
        base,
        token,
        first,
        "verify",
        {"characters_match": True, "state_matches": True, "note": "compared plate and image"},
        purpose,
    )
    _step(
        client,
        base,
        token,
        first,
        "status-check",
        {"source": "dispatch", "result": "confirmed", "reference": "DEMO-CAD-1"},
        purpose,
    )
    done = _step(
        client,
        base,
        token,
        first,
        "disposition",
        {"code": "stop_made", "note": "vehicle stopped, driver identified"},
        purpose,
    )
    print(f"  alert {first}: verified, status checked, disposition {done['disposition_code']!r}")
    if len(alert_ids) > 1:
        second = alert_ids[1]
        _step(client, base, token, second, "acknowledge", None, purpose)
        _step(
            client,
            base,
            token,
            second,
            "misread",
            {"note": "image shows a different plate"},
            purpose,
        )
        closed = _step(client, base, token, second, "disposition", {"code": "misread"}, purpose)
        print(f"  alert {second}: flagged as misread, disposition {closed['disposition_code']!r}")
