"""``lprctl retention run``: run the read retention purge now, with its receipts."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import httpx

from lpr_common.context import service_context_auth
from lpr_common.db import build_engine
from lpr_common.service import service_signer
from lpr_recognition.blobs import LocalBlobStore
from lpr_recognition.retention.config import RetentionConfig
from lpr_recognition.retention.job import RetentionJob, RunResult
from lpr_recognition.settings import Settings


async def _run(settings: Settings) -> RunResult:
    signer = service_signer(settings.keys_dir, "recognition")
    engine = build_engine(settings.database_url, pool_size=2)
    try:
        async with httpx.AsyncClient(
            base_url=settings.audit_url, auth=service_context_auth(signer, "recognition")
        ) as audit:
            job = RetentionJob(
                engine=engine,
                audit=audit,
                blobs=LocalBlobStore(settings.blob_dir),
                config=RetentionConfig(),
            )
            return await job.run(trigger="lprctl", triggered_by="lprctl")
    finally:
        await engine.dispose()


def cmd_run(args: argparse.Namespace) -> int:
    """Purge now (the periods come from audit-svc); exit 0 when completed, 1 otherwise."""
    result = asyncio.run(_run(Settings()))
    if args.json:
        body: dict[str, Any] = {
            "run_id": str(result.run_id),
            "outcome": result.outcome,
            "detail": result.detail,
            "receipts": result.receipts,
            "first_seq": result.first_seq,
            "last_seq": result.last_seq,
            "blobs_deleted": result.blobs_deleted,
        }
        print(json.dumps(body, indent=2))
    else:
        print(f"retention run {result.run_id}: {result.outcome} ({result.detail})")
        for receipt in result.receipts:
            print(
                f"  {receipt['retention_class']}: {receipt['deleted_count']} deleted, "
                f"{receipt['preserved_count']} preserved, sha256 {receipt['deleted_ids_sha256']}"
            )
        if result.first_seq is not None:
            print(f"  receipts in the access log at seq {result.first_seq}..{result.last_seq}")
        print(f"  blobs deleted: {result.blobs_deleted}")
    return 0 if result.outcome == "completed" else 1


def register(commands: Any) -> None:
    """Add ``lprctl retention``."""
    retention = commands.add_parser("retention", help="purge expired reads, with receipts")
    actions = retention.add_subparsers(dest="retention_command", required=True)
    run = actions.add_parser(
        "run", help="run the purge now against DATABASE_URL; receipts go to audit-svc"
    )
    run.add_argument("--json", action="store_true", help="print the run as JSON")
    run.set_defaults(handler=cmd_run)
