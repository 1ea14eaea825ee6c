"""``lprctl hotlist``: import hot-list files and show the lists.

``lprctl hotlist import FILE --list NAME --format ncic|csv|genetec-delimited|genetec-fixed``
writes through the hot-list service layer straight into ``DATABASE_URL`` in one transaction
(the default; it works on the embedded stack without a token), records a
``hotlist.imported`` audit event through audit-svc (the import fails if it cannot), and the
``NOTIFY`` sent on commit makes every running hot-list replica rebuild its index. With
``--gateway URL --token TOKEN`` it posts the file through the gateway instead, as any
administrator's client would.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from lpr_common.audit_client import AuditClient
from lpr_common.context import RequestContext, service_context_auth
from lpr_common.db import build_engine, build_sessionmaker
from lpr_common.errors import LprError
from lpr_common.http import build_client
from lpr_common.service import service_signer
from lpr_hotlist.access import audit_event
from lpr_hotlist.hotlists import repository, service
from lpr_hotlist.hotlists.models import HotListSource
from lpr_hotlist.hotlists.schemas import HotListCreate, ImportReport
from lpr_hotlist.settings import Settings

FORMATS = ("ncic", "csv", "genetec-delimited", "genetec-fixed")


def _print_report(report: dict[str, Any]) -> None:
    print(
        f"list {report['list_id']} version {report['version']}: {report['entry_count']} entries "
        f"(added {report['added']}, removed {report['removed']}, unchanged {report['unchanged']}, "
        f"rejected {report['rejected']}); sha256 {report['sha256']}"
    )
    for rejection in report["rejections"][:50]:
        print(f"  line {rejection['line']}: {rejection['reason']}")
    if report["rejected"] > 50:
        print(f"  ... and {report['rejected'] - 50} more rejected lines")


def _mapping(args: argparse.Namespace) -> dict[str, str] | None:
    if args.mapping is None:
        return None
    loaded = json.loads(args.mapping)
    if not isinstance(loaded, dict):
        raise ValueError("--mapping must be a JSON object of field -> column name")
    return {str(k): str(v) for k, v in loaded.items()}


async def _import_direct(args: argparse.Namespace, data: bytes, progress: Progress) -> ImportReport:
    settings = Settings()
    agency = args.agency or settings.agency
    engine = build_engine(settings.database_url, pool_size=2)
    signer = service_signer(settings.keys_dir, "hotlist")
    audit_http = build_client(settings.audit_url, auth=service_context_auth(signer, "hotlist"))
    context = RequestContext(
        subject_kind="service",
        subject_id=f"lprctl:{args.user}",
        subject_name=args.user,
        agency=agency,
        roles=["administrator"],
        method="CLI",
        path="lprctl hotlist import",
        issued_at=datetime.now(UTC),
    )
    tasks: dict[str, TaskID] = {}

    def advance(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(f"{stage} entries", total=max(total, 1))
        progress.update(tasks[stage], completed=done, total=max(total, 1))

    try:
        async with build_sessionmaker(engine)() as session, session.begin():
            hot_list = await repository.get_list_by_name(session, agency=agency, name=args.list)
            if hot_list is None:
                if args.source is None:
                    raise ValueError(
                        f"no hot list {args.list!r} in agency {agency}; pass --source (and "
                        "--category) to create it"
                    )
                hot_list = await service.create_list(
                    session,
                    context=context,
                    data=HotListCreate(
                        name=args.list,
                        source=HotListSource(args.source),
                        category=args.category or args.source,
                        priority=args.priority,
                        allow_one_edit=args.allow_one_edit,
                    ),
                )
            report = await service.import_file(
                session,
                hot_list=hot_list,
                data=data,
                format=args.format,
                file_name=Path(args.file).name,
                imported_by=context.subject_id,
                imported_by_agency=agency,
                mapping=_mapping(args),
                delimiter=args.delimiter,
                progress=advance,
            )
            # Fail closed: no audit record, no import (the transaction rolls back).
            await AuditClient(audit_http).record(
                audit_event(
                    context,
                    event_type="hotlist.imported",
                    resource="hotlists",
                    action="manage",
                    clause="C.3",
                    result_count=report.entry_count,
                    details=report.model_dump(mode="json", exclude={"rejections"}),
                )
            )
        return report
    finally:
        await audit_http.aclose()
        await engine.dispose()


def _chunks(data: bytes, progress: Progress, task: TaskID, size: int = 1 << 16) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]
        progress.update(task, completed=min(start + size, len(data)))


def _import_via_gateway(
    args: argparse.Namespace, data: bytes, progress: Progress
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {args.token}"}
    with httpx.Client(base_url=args.gateway, headers=headers, timeout=600.0) as client:
        lists = client.get("/v1/hotlists")
        lists.raise_for_status()
        found = [h for h in lists.json() if h["name"] == args.list]
        if found:
            list_id = found[0]["id"]
        else:
            if args.source is None:
                raise ValueError(f"no hot list {args.list!r}; pass --source to create it")
            created = client.post(
                "/v1/hotlists",
                json={
                    "name": args.list,
                    "source": args.source,
                    "category": args.category or args.source,
                    "priority": args.priority,
                    "allow_one_edit": args.allow_one_edit,
                },
            )
            created.raise_for_status()
            list_id = created.json()["id"]
        upload = progress.add_task("upload", total=max(len(data), 1))
        form = {"format": args.format}
        if args.mapping:
            form["mapping"] = args.mapping
        if args.delimiter:
            form["delimiter"] = args.delimiter
        body = b"".join(_chunks(data, progress, upload))
        response = client.post(
            f"/v1/hotlists/{list_id}/imports",
            files={"file": (Path(args.file).name, body, "text/plain")},
            data=form,
        )
        if response.status_code >= 400:
            raise ValueError(f"HTTP {response.status_code}: {response.text}")
        report: dict[str, Any] = response.json()
        return report


def cmd_import(args: argparse.Namespace) -> int:
    """Import a hot-list file; exit 0 on success, 1 when refused, 2 on a usage error."""
    try:
        data = Path(args.file).read_bytes()
    except OSError as error:
        print(f"lprctl hotlist import: {error}", file=sys.stderr)
        return 2
    columns = (
        TextColumn("{task.description:<16}"),
        BarColumn(),
        TextColumn("{task.completed:>9,}/{task.total:<9,}"),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, transient=False) as progress:
            if args.gateway:
                if not args.token:
                    print("lprctl hotlist import: --gateway needs --token", file=sys.stderr)
                    return 2
                report = _import_via_gateway(args, data, progress)
            else:
                report = asyncio.run(_import_direct(args, data, progress)).model_dump(mode="json")
    except LprError as error:
        print(f"lprctl hotlist import: refused: {error.detail or error.title}", file=sys.stderr)
        for field_error in error.errors or []:
            print(f"  {field_error.field}: {field_error.reason}", file=sys.stderr)
        return 1
    except (ValueError, httpx.HTTPError) as error:
        print(f"lprctl hotlist import: {error}", file=sys.stderr)
        return 1
    _print_report(report)
    return 0


async def _lists(agency: str) -> list[dict[str, Any]]:
    settings = Settings()
    engine = build_engine(settings.database_url, pool_size=1)
    try:
        async with build_sessionmaker(engine)() as session:
            return [
                {
                    "id": str(h.id),
                    "name": h.name,
                    "source": h.source,
                    "category": h.category,
                    "priority": h.priority,
                    "version": h.current_version,
                    "updated_at": h.updated_at.isoformat(),
                }
                for h in await repository.lists_of(session, agency)
            ]
    finally:
        await engine.dispose()


def cmd_lists(args: argparse.Namespace) -> int:
    """Print the agency's hot lists."""
    for row in asyncio.run(_lists(args.agency or Settings().agency)):
        print(
            f"{row['name']:<30} {row['source']:<7} v{row['version']:<4} prio {row['priority']:<3} "
            f"{row['category']:<24} {row['id']}"
        )
    return 0


def register(commands: Any) -> None:
    """Add ``lprctl hotlist``."""
    hotlist = commands.add_parser("hotlist", help="import and list hot lists")
    actions = hotlist.add_subparsers(dest="hotlist_command", required=True)
    imp = actions.add_parser("import", help="import a file as the list's new version")
    imp.add_argument("file", help="the hot-list file")
    imp.add_argument("--list", required=True, help="hot list name")
    imp.add_argument("--format", required=True, choices=FORMATS)
    imp.add_argument("--mapping", help='CSV header mapping as JSON, e.g. {"plate": "Tag"}')
    imp.add_argument("--delimiter", help="field separator (csv, genetec-delimited)")
    imp.add_argument(
        "--source", choices=[s.value for s in HotListSource], help="create the list if missing"
    )
    imp.add_argument("--category", help="category of a created list (default: the source)")
    imp.add_argument("--priority", type=int, default=50, help="0 is the highest")
    imp.add_argument("--allow-one-edit", action="store_true", help="also match one edit away")
    imp.add_argument("--agency", help="agency ORI (default LPR_AGENCY)")
    imp.add_argument("--user", default="lprctl", help="who imports, for provenance and audit")
    imp.add_argument("--gateway", help="post through the gateway at this URL instead")
    imp.add_argument("--token", help="bearer token for --gateway")
    imp.set_defaults(handler=cmd_import)
    lists = actions.add_parser("lists", help="show the agency's hot lists")
    lists.add_argument("--agency", help="agency ORI (default LPR_AGENCY)")
    lists.set_defaults(handler=cmd_lists)
