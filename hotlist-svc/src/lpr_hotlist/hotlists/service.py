"""Rules of the hot-list domain: lists, imports, manual entries (C.6), sync and shift checks (C.3)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import RequestContext
from lpr_common.errors import Conflict, FieldError, InvalidInput, NotFound
from lpr_common.nul import NUL_REASON
from lpr_common.plates import (
    InvalidPattern,
    InvalidPlate,
    InvalidState,
    OcrEquivalence,
    is_pattern,
    normalize_plate,
    normalize_state,
    parse_pattern,
)
from lpr_hotlist.hotlists import repository
from lpr_hotlist.hotlists.models import (
    MANUAL_SOURCES,
    HotList,
    HotListConfig,
    HotListEntry,
    HotListVersion,
    ManualEntry,
    ShiftCheck,
)
from lpr_hotlist.hotlists.schemas import (
    ConfigPublic,
    ConfigUpdate,
    EntryPublic,
    HotListCreate,
    HotListUpdate,
    ImportReport,
    ListDelta,
    ManualEntryCreate,
    RejectionPublic,
    ShiftCheckCreate,
    ShiftCheckPublic,
    SyncAnswer,
)
from lpr_hotlist.imports import ImportedEntry, ImportFormat, MalformedFile, diff, parse_hotlist

MAX_STORED_REJECTIONS = 10_000
RULE_MANUAL_LIST = "C.6: manual entries go to a manual list"
RULE_IMPORT_LIST = "C.6: a manual list holds typed-in entries and is not replaced by imports"

ProgressCallback = Callable[[str, int, int], None]
"""``(stage, done, total)``: stage is ``parse`` or ``write``."""


def utcnow() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _end_of(last_day: date | None) -> datetime | None:
    """When an entry whose expiry date (its last day in force) is ``last_day`` lapses.

    9999-12-31, the last date there is, is how records systems write "never expires":
    such an entry has no expiry, as one without an expiry date.
    """
    if last_day is None or last_day == date.max:
        return None
    return _start_of(last_day + timedelta(days=1))


def visible_list(hot_list: HotList | None, context: RequestContext) -> HotList:
    """The list if the caller's agency owns it; 404 otherwise (other agencies' lists are not shown)."""
    if hot_list is None or (
        context.subject_kind != "service" and hot_list.agency != context.agency
    ):
        raise NotFound("hot list not found")
    return hot_list


# --- lists ----------------------------------------------------------------------------------


async def create_list(
    session: AsyncSession, *, context: RequestContext, data: HotListCreate
) -> HotList:
    """Create an empty list (version 0) for the caller's agency."""
    if await repository.get_list_by_name(session, agency=context.agency, name=data.name):
        raise Conflict(
            f"a hot list named {data.name!r} already exists",
            errors=[FieldError(field="name", reason="already used in this agency")],
        )
    hot_list = HotList(
        agency=context.agency, created_by=context.subject_id, **data.model_dump(mode="json")
    )
    session.add(hot_list)
    await session.flush()
    return hot_list


async def update_list(session: AsyncSession, *, hot_list: HotList, data: HotListUpdate) -> HotList:
    """Change a list's category, priority or one-edit flag; the index follows."""
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name != "description":
            raise InvalidInput.field(name, "may not be null")
        setattr(hot_list, name, value)
    hot_list.updated_at = utcnow()
    session.add(hot_list)
    if {"priority", "allow_one_edit"} & changes.keys():
        await repository.bump_generation(session)
    await session.flush()
    return hot_list


# --- imports --------------------------------------------------------------------------------


MAX_FILE_NAME_LENGTH = 255
"""The width of ``hot_list_versions.file_name``."""


def checked_file_name(file_name: str | None) -> str | None:
    """The file name an import records as provenance, if it can be stored as given.

    It is refused rather than cut short: the version must name the file it came from.

    Raises:
        InvalidInput: It is too long or holds U+0000 (field ``file``).
    """
    if file_name is None:
        return None
    if len(file_name) > MAX_FILE_NAME_LENGTH:
        raise InvalidInput.field(
            "file",
            f"the file name has {len(file_name)} characters; at most {MAX_FILE_NAME_LENGTH}",
        )
    if "\x00" in file_name:
        raise InvalidInput.field("file", f"the file name {NUL_REASON}")
    return file_name


def parse_format(text: str) -> ImportFormat:
    """``ncic``, ``csv``, ``genetec-delimited`` / ``genetec_delimited``, ``genetec-fixed``."""
    try:
        return ImportFormat(text.strip().lower().replace("-", "_"))
    except ValueError:
        names = ", ".join(f.value for f in ImportFormat)
        raise InvalidInput.field("format", f"unknown format {text!r}; one of {names}")


def _entry_row(
    entry: ImportedEntry, *, version_id: UUID, list_id: UUID, added_by: str
) -> dict[str, Any]:
    return {
        "id": uuid4(),
        "version_id": version_id,
        "list_id": list_id,
        "plate": entry.plate,
        "state": entry.state,
        "pattern": entry.pattern,
        "list_code": entry.list_code,
        "reason": entry.reason,
        "ncic_number": entry.ncic_number,
        "case_number": entry.case_number,
        "originating_agency": entry.originating_agency,
        "plate_year": entry.plate_year,
        "vehicle_year": entry.vehicle_year,
        "vehicle_make": entry.vehicle_make,
        "vehicle_model": entry.vehicle_model,
        "vehicle_colour": entry.vehicle_colour,
        "effective_at": None if entry.effective_date is None else _start_of(entry.effective_date),
        "expires_at": _end_of(entry.expiry_date),
        "added_by": added_by,
        "manual_entry_id": None,
        "source_line": entry.line,
        "annotations": dict(entry.annotations) or None,
    }


async def import_file(
    session: AsyncSession,
    *,
    hot_list: HotList,
    data: bytes,
    format: str,
    file_name: str | None,
    imported_by: str,
    imported_by_agency: str,
    mapping: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    progress: ProgressCallback | None = None,
) -> ImportReport:
    """Replace a list's entries with a file's, as a new version, in the caller's transaction.

    A file that cannot be read as a whole raises before anything is written; lines that
    cannot be read are reported, not imported. The previous version stays stored.

    Raises:
        InvalidInput: Unknown format, bad mapping, a file name that cannot be stored, or
            a wholly malformed file.
        Conflict: The list takes manual entries, not imports.
    """
    if hot_list.source in MANUAL_SOURCES:
        raise Conflict(
            f"list {hot_list.name!r} has source {hot_list.source}", rule=RULE_IMPORT_LIST
        )
    file_name = checked_file_name(file_name)
    kind = parse_format(format)
    try:
        result = parse_hotlist(data, kind, mapping=mapping, delimiter=delimiter)
    except MalformedFile as error:
        errors = [FieldError(field="file", reason=error.reason)]
        errors += [
            FieldError(field=f"file:{r.line}", reason=r.reason) for r in error.rejections[:50]
        ]
        raise InvalidInput(f"file: {error.reason}; nothing was imported", errors=errors)
    except ValueError as error:
        field_name = "mapping" if mapping is not None else "format"
        raise InvalidInput.field(field_name, str(error))
    total = len(result.entries)
    if progress is not None:
        progress("parse", total, total)

    # Lock order: the config row (generation), then the list row.
    generation = await repository.bump_generation(session)
    locked = await repository.get_list(session, hot_list.id, for_update=True)
    assert locked is not None
    hot_list = locked
    old_keys = await repository.entry_keys_of_version(session, hot_list.current_version_id)
    changes = diff((_Key(*key) for key in old_keys), result.entries)
    rejections = [RejectionPublic(line=r.line, reason=r.reason) for r in result.rejections]
    version = HotListVersion(
        list_id=hot_list.id,
        number=hot_list.current_version + 1,
        seq=generation,
        kind="import",
        created_by=imported_by,
        created_by_agency=imported_by_agency,
        file_name=file_name,
        sha256=hashlib.sha256(data).hexdigest(),
        format=kind.value,
        entry_count=total,
        added_count=changes.added_count,
        removed_count=changes.removed_count,
        rejected_count=len(rejections),
        rejections=[r.model_dump() for r in rejections[:MAX_STORED_REJECTIONS]],
    )
    session.add(version)
    await session.flush()
    rows = [
        _entry_row(e, version_id=version.id, list_id=hot_list.id, added_by=imported_by)
        for e in result.entries
    ]
    written = 0

    def advance(count: int) -> None:
        nonlocal written
        written += count
        if progress is not None:
            progress("write", written, total)

    await repository.insert_entries(session, rows, advance)
    hot_list.current_version = version.number
    hot_list.current_version_id = version.id
    hot_list.updated_at = utcnow()
    session.add(hot_list)
    await session.flush()
    return ImportReport(
        list_id=hot_list.id,
        version=version.number,
        version_id=version.id,
        generation=generation,
        format=kind.value,
        file_name=file_name,
        sha256=version.sha256 or "",
        entry_count=total,
        added=changes.added_count,
        removed=changes.removed_count,
        unchanged=changes.unchanged_count,
        rejected=len(rejections),
        rejections=rejections,
    )


class _Key:
    """An ``(plate, state, pattern)`` triple shaped like an entry for :func:`diff`."""

    __slots__ = ("pattern", "plate", "state")

    def __init__(self, plate: str | None, state: str | None, pattern: str | None) -> None:
        self.plate, self.state, self.pattern = plate, state, pattern


# --- manual entries (C.6) -------------------------------------------------------------------


def _checked_plate_or_pattern(data: ManualEntryCreate) -> tuple[str | None, str | None]:
    if data.plate and data.pattern:
        raise InvalidInput.field("plate", "give a plate or a pattern, not both")
    if data.pattern:
        try:
            if not is_pattern(data.pattern):
                return normalize_plate(data.pattern), None
            return None, parse_pattern(data.pattern).text
        except (InvalidPattern, InvalidPlate) as error:
            raise InvalidInput.field("pattern", str(error))
    if not data.plate:
        raise InvalidInput.field("plate", "a plate or a pattern is required")
    try:
        return normalize_plate(data.plate), None
    except InvalidPlate as error:
        raise InvalidInput.field("plate", str(error))


def checked_state(value: str | None, field_name: str = "state") -> str | None:
    """A valid state code or ``None``; 422 naming the field otherwise."""
    if value is None or not value.strip():
        return None
    try:
        return normalize_state(value)
    except InvalidState as error:
        raise InvalidInput.field(field_name, str(error))


async def add_manual_entry(
    session: AsyncSession, *, context: RequestContext, hot_list: HotList, data: ManualEntryCreate
) -> tuple[ManualEntry, HotListVersion]:
    """Add a manual entry and publish the list's new version.

    Raises:
        InvalidInput: Missing reason, bad plate, pattern, state or dates.
        Conflict: The list is fed by imports.
    """
    if hot_list.source not in MANUAL_SOURCES:
        raise Conflict(
            f"list {hot_list.name!r} has source {hot_list.source}; manual entries need a "
            "manual list",
            rule=RULE_MANUAL_LIST,
        )
    reason = data.reason.strip()
    if len(reason) < 3:
        raise InvalidInput.field("reason", "a reason is required for a manual entry (IACP C.6)")
    plate, pattern = _checked_plate_or_pattern(data)
    state = checked_state(data.state)
    config = await repository.get_config(session)
    now = utcnow()
    expires_at = data.expires_at or now + timedelta(days=config.default_manual_expiry_days)
    if expires_at.tzinfo is None:
        raise InvalidInput.field("expires_at", "needs a timezone (e.g. Z)")
    if data.effective_at is not None and data.effective_at.tzinfo is None:
        raise InvalidInput.field("effective_at", "needs a timezone (e.g. Z)")
    if expires_at <= now:
        raise InvalidInput.field("expires_at", "must be in the future")
    if data.effective_at is not None and data.effective_at >= expires_at:
        raise InvalidInput.field("effective_at", "must be before expires_at")
    entry = ManualEntry(
        list_id=hot_list.id,
        agency=hot_list.agency,
        plate=plate,
        state=state,
        pattern=pattern,
        reason=reason,
        case_number=data.case_number,
        ncic_number=data.ncic_number,
        vehicle_year=data.vehicle_year,
        vehicle_make=data.vehicle_make,
        vehicle_model=data.vehicle_model,
        vehicle_colour=data.vehicle_colour,
        effective_at=data.effective_at,
        expires_at=expires_at,
        added_by=context.subject_id,
        added_by_name=context.subject_name,
    )
    session.add(entry)
    await session.flush()
    version = await publish_manual_version(session, hot_list=hot_list, by=context)
    return entry, version


async def remove_manual_entry(
    session: AsyncSession,
    *,
    context: RequestContext,
    hot_list: HotList,
    entry_id: UUID,
    reason: str,
) -> tuple[ManualEntry, HotListVersion]:
    """Remove a manual entry with a reason and publish the list's new version."""
    if len(reason.strip()) < 3:
        raise InvalidInput.field("reason", "a reason is required to remove an entry (IACP C.6)")
    entry = await session.get(ManualEntry, entry_id, with_for_update=True)
    if entry is None or entry.list_id != hot_list.id:
        raise NotFound("manual entry not found")
    if entry.removed_at is not None:
        raise Conflict("the entry was already removed", rule=RULE_MANUAL_LIST)
    entry.removed_at = utcnow()
    entry.removed_by = context.subject_id
    entry.removal_reason = reason.strip()
    session.add(entry)
    await session.flush()
    version = await publish_manual_version(session, hot_list=hot_list, by=context)
    return entry, version


async def publish_manual_version(
    session: AsyncSession, *, hot_list: HotList, by: RequestContext
) -> HotListVersion:
    """Snapshot a manual list's active entries as its next version."""
    generation = await repository.bump_generation(session)
    locked = await repository.get_list(session, hot_list.id, for_update=True)
    assert locked is not None
    active = await repository.active_manual_entries(session, hot_list.id, utcnow())
    old_keys = await repository.entry_keys_of_version(session, locked.current_version_id)
    changes = diff((_Key(*k) for k in old_keys), active)
    version = HotListVersion(
        list_id=locked.id,
        number=locked.current_version + 1,
        seq=generation,
        kind="manual",
        created_by=by.subject_id,
        created_by_agency=by.agency,
        entry_count=len(active),
        added_count=changes.added_count,
        removed_count=changes.removed_count,
    )
    session.add(version)
    await session.flush()
    rows = [
        {
            "id": uuid4(),
            "version_id": version.id,
            "list_id": locked.id,
            "plate": m.plate,
            "state": m.state,
            "pattern": m.pattern,
            "reason": m.reason,
            "ncic_number": m.ncic_number,
            "case_number": m.case_number,
            "vehicle_year": m.vehicle_year,
            "vehicle_make": m.vehicle_make,
            "vehicle_model": m.vehicle_model,
            "vehicle_colour": m.vehicle_colour,
            "effective_at": m.effective_at,
            "expires_at": m.expires_at,
            "added_by": m.added_by,
            "manual_entry_id": m.id,
        }
        for m in active
    ]
    await repository.insert_entries(session, rows)
    locked.current_version = version.number
    locked.current_version_id = version.id
    locked.updated_at = utcnow()
    session.add(locked)
    await session.flush()
    return version


# --- configuration --------------------------------------------------------------------------


def config_public(config: HotListConfig) -> ConfigPublic:
    """The API shape of the configuration."""
    return ConfigPublic(
        ocr_classes=list(OcrEquivalence.from_spec(config.ocr_classes).classes),
        default_manual_expiry_days=config.default_manual_expiry_days,
        open_alert_minutes=config.open_alert_minutes,
        generation=config.generation,
        updated_by=config.updated_by,
        updated_at=config.updated_at,
    )


async def update_config(
    session: AsyncSession, *, context: RequestContext, data: ConfigUpdate
) -> HotListConfig:
    """Change the administered settings; new OCR classes rebuild every replica's index."""
    config = await repository.get_config(session, for_update=True)
    if data.ocr_classes is not None:
        try:
            spec = OcrEquivalence(data.ocr_classes).spec()
        except ValueError as error:
            raise InvalidInput.field("ocr_classes", str(error))
        if spec != config.ocr_classes:
            config.ocr_classes = spec
            session.add(config)
            await session.flush()
            await repository.bump_generation(session)
            await session.refresh(config)
    if data.default_manual_expiry_days is not None:
        config.default_manual_expiry_days = data.default_manual_expiry_days
    if data.open_alert_minutes is not None:
        config.open_alert_minutes = data.open_alert_minutes
    config.updated_by = context.subject_id
    config.updated_at = utcnow()
    session.add(config)
    await session.flush()
    return config


# --- sync and shift checks (C.3) ------------------------------------------------------------


def _entry_public(entry: HotListEntry) -> EntryPublic:
    return EntryPublic.model_validate(entry)


async def list_delta(
    session: AsyncSession, hot_list: HotList, base: HotListVersion | None, reported: int | None
) -> ListDelta:
    """What a client holding ``base`` of a list needs to reach the current version."""
    current = base is not None and base.number == hot_list.current_version
    if reported is not None and reported == hot_list.current_version:
        current = True
    added: list[EntryPublic] = []
    removed: list[dict[str, Any]] = []
    full = False
    if not current and hot_list.current_version_id is not None:
        entries = await repository.entries_of_version(session, hot_list.current_version_id)
        if base is None:
            full = True
            added = [_entry_public(e) for e in entries]
        else:
            base_keys = set(await repository.entry_keys_of_version(session, base.id))
            current_keys = {(e.plate, e.state, e.pattern) for e in entries}
            added = [
                _entry_public(e) for e in entries if (e.plate, e.state, e.pattern) not in base_keys
            ]
            removed = [
                {"plate": k[0], "state": k[1], "pattern": k[2]}
                for k in sorted(base_keys - current_keys, key=str)
            ]
    return ListDelta(
        list_id=hot_list.id,
        name=hot_list.name,
        source=hot_list.source,
        category=hot_list.category,
        reported_version=reported if reported is not None else (base.number if base else None),
        current_version=hot_list.current_version,
        current=current or hot_list.current_version == 0,
        full=full,
        added=added,
        removed=removed,
    )


async def sync(session: AsyncSession, *, agency: str, since: int) -> SyncAnswer:
    """Deltas of the agency's lists changed after generation ``since``."""
    # The cursor is read before the lists: see record_shift_check.
    config = await repository.get_config(session)
    deltas: list[ListDelta] = []
    for hot_list in await repository.lists_of(session, agency):
        if hot_list.current_version_id is None:
            continue
        current = await repository.version_by_id(session, hot_list.current_version_id)
        if current is None or current.seq <= since:
            continue
        base = await repository.version_at(session, hot_list.id, since) if since > 0 else None
        deltas.append(await list_delta(session, hot_list, base, None))
    return SyncAnswer(cursor=config.generation, lists=deltas)


async def record_shift_check(
    session: AsyncSession, *, context: RequestContext, data: ShiftCheckCreate
) -> ShiftCheckPublic:
    """Record what a unit or user holds at shift start and answer with what to update."""
    # The cursor (the generation) is read before the lists; each statement sees what was
    # committed when it started. A version published in between is then above the cursor,
    # so ``sync(since=cursor)`` delivers it even though this answer missed it. Read after
    # the lists, the cursor would cover a version the answer never saw and no sync would
    # ever deliver it (IACP C.3). Publishers hold the config row lock until commit, so once
    # a generation is visible every version at or below it has committed.
    cursor = (await repository.get_config(session)).generation
    lists = {
        hot_list.id: hot_list for hot_list in await repository.lists_of(session, context.agency)
    }
    unknown = [list_id for list_id in data.versions if list_id not in lists]
    if unknown:
        raise InvalidInput(
            "versions: lists not in your agency",
            errors=[
                FieldError(field=f"versions.{list_id}", reason="no such hot list in your agency")
                for list_id in unknown
            ],
        )
    deltas: list[ListDelta] = []
    stale_lists: list[dict[str, Any]] = []
    for hot_list in lists.values():
        if hot_list.current_version == 0:
            continue
        reported = data.versions.get(hot_list.id)
        base = (
            None
            if reported is None
            else await repository.version_by_number(session, hot_list.id, reported)
        )
        delta = await list_delta(session, hot_list, base, reported)
        deltas.append(delta)
        if not delta.current:
            stale_lists.append(
                {
                    "list_id": str(hot_list.id),
                    "name": hot_list.name,
                    "reported_version": reported,
                    "current_version": hot_list.current_version,
                }
            )
    check = ShiftCheck(
        agency=context.agency,
        user_id=context.subject_id,
        unit_id=data.unit_id,
        camera_id=data.camera_id,
        reported={str(k): v for k, v in data.versions.items()},
        stale=bool(stale_lists),
        stale_lists=stale_lists,
    )
    session.add(check)
    await session.flush()
    return ShiftCheckPublic(
        id=check.id,
        agency=check.agency,
        user_id=check.user_id,
        unit_id=check.unit_id,
        camera_id=check.camera_id,
        checked_at=check.checked_at,
        current=not stale_lists,
        stale_lists=stale_lists,
        lists=deltas,
        cursor=cursor,
    )


async def stale_reason(
    session: AsyncSession,
    *,
    agency: str,
    valid_for: timedelta,
    unit_id: str | None = None,
    camera_id: str | None = None,
    user_id: str | None = None,
) -> str | None:
    """Why alerts of this unit, camera or officer must be flagged, or ``None``."""
    check = await repository.latest_shift_check(
        session,
        agency=agency,
        since=utcnow() - valid_for,
        unit_id=unit_id,
        camera_id=camera_id,
        user_id=user_id,
    )
    if check is None or not check.stale:
        return None
    who = (
        f"unit {check.unit_id}"
        if check.unit_id
        else f"camera {check.camera_id}"
        if check.camera_id
        else f"officer {check.user_id}"
    )
    names = ", ".join(str(s.get("name")) for s in check.stale_lists)
    return (
        f"{who} held stale hot lists at shift start ({check.checked_at:%Y-%m-%d %H:%M}Z: {names})"
    )
