"""Rules of the read search: what a search must state, and how it becomes a query.

The gateway has already decided (purpose, case number, lookback, MOU scope); this service
re-checks what a request must carry to be run at all, and refuses bad input with a 422
naming the field, before any SQL runs.

Unknown cameras and deployments are checked here, against the ids recognition has reads
from: recognition owns the reads, and a camera it has no (retained) read from can add
nothing to a search, so "unknown" means "no reads from it"; the gateway's guard stays a
generic policy check that does not parse bodies per route.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.context import RequestContext
from lpr_common.errors import FieldError, InvalidInput, PolicyDenied
from lpr_common.plates import (
    DEFAULT_OCR_EQUIVALENCE,
    InvalidPattern,
    InvalidPlate,
    InvalidState,
    is_pattern,
    normalize_plate,
    normalize_state,
    parse_pattern,
)
from lpr_common.values import INT4_MAX, storable_datetime
from lpr_policy import DEFAULT_CASE_NUMBER_PATTERN, is_vague
from lpr_recognition.reads.service import MOU_LOOKBACK_RULE, mou_not_before
from lpr_recognition.search import repository
from lpr_recognition.search.repository import (
    Box,
    Circle,
    Cursor,
    PlateCondition,
    SearchQuery,
)
from lpr_recognition.search.schemas import (
    MatchMode,
    ResultLinks,
    SearchPage,
    SearchRequest,
    SearchResult,
)

MAX_SPAN_DAYS: Final = 366
"""Longest time range of one search; the policy's lookback limits are tighter (C.8, D.2)."""

MAX_RADIUS_M: Final = 50_000.0
"""Largest search radius (and half-diagonal of a bounding box): a search is for a place."""

_CASE_NUMBER: Final = re.compile(DEFAULT_CASE_NUMBER_PATTERN)
_METRES_PER_DEGREE: Final = 111_320.0


def _refuse(errors: list[FieldError]) -> InvalidInput:
    return InvalidInput("; ".join(f"{e.field}: {e.reason}" for e in errors), errors=errors)


def owner_agency(context: RequestContext, platform_agency: str) -> str:
    """Whose reads the caller searches: its own, or the platform's under an MOU."""
    if context.subject_kind == "camera":
        raise PolicyDenied("cameras post reads; they do not search them", rule="search.no_cameras")
    if context.subject_kind == "partner" or context.mou_id is not None:
        return platform_agency
    return context.agency


def _check_why(request: SearchRequest, errors: list[FieldError]) -> None:
    purpose = (request.purpose or "").strip()
    if not purpose:
        errors.append(FieldError(field="purpose", reason="required: a public-safety purpose"))
    elif is_vague(purpose):
        errors.append(FieldError(field="purpose", reason=f"vague purpose {purpose!r}"))
    case_number = (request.case_number or "").strip()
    if not case_number:
        errors.append(FieldError(field="case_number", reason="required for a historical search"))
    elif not _CASE_NUMBER.fullmatch(case_number):
        errors.append(
            FieldError(
                field="case_number",
                reason=f"{case_number!r} is not a case number such as PD-2026-000123",
            )
        )


def _time_window(
    request: SearchRequest, now: datetime, errors: list[FieldError]
) -> tuple[datetime, datetime] | None:
    window = request.time_range
    if window is None or window.start is None:
        errors.append(
            FieldError(
                field="time_range.start", reason="required: a search needs a bounded time range"
            )
        )
        return None
    bad = False
    for name, value in (("start", window.start), ("end", window.end)):
        if value is not None and value.utcoffset() is None:
            errors.append(FieldError(field=f"time_range.{name}", reason="needs a UTC offset"))
            bad = True
    if bad:
        return None
    start = window.start.astimezone(UTC)
    end = (window.end or now).astimezone(UTC)
    if end <= start:
        errors.append(FieldError(field="time_range.end", reason="must be after time_range.start"))
        return None
    if end - start > timedelta(days=MAX_SPAN_DAYS):
        errors.append(
            FieldError(
                field="time_range",
                reason=f"spans {(end - start).days} days; at most {MAX_SPAN_DAYS} per search",
            )
        )
        return None
    return start, end


def _plate(
    request: SearchRequest, errors: list[FieldError]
) -> tuple[PlateCondition | None, MatchMode]:
    raw = request.plate
    mode = request.match
    if raw is None or not raw.strip():
        if mode is not None:
            errors.append(FieldError(field="plate", reason=f"required with match {mode.value!r}"))
        return None, mode or MatchMode.exact
    wildcards = is_pattern(raw)
    if mode is None:
        mode = MatchMode.pattern if wildcards else MatchMode.exact
    equivalence = DEFAULT_OCR_EQUIVALENCE
    try:
        if mode is MatchMode.exact:
            if wildcards:
                errors.append(FieldError(field="plate", reason="has * or ?; use match 'pattern'"))
                return None, mode
            return PlateCondition("equals", normalize_plate(raw), canonical=False), mode
        if mode is MatchMode.pattern or wildcards:
            pattern = parse_pattern(raw)
            canonical = mode is MatchMode.ocr_equivalent
            prefix = pattern.literal_prefix()
            if canonical:
                prefix = equivalence.canonical(prefix)
            return (
                PlateCondition(
                    "like",
                    pattern.to_sql_like(equivalence if canonical else None),
                    canonical=canonical,
                    prefix=prefix,
                ),
                mode,
            )
        plate = normalize_plate(raw)
        return PlateCondition("equals", equivalence.canonical(plate), canonical=True), mode
    except (InvalidPlate, InvalidPattern) as exc:
        errors.append(FieldError(field="plate", reason=str(exc)))
        return None, mode


def _area(request: SearchRequest, errors: list[FieldError]) -> tuple[Box | None, Circle | None]:
    area = request.area
    if area is None:
        return None, None
    if (area.bbox is None) == (area.center is None):
        errors.append(FieldError(field="area", reason="give either bbox, or center with radius_m"))
        return None, None
    if area.bbox is not None:
        if area.radius_m is not None:
            errors.append(FieldError(field="area.radius_m", reason="only with area.center"))
            return None, None
        box = area.bbox
        if box.south >= box.north:
            errors.append(FieldError(field="area.bbox.north", reason="must be north of south"))
            return None, None
        if box.west >= box.east:
            errors.append(FieldError(field="area.bbox.east", reason="must be east of west"))
            return None, None
        middle = math.radians((box.south + box.north) / 2)
        height = (box.north - box.south) * _METRES_PER_DEGREE
        width = (box.east - box.west) * _METRES_PER_DEGREE * math.cos(middle)
        if math.hypot(height, width) / 2 > MAX_RADIUS_M:
            errors.append(
                FieldError(
                    field="area.bbox",
                    reason=f"larger than a circle of {MAX_RADIUS_M:.0f} m radius",
                )
            )
            return None, None
        return Box(box.south, box.west, box.north, box.east), None
    center = area.center
    assert center is not None
    if area.radius_m is None:
        errors.append(FieldError(field="area.radius_m", reason="required with area.center"))
        return None, None
    if area.radius_m > MAX_RADIUS_M:
        errors.append(
            FieldError(
                field="area.radius_m",
                reason=f"{area.radius_m:.0f} m is over the limit of {MAX_RADIUS_M:.0f} m",
            )
        )
        return None, None
    return bounding_box(center.latitude, center.longitude, area.radius_m), Circle(
        center.latitude, center.longitude, area.radius_m
    )


def bounding_box(latitude: float, longitude: float, radius_m: float) -> Box:
    """The box around a circle, so the location index narrows before the distance test."""
    dlat = radius_m / _METRES_PER_DEGREE
    dlon = radius_m / (_METRES_PER_DEGREE * max(math.cos(math.radians(latitude)), 1e-6))
    return Box(
        max(-90.0, latitude - dlat),
        max(-180.0, longitude - dlon),
        min(90.0, latitude + dlat),
        min(180.0, longitude + dlon),
    )


def encode_cursor(row: dict[str, Any]) -> str:
    """An opaque cursor after ``row``."""
    payload = json.dumps(
        [row["captured_at"].isoformat(), str(row["read_id"]), row["plate_index"]],
        separators=(",", ":"),
    )
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    """Parse a cursor; 422 naming ``cursor`` when it was not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        captured_at, read_id, plate_index = json.loads(raw)
        parsed = datetime.fromisoformat(captured_at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        # The values reach the query: out of PostgreSQL's range they would fail there (500).
        index = int(plate_index)
        if not 0 <= index <= INT4_MAX:
            raise ValueError("plate_index out of range")
        return Cursor(storable_datetime(parsed), UUID(read_id), index)
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError):
        raise InvalidInput.field("cursor", "not a cursor returned by this search") from None


def _ids(values: Sequence[str] | None, field: str, errors: list[FieldError]) -> list[str]:
    cleaned = []
    for position, value in enumerate(values or []):
        if not value.strip():
            errors.append(FieldError(field=f"{field}[{position}]", reason="empty"))
        cleaned.append(value.strip())
    return cleaned


def build_query(
    request: SearchRequest, *, owner: str, now: datetime
) -> tuple[SearchQuery, MatchMode, str | None]:
    """Validate every field; the runnable query, the match mode and the plain plate searched.

    Raises:
        InvalidInput: naming every bad field at once.
    """
    errors: list[FieldError] = []
    _check_why(request, errors)
    window = _time_window(request, now, errors)
    plate, mode = _plate(request, errors)
    box, circle = _area(request, errors)
    state = None
    if request.state is not None:
        try:
            state = normalize_state(request.state)
        except InvalidState as exc:
            errors.append(FieldError(field="state", reason=str(exc)))
    cameras = _ids(request.cameras, "cameras", errors)
    deployments = _ids(request.deployments, "deployments", errors)
    if (
        request.plate is None
        and request.area is None
        and not cameras
        and not deployments
        and not any(e.field in {"plate", "area"} for e in errors)
    ):
        errors.append(
            FieldError(
                field="plate",
                reason="a search needs a plate, an area, cameras or deployments",
            )
        )
    after = decode_cursor(request.cursor) if request.cursor else None
    if errors or window is None:
        raise _refuse(errors)
    searched = (
        normalize_plate(request.plate)
        if plate is not None and plate.kind == "equals" and request.plate is not None
        else None
    )
    query = SearchQuery(
        owner_agency=owner,
        start=window[0],
        end=window[1],
        limit=request.limit,
        plate=plate,
        state=state,
        box=box,
        circle=circle,
        cameras=tuple(cameras),
        deployments=tuple(deployments),
        after=after,
    )
    return query, mode, searched


async def check_known(session: AsyncSession, query: SearchQuery) -> None:
    """Refuse cameras and deployments recognition has no reads from (422 naming each)."""
    errors: list[FieldError] = []
    for field, column, values in (
        ("cameras", "camera_id", query.cameras),
        ("deployments", "deployment_id", query.deployments),
    ):
        if not values:
            continue
        seen = await repository.seen_values(
            session, column=column, agency=query.owner_agency, values=values
        )
        for position, value in enumerate(values):
            if value not in seen:
                errors.append(
                    FieldError(
                        field=f"{field}[{position}]",
                        reason=f"unknown {column.removesuffix('_id')} {value!r}: no reads from it",
                    )
                )
    if errors:
        raise _refuse(errors)


def _result(row: dict[str, Any], mode: MatchMode, searched: str | None) -> SearchResult:
    read_id = row["read_id"]
    substitutions = None
    if mode is MatchMode.ocr_equivalent and searched is not None:
        explained = DEFAULT_OCR_EQUIVALENCE.substitutions(row["normalized_text"], searched)
        substitutions = ", ".join(str(s) for s in explained) if explained else None
    return SearchResult(
        read_id=read_id,
        plate_index=row["plate_index"],
        plate=row["text"],
        state=row["state"],
        confidence=row["confidence"],
        source=row["source"],
        captured_at=row["captured_at"],
        latitude=row["latitude"],
        longitude=row["longitude"],
        heading=row["heading"],
        camera_id=row["camera_id"],
        deployment_id=row["deployment_id"],
        agency=row["agency"],
        match=mode,
        substitutions=substitutions,
        links=ResultLinks(
            read=f"/v1/reads/{read_id}",
            image=f"/v1/reads/{read_id}/image" if row["has_image"] else None,
            crop=f"/v1/reads/{read_id}/plates/{row['plate_index']}/crop"
            if row["has_image"] and row["has_box"]
            else None,
        ),
    )


async def search(
    session: AsyncSession,
    context: RequestContext,
    request: SearchRequest,
    *,
    platform_agency: str,
    now: datetime | None = None,
) -> SearchPage:
    """Run a search for a case and return one page, newest first."""
    owner = owner_agency(context, platform_agency)
    not_before = mou_not_before(context)
    query, mode, searched = build_query(request, owner=owner, now=now or datetime.now(UTC))
    if not_before is not None and query.start < not_before:
        # The gateway refuses this first; a range it let through starts at or after it.
        raise PolicyDenied(
            f"time_range.start {query.start.isoformat()} is before {not_before.isoformat()}, "
            "the earliest the MOU's lookback allows",
            rule=MOU_LOOKBACK_RULE,
        )
    await check_known(session, query)
    # One row more than asked tells whether another page exists.
    probe = dataclasses.replace(query, limit=query.limit + 1)
    rows = await repository.search(session, probe)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return SearchPage(
        purpose=(request.purpose or "").strip(),
        case_number=(request.case_number or "").strip(),
        count=len(rows),
        limit=query.limit,
        next_cursor=encode_cursor(rows[-1]) if more and rows else None,
        results=[_result(row, mode, searched) for row in rows],
    )
