"""A user's view of the running platform, through the gateway: for whole-stack tests.

Everything goes through the gateway's public API with real credentials, as an agency's
own client would, except the first administrator, which only the database can create
(:func:`lpr_gateway.bootstrap.bootstrap_user`). The steps are the demo's
(:mod:`lprctl.demo_steps`), so the demo and the tests exercise the same calls.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import httpx

from lprctl.demo_steps import gateway as gateway_steps
from lprctl.demo_steps import hotlist as hotlist_steps
from lprctl.demo_steps import recognition as recognition_steps

DEFAULT_PURPOSE = "stolen_vehicle"


@dataclass(frozen=True)
class User:
    """A user created for a test, logged in."""

    id: str
    username: str
    password: str
    token: str

    def headers(self, purpose: str | None = DEFAULT_PURPOSE) -> dict[str, str]:
        """Bearer token and, unless None, the purpose of the access (IACP A.1-2)."""
        headers = gateway_steps.bearer(self.token)
        if purpose:
            headers["X-LPR-Purpose"] = purpose
        return headers


@dataclass(frozen=True)
class Camera:
    """A camera registered through the administration API, on its own deployment."""

    id: str
    key: str
    deployment_id: str

    @property
    def headers(self) -> dict[str, str]:
        """The camera's key header."""
        return {recognition_steps.CAMERA_KEY_HEADER: self.key}


class Partner(NamedTuple):
    """A partner agency under an MOU, and the client credentials it calls with."""

    agency: str
    client_id: str
    client_secret: str


def unique(prefix: str) -> str:
    """A name no other test of any session uses."""
    return f"{prefix}-{secrets.token_hex(4)}"


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float, poll_s: float = 0.25) -> Any:
    """Poll ``probe`` until it returns something truthy; raise naming ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(poll_s)
    raise AssertionError(f"{what}: not after {timeout_s:.0f} s (last: {last!r})")


class StackClient:
    """Drives a running stack through its gateway as administrators, officers and cameras."""

    def __init__(
        self, gateway_url: str, database_url: str, *, agency: str, timeout_s: float = 30.0
    ) -> None:
        """Talk to the gateway at ``gateway_url``; bootstrap administrators in ``database_url``."""
        self.gateway_url = gateway_url.rstrip("/")
        self.database_url = database_url
        self.agency = agency
        self.http = httpx.Client(base_url=self.gateway_url, timeout=timeout_s)
        self._admin: User | None = None

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    # --- people -------------------------------------------------------------------------

    def _login(self, user_id: str, username: str, password: str) -> User:
        token = gateway_steps.login(self.http, self.gateway_url, username, password)
        return User(user_id, username, password, token)

    @property
    def admin(self) -> User:
        """An administrator of the agency, bootstrapped in the database on first use."""
        if self._admin is None:
            username, password = unique("admin"), secrets.token_urlsafe(16)
            gateway_steps.bootstrap_administrator(
                self.database_url, self.agency, username, password
            )
            self._admin = self._login("", username, password)
        return self._admin

    def user(self, *roles: str, training_days: int = 365) -> User:
        """Create a user with ``roles`` through the administration API and log it in."""
        username, password = unique("-".join(roles)), secrets.token_urlsafe(16)
        created = gateway_steps.create_user(
            self.http,
            self.gateway_url,
            self.admin.headers(None),
            username=username,
            password=password,
            roles=list(roles),
            training_days=training_days,
        )
        return self._login(str(created["id"]), username, password)

    def camera(self) -> Camera:
        """Register a fixed camera on a new, approved deployment of its own."""
        admin = self.admin.headers(None)
        deployment = gateway_steps.create_deployment(
            self.http, self.gateway_url, admin, name=unique("deployment")
        )
        camera = gateway_steps.register_camera(
            self.http,
            self.gateway_url,
            admin,
            name=unique("camera"),
            deployment_id=str(deployment["id"]),
        )
        return Camera(str(camera["id"]), str(camera["api_key"]), str(deployment["id"]))

    def partner(self, data_classes: Sequence[str] = ("reads", "hits")) -> Partner:
        """A new partner agency with an active MOU (stolen vehicles, 30 days back) and a client."""
        admin = self.admin.headers(None)
        agency = f"NV{secrets.randbelow(10**7):07d}"
        created = self.http.post(
            "/v1/agencies", headers=admin, json={"id": agency, "name": f"Partner {agency}"}
        )
        if created.status_code not in (200, 201):
            raise RuntimeError(f"create agency: HTTP {created.status_code} {created.text}")
        today = datetime.now(UTC).date()
        mou = self.http.post(
            "/v1/mous",
            headers=admin,
            json={
                "partner_agency": agency,
                "status": "active",
                "data_classes": list(data_classes),
                "purposes": ["stolen_vehicle"],
                "max_lookback_days": 30,
                "signed_on": (today - timedelta(days=1)).isoformat(),
                "expires_on": (today + timedelta(days=365)).isoformat(),
            },
        )
        if mou.status_code not in (200, 201):
            raise RuntimeError(f"create MOU: HTTP {mou.status_code} {mou.text}")
        client = self.http.post(f"/v1/mous/{mou.json()['id']}/clients", headers=admin)
        if client.status_code not in (200, 201):
            raise RuntimeError(f"create client: HTTP {client.status_code} {client.text}")
        return Partner(agency, client.json()["client_id"], client.json()["client_secret"])

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        """A deployment record with its results, as an administrator sees it."""
        response = self.http.get(
            f"/v1/deployments/{deployment_id}", headers=self.admin.headers(None)
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    # --- hot lists ----------------------------------------------------------------------

    def hotlist(
        self,
        *,
        source: str = "local",
        category: str = "stolen vehicle",
        priority: int = 10,
        allow_one_edit: bool = False,
    ) -> str:
        """Create a hot list with a unique name; return its id."""
        body = {
            "name": unique(f"{source} list"),
            "source": source,
            "category": category,
            "priority": priority,
            "allow_one_edit": allow_one_edit,
        }
        return hotlist_steps.ensure_list(self.http, self.gateway_url, self.admin.token, body)

    def import_list(
        self, list_id: str, lines: Sequence[str], *, format: str, file_name: str = "list.txt"
    ) -> dict[str, Any]:
        """Import a file (one line per item) as the list's next version; return the report."""
        data = ("\n".join(lines) + "\n").encode()
        return hotlist_steps.import_file(
            self.http, self.gateway_url, self.admin.token, list_id, file_name, data, format
        )

    # --- reads --------------------------------------------------------------------------

    def post_image(self, camera: Camera, image: Path) -> str:
        """Post an image as a read from ``camera``; return the read id."""
        return recognition_steps.post_image(self.http, self.gateway_url, camera.key, image)

    def post_plates(self, camera: Camera, plates: Sequence[tuple[str, str | None]]) -> list[str]:
        """Post reads the camera read on board (``(plate, state)``, no image); return their ids."""
        now = datetime.now(UTC).isoformat()
        reads = [
            {
                "camera_read_id": unique("edge"),
                "captured_at": now,
                "latitude": recognition_steps.LATITUDE,
                "longitude": recognition_steps.LONGITUDE,
                "edge_plate": {"text": plate, "confidence": 0.9, "state": state},
            }
            for plate, state in plates
        ]
        response = self.http.post("/v1/reads/batch", json={"reads": reads}, headers=camera.headers)
        if response.status_code != 202:
            raise AssertionError(f"batch refused: HTTP {response.status_code} {response.text}")
        return [str(r["read_id"]) for r in response.json()["reads"]]

    def read(self, viewer: User, read_id: str) -> dict[str, Any]:
        """A read as ``viewer`` sees it."""
        response = self.http.get(f"/v1/reads/{read_id}", headers=viewer.headers())
        if response.status_code != 200:
            raise AssertionError(f"read {read_id}: HTTP {response.status_code} {response.text}")
        body: dict[str, Any] = response.json()
        return body

    def wait_reads(
        self,
        viewer: User,
        read_ids: Sequence[str],
        *,
        done: Callable[[Mapping[str, Any]], bool] = lambda read: read["status"] != "pending",
        timeout_s: float = 60.0,
    ) -> dict[str, dict[str, Any]]:
        """Poll the reads until ``done`` holds for each (default: not pending); return them."""
        deadline = time.monotonic() + timeout_s
        reads: dict[str, dict[str, Any]] = {}
        while True:
            reads = {read_id: self.read(viewer, read_id) for read_id in read_ids}
            if all(done(read) for read in reads.values()):
                return reads
            if time.monotonic() > deadline:
                waiting = {
                    k: (v["status"], v.get("attempts"), v.get("last_error"))
                    for k, v in reads.items()
                    if not done(v)
                }
                raise AssertionError(f"reads not done after {timeout_s:.0f} s: {waiting}")
            time.sleep(0.3)

    # --- alerts -------------------------------------------------------------------------

    def hits(self, viewer: User, plate: str) -> list[dict[str, Any]]:
        """The agency's alerts raised by reads of ``plate``."""
        response = self.http.get("/v1/hits", params={"plate": plate}, headers=viewer.headers())
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def wait_hits(
        self, viewer: User, plate: str, count: int = 1, timeout_s: float = 30.0
    ) -> list[dict[str, Any]]:
        """Wait until reads of ``plate`` raised at least ``count`` alerts; return them."""

        def enough() -> list[dict[str, Any]] | None:
            found = self.hits(viewer, plate)
            return found if len(found) >= count else None

        alerts: list[dict[str, Any]] = wait_for(f"{count} alert(s) for {plate}", enough, timeout_s)
        return alerts

    def alert(self, viewer: User, alert_id: str) -> dict[str, Any]:
        """One alert with its history."""
        response = self.http.get(f"/v1/alerts/{alert_id}", headers=viewer.headers())
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def step(
        self, viewer: User, alert_id: str, action: str, body: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """One step of the officer's workflow (``acknowledge``, ``verify``, ...), unchecked."""
        return self.http.post(
            f"/v1/alerts/{alert_id}/{action}",
            json=dict(body) if body is not None else None,
            headers=viewer.headers(),
        )

    def stream(
        self,
        viewer: User,
        count: int,
        *,
        last_event_id: str | None,
        camera_id: str | None = None,
        timeout_s: float = 30.0,
    ) -> list[dict[str, Any]]:
        """Read up to ``count`` events of the alert stream (fewer if ``timeout_s`` passes first)."""
        return hotlist_steps.watch_alerts(
            self.http,
            self.gateway_url,
            viewer.token,
            count,
            last_event_id=last_event_id,
            camera_id=camera_id,
            timeout_s=timeout_s,
        )


def random_plate(rng: secrets.SystemRandom | None = None, *, digits: str = "0123456789") -> str:
    """A plate no other test uses: 4 letters and 3 ``digits`` (letters without OCR look-alikes)."""
    pick = rng or secrets.SystemRandom()
    letters = "".join(pick.choice("ACEFHJKMNPRUVWXY") for _ in range(4))
    return letters + "".join(pick.choice(digits) for _ in range(3))
