"""The whole platform started as real processes answers ready on every service."""

from __future__ import annotations

import httpx
import pytest

from lprctl.pytest_plugin import RunningStack
from lprctl.stack import SERVICES


@pytest.mark.slow
def test_every_service_is_ready(running_stack: RunningStack) -> None:
    with httpx.Client(timeout=5.0) as client:
        for spec in SERVICES:
            response = client.get(f"{running_stack.url(spec.name)}/readyz")
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "ready"
