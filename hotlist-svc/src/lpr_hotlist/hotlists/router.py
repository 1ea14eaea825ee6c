"""Routes of hot lists, imports, manual entries, configuration, sync and shift checks."""

from __future__ import annotations

import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile

from lpr_common.context import ContextDep
from lpr_common.db import SessionDep
from lpr_common.errors import InvalidInput, NotFound
from lpr_common.values import Int4, Int8, Text
from lpr_hotlist.access import audit_event, describe_answer, record, require_administrator
from lpr_hotlist.hotlists import repository, service
from lpr_hotlist.hotlists.models import HotList
from lpr_hotlist.hotlists.schemas import (
    ConfigPublic,
    ConfigUpdate,
    EntryPage,
    EntryPublic,
    HotListCreate,
    HotListPublic,
    HotListUpdate,
    ImportReport,
    ManualEntryCreate,
    ManualEntryPublic,
    ShiftCheckCreate,
    ShiftCheckPublic,
    ShiftCheckRecord,
    SyncAnswer,
    VersionPublic,
)
from lpr_hotlist.parameters import MAX_OFFSET

router = APIRouter(tags=["hot lists"])

MAX_IMPORT_BYTES = 256 * 2**20


@router.post("/v1/hotlists", status_code=201)
async def create_hotlist(
    data: HotListCreate, context: ContextDep, session: SessionDep, request: Request
) -> HotListPublic:
    """Create a hot list for the caller's agency."""
    require_administrator(context, "C.3:administrator-manages-hotlist-sources")
    hot_list = await service.create_list(session, context=context, data=data)
    await record(
        request,
        audit_event(
            context,
            event_type="hotlist.created",
            resource="hotlists",
            action="manage",
            details={"list_id": str(hot_list.id), "name": hot_list.name, "source": hot_list.source},
        ),
    )
    return HotListPublic.model_validate(hot_list, from_attributes=True)


@router.get("/v1/hotlists")
async def list_hotlists(
    context: ContextDep, session: SessionDep, response: Response
) -> list[HotListPublic]:
    """List the hot lists of the caller's agency."""
    lists = await repository.lists_of(session, context.agency)
    describe_answer(response, count=len(lists), owner_agency=context.agency)
    return [HotListPublic.model_validate(h, from_attributes=True) for h in lists]


@router.get("/v1/hotlists/config")
async def get_config(_context: ContextDep, session: SessionDep) -> ConfigPublic:
    """Show the administered settings: OCR classes, manual-entry expiry, open-alert threshold."""
    return service.config_public(await repository.get_config(session))


@router.put("/v1/hotlists/config")
async def update_config(
    data: ConfigUpdate, context: ContextDep, session: SessionDep, request: Request
) -> ConfigPublic:
    """Change the administered settings."""
    require_administrator(context, "C.3:administrator-manages-hotlist-sources")
    config = await service.update_config(session, context=context, data=data)
    await record(
        request,
        audit_event(
            context,
            event_type="hotlist.config_changed",
            resource="hotlists",
            action="manage",
            details=data.model_dump(exclude_unset=True),
        ),
    )
    return service.config_public(config)


@router.get("/v1/hotlists/sync")
async def sync_hotlists(
    context: ContextDep,
    session: SessionDep,
    response: Response,
    since: Annotated[Int8, Query(ge=0, description="cursor from the last sync; 0 for all")] = 0,
) -> SyncAnswer:
    """Return what changed in the agency's hot lists since a cursor (IACP C.3)."""
    answer = await service.sync(session, agency=context.agency, since=since)
    describe_answer(
        response, count=sum(len(d.added) for d in answer.lists), owner_agency=context.agency
    )
    return answer


async def _visible(session: SessionDep, list_id: UUID, context: ContextDep) -> HotList:
    return service.visible_list(await repository.get_list(session, list_id), context)


@router.get("/v1/hotlists/{list_id}")
async def get_hotlist(list_id: UUID, context: ContextDep, session: SessionDep) -> HotListPublic:
    """Show one hot list."""
    hot_list = await _visible(session, list_id, context)
    return HotListPublic.model_validate(hot_list, from_attributes=True)


@router.patch("/v1/hotlists/{list_id}")
async def update_hotlist(
    list_id: UUID, data: HotListUpdate, context: ContextDep, session: SessionDep, request: Request
) -> HotListPublic:
    """Change a hot list's category, priority or one-edit matching."""
    require_administrator(context, "C.3:administrator-manages-hotlist-sources")
    hot_list = await _visible(session, list_id, context)
    hot_list = await service.update_list(session, hot_list=hot_list, data=data)
    await record(
        request,
        audit_event(
            context,
            event_type="hotlist.updated",
            resource="hotlists",
            action="manage",
            details={"list_id": str(list_id), **data.model_dump(exclude_unset=True)},
        ),
    )
    return HotListPublic.model_validate(hot_list, from_attributes=True)


@router.post("/v1/hotlists/{list_id}/imports", status_code=201)
async def import_hotlist(
    list_id: UUID,
    context: ContextDep,
    session: SessionDep,
    request: Request,
    file: Annotated[UploadFile, File(description="The hot-list file")],
    format: Annotated[Text, Form(description="ncic, csv, genetec-delimited or genetec-fixed")],
    mapping: Annotated[
        Text | None, Form(description='CSV only: JSON {"plate": "Tag", ...}')
    ] = None,
    delimiter: Annotated[Text | None, Form(max_length=1)] = None,
) -> ImportReport:
    """Import a file as the list's new version, replacing the current one atomically."""
    require_administrator(context, "C.3:administrator-manages-hotlist-sources")
    hot_list = await _visible(session, list_id, context)
    parsed_mapping: dict[str, str] | None = None
    if mapping:
        try:
            loaded = json.loads(mapping)
        except json.JSONDecodeError as error:
            raise InvalidInput.field("mapping", f"not JSON: {error.msg}")
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise InvalidInput.field("mapping", "must be a JSON object of field -> column name")
        parsed_mapping = loaded
    data = await file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise InvalidInput.field("file", f"larger than {MAX_IMPORT_BYTES} bytes")
    report = await service.import_file(
        session,
        hot_list=hot_list,
        data=data,
        format=format,
        file_name=file.filename,
        imported_by=context.subject_id,
        imported_by_agency=context.agency,
        mapping=parsed_mapping,
        delimiter=delimiter or None,
    )
    await record(
        request,
        audit_event(
            context,
            event_type="hotlist.imported",
            resource="hotlists",
            action="manage",
            clause="C.3",
            result_count=report.entry_count,
            details=report.model_dump(mode="json", exclude={"rejections"}),
        ),
    )
    return report


@router.get("/v1/hotlists/{list_id}/versions")
async def list_versions(
    list_id: UUID, context: ContextDep, session: SessionDep
) -> list[VersionPublic]:
    """List a hot list's versions with their provenance, newest first."""
    await _visible(session, list_id, context)
    return [VersionPublic.model_validate(v) for v in await repository.versions_of(session, list_id)]


async def _entry_page(
    session: SessionDep,
    list_id: UUID,
    number: int,
    limit: int,
    offset: int,
    response: Response,
    agency: str,
) -> EntryPage:
    version = await repository.version_by_number(session, list_id, number)
    if version is None:
        raise NotFound(f"version {number} not found")
    entries = await repository.entries_of_version(session, version.id, limit=limit, offset=offset)
    describe_answer(response, count=len(entries), owner_agency=agency)
    return EntryPage(
        list_id=list_id,
        version=number,
        total=await repository.count_entries(session, version.id),
        entries=[EntryPublic.model_validate(e) for e in entries],
    )


@router.get("/v1/hotlists/{list_id}/versions/{number}/entries")
async def list_version_entries(
    list_id: UUID,
    number: Int4,
    context: ContextDep,
    session: SessionDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> EntryPage:
    """List the entries of one version of a hot list (previous versions stay queryable)."""
    hot_list = await _visible(session, list_id, context)
    return await _entry_page(session, list_id, number, limit, offset, response, hot_list.agency)


@router.get("/v1/hotlists/{list_id}/entries")
async def list_current_entries(
    list_id: UUID,
    context: ContextDep,
    session: SessionDep,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> EntryPage:
    """List the entries of a hot list's current version."""
    hot_list = await _visible(session, list_id, context)
    return await _entry_page(
        session, list_id, hot_list.current_version, limit, offset, response, hot_list.agency
    )


@router.post("/v1/hotlists/{list_id}/entries", status_code=201)
async def add_manual_entry(
    list_id: UUID,
    data: ManualEntryCreate,
    context: ContextDep,
    session: SessionDep,
    request: Request,
) -> ManualEntryPublic:
    """Add a plate by hand with a documented reason and an expiry (IACP C.6)."""
    hot_list = await _visible(session, list_id, context)
    entry, version = await service.add_manual_entry(
        session, context=context, hot_list=hot_list, data=data
    )
    await record(
        request,
        audit_event(
            context,
            event_type="hotlist.entry_added",
            resource="hotlist_entries",
            action="create",
            clause="C.6",
            plate=entry.plate or entry.pattern,
            details={
                "list_id": str(list_id),
                "entry_id": str(entry.id),
                "reason": entry.reason,
                "expires_at": entry.expires_at.isoformat(),
                "version": version.number,
            },
        ),
    )
    return ManualEntryPublic.model_validate(entry).model_copy(update={"version": version.number})


@router.get("/v1/hotlists/{list_id}/manual-entries")
async def list_manual_entries(
    list_id: UUID, context: ContextDep, session: SessionDep, response: Response
) -> list[ManualEntryPublic]:
    """List a list's manual entries with who added or removed them and why."""
    hot_list = await _visible(session, list_id, context)
    entries = await repository.manual_entries_of(session, list_id)
    describe_answer(response, count=len(entries), owner_agency=hot_list.agency)
    return [ManualEntryPublic.model_validate(e) for e in entries]


@router.delete("/v1/hotlists/{list_id}/entries/{entry_id}")
async def remove_manual_entry(
    list_id: UUID,
    entry_id: UUID,
    context: ContextDep,
    session: SessionDep,
    request: Request,
    reason: Annotated[str, Query(description="Why the entry is removed (IACP C.6)")],
) -> ManualEntryPublic:
    """Remove a manual entry (by its manual-entry id) with a documented reason."""
    hot_list = await _visible(session, list_id, context)
    entry, version = await service.remove_manual_entry(
        session, context=context, hot_list=hot_list, entry_id=entry_id, reason=reason
    )
    await record(
        request,
        audit_event(
            context,
            event_type="hotlist.entry_removed",
            resource="hotlist_entries",
            action="delete",
            clause="C.6",
            plate=entry.plate or entry.pattern,
            details={"list_id": str(list_id), "entry_id": str(entry_id), "reason": reason},
        ),
    )
    return ManualEntryPublic.model_validate(entry).model_copy(update={"version": version.number})


shift_router = APIRouter(tags=["shift checks"])


@shift_router.post("/v1/shift-checks", status_code=201)
async def create_shift_check(
    data: ShiftCheckCreate, context: ContextDep, session: SessionDep, request: Request
) -> ShiftCheckPublic:
    """Report the hot-list versions a unit holds at shift start; answer with what to update (IACP C.3)."""
    answer = await service.record_shift_check(session, context=context, data=data)
    await record(
        request,
        audit_event(
            context,
            event_type="hotlist.shift_check",
            resource="hotlists",
            action="read",
            clause="C.3",
            details={
                "shift_check_id": str(answer.id),
                "unit_id": answer.unit_id,
                "current": answer.current,
                "stale_lists": answer.stale_lists,
            },
        ),
    )
    return answer


@shift_router.get("/v1/shift-checks")
async def list_shift_checks(
    context: ContextDep,
    session: SessionDep,
    response: Response,
    stale: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ShiftCheckRecord]:
    """List the agency's shift-start checks, newest first (stale=true for the stale ones)."""
    checks = await repository.shift_checks_of(
        session, agency=context.agency, stale=stale, limit=limit
    )
    describe_answer(response, count=len(checks), owner_agency=context.agency)
    return [ShiftCheckRecord.model_validate(c) for c in checks]
