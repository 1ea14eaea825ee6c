"""``lprctl admin ...``: bootstrap the gateway's first users straight into the database."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from datetime import UTC, datetime, time
from typing import Any

from lpr_common.settings import LprSettings


def _expiry(text: str) -> datetime:
    """Parse ``2027-06-30`` (end of that day, UTC) or a full ISO 8601 instant."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or ISO 8601 time: {text!r}")
    if len(text) == 10:
        parsed = datetime.combine(parsed.date(), time(23, 59, 59))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cmd_create_user(args: argparse.Namespace) -> int:
    """Create a user (typically the first administrator)."""
    from pydantic import ValidationError

    from lpr_common.errors import LprError
    from lpr_gateway.bootstrap import bootstrap_user

    settings = LprSettings()
    password = args.password or os.environ.get("LPR_ADMIN_PASSWORD")
    if not password:
        password = getpass.getpass(f"password for {args.username}: ")
    try:
        user_id = bootstrap_user(
            args.database_url or settings.database_url,
            username=args.username,
            password=password,
            roles=args.role or ["administrator"],
            agency=args.agency or settings.agency,
            training_expires_at=args.training_expires,
            authorised_repairer=args.repairer,
        )
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"lprctl: refused: {reasons}", file=sys.stderr)
        return 2
    except LprError as exc:
        print(f"lprctl: refused: {exc.detail}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lprctl: cannot reach the database: {exc}", file=sys.stderr)
        return 2
    print(f"created user {args.username} ({user_id})")
    return 0


def register(commands: Any) -> None:
    """Add ``lprctl admin create-user``."""
    admin = commands.add_parser("admin", help="bootstrap gateway users")
    sub = admin.add_subparsers(dest="admin_command", required=True)
    create = sub.add_parser(
        "create-user", help="create a user directly in DATABASE_URL (first administrator)"
    )
    create.add_argument("--username", required=True)
    create.add_argument(
        "--password", help="at least 12 characters; else $LPR_ADMIN_PASSWORD or a prompt"
    )
    create.add_argument(
        "--role",
        action="append",
        choices=["officer", "administrator", "auditor", "records"],
        help="repeat for several roles (default: administrator)",
    )
    create.add_argument("--agency", help="agency ORI (default: $LPR_AGENCY)")
    create.add_argument(
        "--training-expires",
        type=_expiry,
        help="LPR training valid until (YYYY-MM-DD or ISO 8601); without it, no data access",
    )
    create.add_argument(
        "--repairer", action="store_true", help="authorised to return cameras to service"
    )
    create.add_argument("--database-url", help="default: $DATABASE_URL or the embedded database")
    create.set_defaults(handler=cmd_create_user)
