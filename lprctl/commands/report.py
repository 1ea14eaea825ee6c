"""``lprctl report transparency``: aggregate counts, no plates, from the database."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lpr_audit.reports.html import render
from lpr_audit.reports.transparency import summary_lines
from lpr_audit.tools import transparency_from_database
from lpr_common.settings import LprSettings


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def cmd_transparency(args: argparse.Namespace) -> int:
    """Print the report as text, JSON or HTML (or write it to ``--output``)."""
    end = args.to or datetime.now(UTC)
    start = args.start or end - timedelta(days=365)
    if end <= start:
        print("lprctl report transparency: --to must be after --from", file=sys.stderr)
        return 2
    settings = LprSettings()
    report = asyncio.run(transparency_from_database(settings.database_url, start, end))
    if args.format == "json":
        body = report.model_dump_json(indent=2)
    elif args.format == "html":
        body = render(report, str(getattr(settings, "agency", "")))
    else:
        body = "\n".join(summary_lines(report))
    if args.output:
        Path(args.output).write_text(body + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(body)
    return 0


def register(commands: Any) -> None:
    """Add ``lprctl report``."""
    report = commands.add_parser("report", help="reports from the audit logs")
    kinds = report.add_subparsers(dest="report_command", required=True)
    transparency = kinds.add_parser(
        "transparency", help="aggregate counts for a period (reads, hits, searches, sharing)"
    )
    transparency.add_argument("--from", dest="start", type=_moment, default=None)
    transparency.add_argument("--to", type=_moment, default=None)
    transparency.add_argument("--format", choices=["text", "json", "html"], default="text")
    transparency.add_argument("--output", default=None, help="write to this file")
    transparency.set_defaults(handler=cmd_transparency)
