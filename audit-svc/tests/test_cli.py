"""``lprctl audit verify``, ``lprctl report transparency`` and the demo step."""

from __future__ import annotations

import asyncio
import io
import json
import os
import zipfile
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import httpx
import pytest

from lprctl.demo_steps.audit import verify_and_report
from lprctl.main import build_parser

ServiceHeaders = Callable[[str, str], dict[str, str]]


async def lprctl(*argv: str) -> tuple[int, str]:
    """Run an lprctl command in a thread (it runs its own event loop); return code and output."""
    args = build_parser().parse_args(list(argv))
    output = io.StringIO()

    def run() -> int:
        with redirect_stdout(output):
            code: int = args.handler(args)
            return code

    code = await asyncio.to_thread(run)
    return code, output.getvalue()


async def append(client: httpx.AsyncClient, headers: ServiceHeaders, count: int) -> dict[str, Any]:
    path = "/internal/v1/events"
    events = [
        {"component": "gateway", "event_type": "auth.login", "outcome": "success"}
        for _ in range(count)
    ]
    response = await client.post(path, json={"events": events}, headers=headers("POST", path))
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


async def test_verify_a_bundle_offline_and_catch_a_deleted_record(
    client: httpx.AsyncClient,
    service_headers: ServiceHeaders,
    context_headers: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    landed = await append(client, service_headers, 5)
    path = "/v1/audit/exports"
    bundle = await client.get(
        path,
        params={"from_seq": landed["first_seq"], "to_seq": landed["last_seq"]},
        headers=context_headers("GET", path),
    )
    assert bundle.status_code == 200, bundle.text
    good = tmp_path / "good.zip"
    good.write_bytes(bundle.content)
    code, output = await lprctl("audit", "verify", "--bundle", str(good))
    assert code == 0, output
    assert "result: OK" in output

    # Drop the third record from the bundle, as an exporter hiding something might.
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(good) as original, zipfile.ZipFile(damaged, "w") as copy:
        for name in original.namelist():
            data = original.read(name)
            if name == "records.jsonl":
                lines = data.split(b"\n")
                data = b"\n".join(lines[:2] + lines[3:])
            copy.writestr(name, data)
    code, output = await lprctl("audit", "verify", "--bundle", str(damaged), "--json")
    assert code == 1
    report = json.loads(output)
    assert report["first_break"]["kind"] == "deleted"
    assert report["first_break"]["seq"] == landed["first_seq"] + 2


async def test_verify_the_database_range_and_report_missing_records(
    client: httpx.AsyncClient, service_headers: ServiceHeaders
) -> None:
    landed = await append(client, service_headers, 3)
    first, last = str(landed["first_seq"]), str(landed["last_seq"])
    code, output = await lprctl("audit", "verify", "--from", first, "--to", last)
    assert code == 0, output
    assert "3 records checked" in output
    beyond = str(landed["last_seq"] + 1000)
    code, output = await lprctl("audit", "verify", "--from", first, "--to", beyond)
    assert code == 1
    assert "deleted" in output


@pytest.mark.usefixtures("service_env")
async def test_transparency_report_and_demo_step(
    client: httpx.AsyncClient, service_headers: ServiceHeaders, data_dir: Path
) -> None:
    await append(client, service_headers, 1)
    code, output = await lprctl("report", "transparency", "--format", "json")
    assert code == 0
    assert {"reads", "searches_by_purpose", "sharing_by_recipient_agency"} <= set(
        json.loads(output)
    )
    database_url = os.environ["DATABASE_URL"]
    printed = io.StringIO()

    def run() -> None:
        with redirect_stdout(printed):
            verify_and_report(database_url, data_dir)

    await asyncio.to_thread(run)
    text = printed.getvalue()
    assert "access log:" in text
    assert "dissemination log:" in text
    assert "searches by purpose:" in text
