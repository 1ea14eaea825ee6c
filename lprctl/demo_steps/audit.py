"""Demo step: verify both audit chains and print a transparency summary."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lpr_audit.reports.transparency import summary_lines
from lpr_audit.tools import describe, load_keys, transparency_from_database, verify_database


def verify_and_report(database_url: str, data_dir: Path) -> None:
    """Verify the access and dissemination logs, then print the last day's transparency counts."""
    keys = load_keys(data_dir / "keys")
    print("\n== audit: verify the chains ==")
    for chain in ("access", "dissemination"):
        report = asyncio.run(verify_database(database_url, keys, chain=chain))
        print("\n".join(describe(f"{chain} log", report)))
    print("== transparency report (last 24 h, aggregate counts, no plates) ==")
    end = datetime.now(UTC) + timedelta(minutes=1)
    counts = asyncio.run(transparency_from_database(database_url, end - timedelta(days=1), end))
    print("\n".join(f"  {line}" for line in summary_lines(counts)))
