"""The demo: the whole job of the platform, through the running stack, as its users do it.

1. An administrator sets up governance: officers (one with expired training), a camera on
   an approved deployment, an MOU partner; allowed and refused requests are shown with
   their audit events.
2. Hot lists are imported (an NCIC file and a CSV) holding plates of the dev images.
3. The camera posts the dev images; Triton reads the plates.
4. Alerts arrive on the officer's SSE stream; the officer verifies one, records its
   disposition and flags another as a misread.
5. The officer searches a plate for a case; the MOU partner searches it too (its answer
   is written to the dissemination log) and is refused a purpose outside its MOU.
6. An auditor signs checkpoints of the audit chains through the gateway; the chains and
   the signatures are verified and a transparency summary printed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import httpx

from lpr_common.settings import LprSettings
from lprctl.stack import SERVICES

PURPOSE = "stolen_vehicle"
# Dev images posted by the demo camera; the first few plates go on the hot lists.
DEMO_IMAGES = 12
HOT_PLATES = 6


def plates_dir() -> Path:
    """The dev images: ``LPR_PLATES_DIR`` or ``../shared/data/plates`` beside the repository."""
    configured = os.environ.get("LPR_PLATES_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "plates"


def token(client: httpx.Client, gateway_url: str, username: str, password: str) -> str:
    """Log in with the OAuth2 password flow and return the bearer token."""
    response = client.post(
        f"{gateway_url}/v1/auth/token",
        data={"grant_type": "password", "username": username, "password": password},
    )
    response.raise_for_status()
    access_token: str = response.json()["access_token"]
    return access_token


def _labelled_plates(images_dir: Path, limit: int) -> list[str]:
    plates = []
    for label in sorted(images_dir.glob("*.txt"))[:limit]:
        fields = label.read_text().strip().split("\t")
        if len(fields) > 5:
            plates.append("".join(ch for ch in fields[5].upper() if ch.isalnum()))
    return plates


# Characters OCR and people confuse; the demo's CSV list holds plates typed with the twin,
# so a correct read still hits it and the alert explains the match.
OCR_TWINS = {"0": "O", "1": "I", "2": "Z", "5": "S", "8": "B", "O": "0", "I": "1", "B": "8"}


def with_ocr_twin(plate: str) -> str:
    """The plate with its first confusable character replaced by its twin."""
    for index, character in enumerate(plate):
        if character in OCR_TWINS:
            return plate[:index] + OCR_TWINS[character] + plate[index + 1 :]
    return plate


def run_demo(settings: LprSettings) -> None:
    """Walk through the platform and print what happens."""
    from lprctl.demo_steps.audit import sign_checkpoints, verify_and_report
    from lprctl.demo_steps.gateway import bearer, create_user, login, setup_governance
    from lprctl.demo_steps.hotlist import import_demo_lists, watch_alerts, work_alerts
    from lprctl.demo_steps.recognition import post_dev_images
    from lprctl.demo_steps.search import officer_search, partner_refused, partner_search

    gateway = settings.gateway_url
    us_images = plates_dir() / "us"
    with httpx.Client(timeout=60.0) as client:
        print("\n== the stack ==")
        for spec in SERVICES:
            ready = client.get(f"{spec.url(settings)}/readyz").json()
            print(f"  {spec.name:<12} {ready['status']:<6} {ready['checks']}")

        records: dict[str, Any] = setup_governance(client, gateway, settings.database_url)
        admin = token(client, gateway, **records["administrator"])
        officer = token(client, gateway, **records["officer_current"])

        print("\n== hot lists ==")
        labelled = _labelled_plates(us_images, DEMO_IMAGES)[:HOT_PLATES]
        # Even positions go to the NCIC file as read; odd ones to the CSV, typed with a twin.
        hot = [
            (plate if index % 2 == 0 else with_ocr_twin(plate), "CA")
            for index, plate in enumerate(labelled)
        ]
        import_demo_lists(client, gateway, admin, hot)

        print("\n== reads: the camera posts the dev images, Triton reads the plates ==")
        viewer = {"Authorization": f"Bearer {officer}", "X-LPR-Purpose": PURPOSE}
        post_dev_images(
            client,
            gateway,
            str(records["camera_key"]),
            us_images,
            DEMO_IMAGES,
            viewer_headers=viewer,
            timeout_s=180.0,
        )

        print("\n== alerts on the officer's stream ==")
        # This run's camera only: a database kept from an earlier demo has its alerts too.
        events = watch_alerts(
            client,
            gateway,
            officer,
            count=2,
            timeout_s=90.0,
            camera_id=str(records["camera_id"]),
        )
        alert_ids = [str(event["data"]["alert"]["id"]) for event in events]
        if alert_ids:
            print("\n== the officer works the alerts (IACP C.4, C.5) ==")
            work_alerts(client, gateway, officer, alert_ids[:2])
        else:
            print("  no alert arrived")

        auditor_name = f"auditor-{records['administrator']['username']}"
        auditor_password = secrets.token_urlsafe(16)
        create_user(
            client,
            gateway,
            bearer(admin),
            username=auditor_name,
            password=auditor_password,
            roles=["auditor"],
        )
        auditor = login(client, gateway, auditor_name, auditor_password)

        # Historical search for a case (C.8), then the same plate asked by the MOU partner (D).
        searched = next(
            (
                plate
                for plate in labelled
                if officer_search(client, gateway, officer, plate)["count"] > 0
            ),
            labelled[0],
        )
        client_id = str(records["partner_client_id"])
        secret = str(records["partner_client_secret"])
        partner_search(
            client,
            gateway,
            client_id=client_id,
            client_secret=secret,
            plate=searched,
            auditor=auditor,
        )
        partner_refused(client, gateway, client_id=client_id, client_secret=secret, plate=searched)

        sign_checkpoints(client, gateway, auditor)

        print("\n== deployment results (IACP B.1.e) ==")
        deployment = client.get(
            f"{gateway}/v1/deployments/{records['deployment_id']}", headers=bearer(admin)
        ).json()
        print(
            f"  {deployment['name']}: {deployment['reads_count']} reads, "
            f"{deployment['hits_count']} hits, {deployment['dispositions_count']} dispositions"
        )

    verify_and_report(settings.database_url, settings.data_dir)
    print("\n== demo done ==\n")
