"""Ports handed to a stack are distinct, and a service is ready only when it answers as itself."""

from __future__ import annotations

from pathlib import Path

import httpx

from lprctl.postgres import free_ports
from lprctl.stack import Component, _is


def test_ports_for_one_stack_are_distinct() -> None:
    for _ in range(20):
        ports = free_ports(7)
        assert len(set(ports)) == 7


def test_a_readiness_answer_from_another_service_does_not_count(tmp_path: Path) -> None:
    gateway = Component("gateway", ["true"], {}, tmp_path / "gateway.log", "http://127.0.0.1:1")
    theirs = httpx.Response(200, json={"status": "ready", "service": "recognition"})
    ours = httpx.Response(200, json={"status": "ready", "service": "gateway"})
    assert not _is(gateway, theirs)
    assert _is(gateway, ours)
    assert not _is(gateway, httpx.Response(200, text="ready"))
