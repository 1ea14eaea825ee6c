"""What ``lprctl audit`` and ``lprctl report`` run: verification and reports from a database URL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lpr_audit.chain import VerificationReport, load_public_keys_pem
from lpr_audit.ledger import repository
from lpr_audit.ledger.chains import CHAINS
from lpr_audit.ledger.service import trusted_public_keys
from lpr_audit.reports.transparency import TransparencyReport, build_report
from lpr_common.db import build_engine


def load_keys(keys_dir: Path, key_file: Path | None = None) -> list[Ed25519PublicKey]:
    """The trusted checkpoint keys: ``key_file`` if given, else the keys directory's."""
    if key_file is not None:
        return load_public_keys_pem(key_file.read_bytes())
    return trusted_public_keys(keys_dir)


async def verify_database(
    database_url: str,
    public_keys: Sequence[Ed25519PublicKey],
    *,
    chain: str = "access",
    first: int | None = None,
    last: int | None = None,
) -> VerificationReport:
    """Verify a stored chain (read only) and return the report."""
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            verified = await repository.verify_stored(
                connection, CHAINS[chain], public_keys, first=first, last=last
            )
    finally:
        await engine.dispose()
    return verified.report


async def transparency_from_database(
    database_url: str, start: datetime, end: datetime
) -> TransparencyReport:
    """Build the transparency report straight from the database (read only)."""
    engine = build_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            return await build_report(connection, start, end)
    finally:
        await engine.dispose()


def describe(label: str, report: VerificationReport) -> list[str]:
    """The verification report in words, first broken link first."""
    lines: list[str] = []
    if report.checked:
        lines.append(
            f"{label}: {report.checked} records checked (seq {report.first_seq}..{report.last_seq})"
        )
    else:
        lines.append(f"{label}: no records")
    if report.first_break is None:
        lines.append("  links: intact")
    else:
        brk = report.first_break
        lines.append(f"  FIRST BROKEN LINK at seq {brk.seq}: {brk.kind.value} ({brk.detail})")
    attested = "none" if report.attested_through is None else f"seq {report.attested_through}"
    lines.append(
        f"  checkpoints: {report.checkpoints_verified} signatures verified, attested through "
        f"{attested}; signing keys {', '.join(report.key_ids) or 'none'}"
    )
    for problem in report.checkpoint_problems:
        lines.append(
            f"  CHECKPOINT PROBLEM at seq {problem.seq}: {problem.kind.value} ({problem.detail})"
        )
    lines.append(f"  result: {'OK' if report.ok else 'FAILED'}")
    return lines
