"""The demo: exercise, through the running stack, what the platform does so far."""

from __future__ import annotations

import httpx

from lpr_common.settings import LprSettings
from lprctl.stack import SERVICES


def run_demo(settings: LprSettings) -> None:
    """Walk through the platform and print what happens."""
    print("\n== demo ==")
    with httpx.Client(timeout=10.0) as client:
        for spec in SERVICES:
            url = spec.url(settings)
            ready = client.get(f"{url}/readyz").json()
            openapi = client.get(f"{url}/openapi.json").json()
            print(
                f"{spec.name:<12} ready={ready['status']:<6} checks={ready['checks']}  api='{openapi['info']['title']}'"
            )
    print("== demo done ==\n")
