"""CSV hot lists with a header row and a header mapping.

The first non-blank line is the header. Each of our fields
(:data:`~lpr_hotlist.imports.model.ENTRY_FIELDS`) is found either through the caller's
mapping (our field name -> the file's column name) or, when unmapped, by the default column
names in :data:`DEFAULT_COLUMNS` (compared ignoring case, spaces, dashes and underscores).
Columns that map to none of our fields are kept as annotations on the entry.

The delimiter is ``,``, ``;``, tab or ``|``: the one the header uses most, unless given.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Final

from lpr_common.nul import NUL
from lpr_hotlist.imports.model import (
    ENTRY_FIELDS,
    ImportedEntry,
    ImportResult,
    LineError,
    MalformedFile,
    Rejection,
    decode_lines,
    entry_from_fields,
    finish,
)

FORMAT: Final = "csv"

DEFAULT_COLUMNS: Final[Mapping[str, tuple[str, ...]]] = {
    "plate": ("plate", "plate_number", "license_plate", "plate_no", "lic", "tag"),
    "state": ("state", "plate_state", "lis", "province"),
    "pattern": ("pattern", "plate_pattern"),
    "list_code": ("list_code", "code", "category"),
    "reason": ("reason", "description"),
    "ncic_number": ("ncic_number", "ncic", "nic"),
    "case_number": ("case_number", "case", "oca"),
    "vehicle_year": ("vehicle_year", "year", "vyr"),
    "vehicle_make": ("vehicle_make", "make", "vma"),
    "vehicle_model": ("vehicle_model", "model", "vmo"),
    "vehicle_colour": ("vehicle_colour", "vehicle_color", "colour", "color", "vco"),
    "effective_date": ("effective_date", "effective", "start_date"),
    "expiry_date": ("expiry_date", "expiration_date", "expires", "expiry", "end_date"),
}
"""Column names recognised for each of our fields when the caller maps none."""

_DELIMITERS: Final = (",", ";", "\t", "|")


def _column_key(name: str) -> str:
    return "".join(char for char in name.strip().lower() if char not in " -_")


def _resolve_columns(header: Sequence[str], mapping: Mapping[str, str]) -> dict[str, int]:
    unknown = sorted(set(mapping) - set(ENTRY_FIELDS))
    if unknown:
        raise ValueError(f"mapping names fields we do not have: {unknown}; use {ENTRY_FIELDS}")
    positions = {_column_key(name): index for index, name in reversed(list(enumerate(header)))}
    columns: dict[str, int] = {}
    for field_name in ENTRY_FIELDS:
        if field_name in mapping:
            column = mapping[field_name]
            if _column_key(column) not in positions:
                raise MalformedFile(
                    f"header has no column {column!r} (mapped to {field_name}); "
                    f"it has {list(header)}"
                )
            columns[field_name] = positions[_column_key(column)]
            continue
        for alias in DEFAULT_COLUMNS[field_name]:
            if _column_key(alias) in positions:
                columns[field_name] = positions[_column_key(alias)]
                break
    if "plate" not in columns and "pattern" not in columns:
        raise MalformedFile(
            f"no valid header: none of the columns {list(header)} is a plate or pattern column"
        )
    return columns


def parse_csv(
    data: bytes,
    *,
    mapping: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8-sig",
) -> ImportResult:
    """Parse a CSV hot list.

    Args:
        data: The whole file.
        mapping: Our field name -> the file's column name, for columns whose names differ
            from :data:`DEFAULT_COLUMNS`.
        delimiter: Field separator; guessed from the header when ``None``.
        encoding: Text encoding.

    Returns:
        Entries and per-line rejections (line numbers are the file's lines).

    Raises:
        MalformedFile: If the file is not text, has no header naming a plate or pattern
            column, has U+0000 in its header, lacks a mapped column, or has no readable row.
        ValueError: If ``mapping`` names a field that is not one of ours.
    """
    lines = decode_lines(data, encoding=encoding)
    header_index = next((i for i, text in enumerate(lines) if text.strip()), None)
    if header_index is None:
        raise MalformedFile("file is empty; a CSV hot list needs a header row")
    header_text = lines[header_index]
    if NUL in header_text:
        # Its column names would be stored with every entry (annotations).
        raise MalformedFile(
            f"header (line {header_index + 1}) holds the NUL character (U+0000), "
            "which cannot be stored"
        )
    if delimiter is None:
        delimiter = max(_DELIMITERS, key=header_text.count)
    reader = csv.reader(io.StringIO("\n".join(lines[header_index:])), delimiter=delimiter)
    try:
        header = next(reader)
        columns = _resolve_columns(header, mapping or {})
        mapped = set(columns.values())
        extra = [(index, name.strip()) for index, name in enumerate(header) if index not in mapped]
        entries: list[ImportedEntry] = []
        rejections: list[Rejection] = []
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            # csv counts physical lines, so quoted fields spanning lines keep numbers right.
            number = header_index + reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                rejections.append(
                    Rejection(number, f"row has {len(row)} fields; header has {len(header)}")
                )
                continue
            cells = row + [""] * (len(header) - len(row))
            fields = {name: cells[index] for name, index in columns.items()}
            try:
                entries.append(
                    entry_from_fields(number, fields, ((name, cells[i]) for i, name in extra))
                )
            except LineError as error:
                rejections.append(Rejection(number, str(error)))
    except csv.Error as error:
        raise MalformedFile(f"not readable as CSV: {error}")
    return finish(FORMAT, entries, rejections, "CSV")
