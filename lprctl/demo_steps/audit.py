"""Demo step: an auditor signs checkpoints, both audit chains are verified, and a summary printed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from lpr_audit.reports.transparency import summary_lines
from lpr_audit.tools import describe, load_keys, transparency_from_database, verify_database

CHAINS = ("access", "dissemination")


def sign_checkpoints(client: httpx.Client, gateway_url: str, auditor_token: str) -> list[str]:
    """As an auditor, sign a checkpoint of each chain's tail through the gateway.

    Returns the chains signed (an empty chain has nothing to sign and is skipped).
    """
    print("\n== audit: an auditor signs checkpoints (POST /v1/audit/checkpoints) ==")
    signed = []
    for chain in CHAINS:
        response = client.post(
            f"{gateway_url.rstrip('/')}/v1/audit/checkpoints",
            json={"chain": chain},
            headers={"Authorization": f"Bearer {auditor_token}"},
        )
        if response.status_code == 404:
            print(f"  {chain} log: empty, nothing to sign")
            continue
        if response.status_code != 201:
            raise RuntimeError(
                f"checkpoint of the {chain} log refused: HTTP {response.status_code} "
                f"{response.text}"
            )
        checkpoint = response.json()
        print(
            f"  {chain} log: checkpoint at seq {checkpoint['seq']} signed by key "
            f"{checkpoint['key_id']} (hash {checkpoint['hash'][:16]}...)"
        )
        signed.append(chain)
    return signed


def verify_and_report(database_url: str, data_dir: Path) -> None:
    """Verify the access and dissemination logs, then print the last day's transparency counts."""
    keys = load_keys(data_dir / "keys")
    print("\n== audit: verify the chains ==")
    for chain in CHAINS:
        report = asyncio.run(verify_database(database_url, keys, chain=chain))
        print("\n".join(describe(f"{chain} log", report)))
    print("== transparency report (last 24 h, aggregate counts, no plates) ==")
    end = datetime.now(UTC) + timedelta(minutes=1)
    counts = asyncio.run(transparency_from_database(database_url, end - timedelta(days=1), end))
    print("\n".join(f"  {line}" for line in summary_lines(counts)))
