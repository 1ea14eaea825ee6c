"""``lprctl audit verify``: check the access or dissemination log, in the database or a bundle."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from lpr_audit.chain import BundleError, KeyFileError, read_bundle, verify_bundle
from lpr_audit.tools import describe, load_keys, verify_database
from lpr_common.settings import LprSettings


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify and print the report; exit 0 when intact, 1 when not, 2 on a usage error."""
    try:
        if args.bundle is not None:
            data = Path(args.bundle).read_bytes()
            trusted = load_keys(Path(), Path(args.key)) if args.key else None
            report = verify_bundle(data, trusted_public_keys=trusted)
            manifest = read_bundle(data).manifest
            label = f"bundle {args.bundle} ({manifest.get('records_format')})"
        else:
            settings = LprSettings()
            keys = load_keys(settings.keys_dir, Path(args.key) if args.key else None)
            report = asyncio.run(
                verify_database(
                    settings.database_url,
                    keys,
                    chain=args.chain,
                    first=args.from_seq,
                    last=args.to_seq,
                )
            )
            label = f"{args.chain} log"
    except (BundleError, KeyFileError, OSError, ValueError) as error:
        print(f"lprctl audit verify: {error}", file=sys.stderr)
        return 2
    if args.json:
        body: dict[str, Any] = {"source": label, **report.to_json()}
        print(json.dumps(body, indent=2))
    else:
        print("\n".join(describe(label, report)))
        if args.bundle is not None and not args.key:
            print("  note: compare the signing key ids with the key the agency publishes")
    return 0 if report.ok else 1


def register(commands: Any) -> None:
    """Add ``lprctl audit``."""
    audit = commands.add_parser("audit", help="verify the audit logs")
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser(
        "verify", help="check every link and checkpoint signature; exit 1 if anything is wrong"
    )
    verify.add_argument("--chain", choices=["access", "dissemination"], default="access")
    verify.add_argument("--from", dest="from_seq", type=int, default=None, help="first seq")
    verify.add_argument("--to", dest="to_seq", type=int, default=None, help="last seq")
    verify.add_argument("--bundle", default=None, help="an export bundle; offline, no database")
    verify.add_argument("--key", default=None, help="PEM file of the trusted public key(s)")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=cmd_verify)
