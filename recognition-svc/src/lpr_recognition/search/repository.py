"""SQL of the read search. Read-only; every statement prunes to the partitions of its range.

Plate conditions are written so that the indexes of migration ``recognition_0003`` serve
them: ``normalized_text`` (exact, and prefix ranges for patterns) and the canonical
OCR form ``translate(normalized_text, FROM, TO)`` (OCR-equivalent search). The canonical
expression is spelled with literal constants because PostgreSQL only uses an expression
index when the query repeats the indexed expression exactly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from lpr_common.plates import DEFAULT_OCR_EQUIVALENCE, OcrEquivalence
from lpr_recognition.settings import SCHEMA

# A normalised plate has at most 10 characters of A-Z 0-9; "Z" sorts after every one of
# them, so ``prefix || 10 x "Z"`` bounds every plate that starts with ``prefix``.
_PREFIX_CEILING: Final = "Z" * 10


def translate_arguments(equivalence: OcrEquivalence = DEFAULT_OCR_EQUIVALENCE) -> tuple[str, str]:
    """The ``translate()`` arguments mapping each character to its OCR class representative."""
    source, target = [], []
    for members in equivalence.classes:
        for char in members[1:]:
            source.append(char)
            target.append(members[0])
    return "".join(source), "".join(target)


def canonical_sql(column: str, equivalence: OcrEquivalence = DEFAULT_OCR_EQUIVALENCE) -> str:
    """SQL computing the canonical OCR form of ``column`` (the indexed expression)."""
    source, target = translate_arguments(equivalence)
    # Only A-Z and 0-9 reach here (OcrEquivalence refuses anything else): no quoting issue.
    return f"translate({column}, '{source}', '{target}')"


@dataclass(frozen=True)
class PlateCondition:
    """How to compare plates: ``kind`` is ``equals`` or ``like``; ``canonical`` picks the column."""

    kind: str
    value: str
    canonical: bool
    prefix: str = ""


@dataclass(frozen=True)
class Circle:
    """A radius around a point, with its bounding box for the index."""

    latitude: float
    longitude: float
    radius_m: float


@dataclass(frozen=True)
class Box:
    """A latitude/longitude box."""

    south: float
    west: float
    north: float
    east: float


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped (the last row's sort key)."""

    captured_at: datetime
    read_id: UUID
    plate_index: int


@dataclass(frozen=True)
class SearchQuery:
    """A validated search, ready to run."""

    owner_agency: str
    start: datetime
    end: datetime
    limit: int
    plate: PlateCondition | None = None
    state: str | None = None
    box: Box | None = None
    circle: Circle | None = None
    cameras: Sequence[str] = ()
    deployments: Sequence[str] = ()
    after: Cursor | None = None
    equivalence: OcrEquivalence = field(default=DEFAULT_OCR_EQUIVALENCE)


_EARTH_RADIUS_M: Final = 6_371_008.8


def build_search_sql(query: SearchQuery) -> tuple[str, dict[str, Any]]:
    """The SQL text and parameters of a search (exposed for the benchmark's raw baseline)."""
    where = [
        "p.captured_at >= :start",
        "p.captured_at < :end",
        "r.captured_at >= :start",
        "r.captured_at < :end",
        "r.agency = :owner",
    ]
    params: dict[str, Any] = {
        "start": query.start,
        "end": query.end,
        "owner": query.owner_agency,
        "limit": query.limit,
    }
    plate = query.plate
    if plate is not None:
        column = (
            canonical_sql("p.normalized_text", query.equivalence)
            if plate.canonical
            else "p.normalized_text"
        )
        if plate.kind == "equals":
            where.append(f"{column} = :plate")
        else:
            where.append(f"{column} LIKE :plate")
            if plate.prefix:
                # A range the btree can use even when the planner sees LIKE's pattern late.
                where.append(f"{column} >= :prefix_low AND {column} <= :prefix_high")
                params["prefix_low"] = plate.prefix
                params["prefix_high"] = plate.prefix + _PREFIX_CEILING
        params["plate"] = plate.value
    if query.state is not None:
        where.append("p.state = :state")
        params["state"] = query.state
    box = query.box
    if box is not None:
        where.append(
            "point(r.longitude, r.latitude) <@ box(point(CAST(:west AS float8), "
            "CAST(:south AS float8)), point(CAST(:east AS float8), CAST(:north AS float8)))"
        )
        params.update(south=box.south, west=box.west, north=box.north, east=box.east)
    circle = query.circle
    if circle is not None:
        where.append(
            f"2 * {_EARTH_RADIUS_M} * asin(sqrt("
            "power(sin(radians(r.latitude - CAST(:center_latitude AS float8)) / 2), 2) + "
            "cos(radians(r.latitude)) * cos(radians(CAST(:center_latitude AS float8))) * "
            "power(sin(radians(r.longitude - CAST(:center_longitude AS float8)) / 2), 2))) "
            "<= CAST(:radius_m AS float8)"
        )
        params.update(
            center_latitude=circle.latitude,
            center_longitude=circle.longitude,
            radius_m=circle.radius_m,
        )
    if query.cameras:
        where.append("r.camera_id = ANY(:cameras)")
        params["cameras"] = list(query.cameras)
    if query.deployments:
        where.append("r.deployment_id = ANY(:deployments)")
        params["deployments"] = list(query.deployments)
    if query.after is not None:
        where.append(
            "(p.captured_at, p.read_id, p.plate_index) < "
            "(CAST(:after_at AS timestamptz), CAST(:after_id AS uuid), CAST(:after_index AS integer))"
        )
        params.update(
            after_at=query.after.captured_at,
            after_id=query.after.read_id,
            after_index=query.after.plate_index,
        )
    sql = (
        "SELECT p.read_id, p.plate_index, p.text, p.normalized_text, p.state, p.confidence, "
        "p.source, p.captured_at, p.box IS NOT NULL AS has_box, r.latitude, r.longitude, "
        "r.heading, r.camera_id, r.deployment_id, r.agency, r.blob_key IS NOT NULL AS has_image "
        f"FROM {SCHEMA}.plates AS p JOIN {SCHEMA}.reads AS r "
        "ON r.id = p.read_id AND r.captured_at = p.captured_at "
        f"WHERE {' AND '.join(where)} "
        "ORDER BY p.captured_at DESC, p.read_id DESC, p.plate_index DESC LIMIT :limit"
    )
    return sql, params


_PARAMETER = re.compile(r"(?<!:):([a-z_]+)")


def positional(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``sql`` with its ``:name`` parameters as asyncpg's ``$n``, and their values in order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PARAMETER.sub(number, sql), [params[name] for name in order]


async def search(session: AsyncSession, query: SearchQuery) -> list[dict[str, Any]]:
    """Rows matching the search, newest first, at most ``query.limit``.

    Sent on the session's own connection (its transaction, if any) straight through
    asyncpg: the statement is the same prepared statement every time, and the ORM's
    execution layer cost more than the rest of the request's Python.
    """
    sql, params = build_search_sql(query)
    statement, arguments = positional(sql, params)
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection
    return [dict(row) for row in await driver.fetch(statement, *arguments)]


async def seen_values(
    session: AsyncSession, *, column: str, agency: str, values: Sequence[str]
) -> set[str]:
    """Which of ``values`` occur in ``reads.<column>`` for ``agency`` (one index probe each)."""
    if column not in {"camera_id", "deployment_id"}:
        raise ValueError(f"not a searchable column: {column}")
    statement = text(
        f"SELECT v FROM unnest(CAST(:values AS text[])) AS v WHERE EXISTS ("
        f"SELECT 1 FROM {SCHEMA}.reads WHERE {column} = v AND agency = :agency)"
    )
    result = await session.execute(statement, {"values": list(values), "agency": agency})
    return {row[0] for row in result}
