"""Hot-list importers: NCIC fixed-width, CSV with a header mapping, Genetec-style files.

Each parser takes the whole file as bytes and returns an
:class:`~lpr_hotlist.imports.model.ImportResult`; :func:`parse_hotlist` picks one by
format name (the ``--format`` of ``lprctl hotlist import``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum

from lpr_hotlist.imports.csv_mapping import DEFAULT_COLUMNS, parse_csv
from lpr_hotlist.imports.genetec import (
    DEFAULT_ATTRIBUTES,
    DEFAULT_FIXED_LAYOUT,
    FixedField,
    parse_genetec_delimited,
    parse_genetec_fixed,
)
from lpr_hotlist.imports.model import (
    ENTRY_FIELDS,
    NCIC_LIST_CODES,
    EntryDiff,
    EntryKey,
    ImportedEntry,
    ImportResult,
    MalformedFile,
    Rejection,
    diff,
)
from lpr_hotlist.imports.ncic import parse_ncic


class ImportFormat(StrEnum):
    """Hot-list file formats we read."""

    NCIC = "ncic"
    CSV = "csv"
    GENETEC_DELIMITED = "genetec_delimited"
    GENETEC_FIXED = "genetec_fixed"


def parse_hotlist(
    data: bytes,
    format: ImportFormat | str,
    *,
    mapping: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    attributes: Sequence[str] | None = None,
    layout: Sequence[FixedField] | None = None,
) -> ImportResult:
    """Parse a hot-list file in the given format.

    Args:
        data: The whole file.
        format: One of :class:`ImportFormat`.
        mapping: CSV only: our field name -> the file's column name.
        delimiter: CSV (guessed when ``None``) and Genetec delimited (``;`` when ``None``).
        attributes: Genetec delimited only: attribute order.
        layout: Genetec fixed-width only: attribute positions.

    Raises:
        MalformedFile: If the file as a whole cannot be read in that format.
        ValueError: If the format is unknown or an option does not fit it.
    """
    kind = ImportFormat(format)
    if mapping is not None and kind is not ImportFormat.CSV:
        raise ValueError("a header mapping applies only to the csv format")
    if attributes is not None and kind is not ImportFormat.GENETEC_DELIMITED:
        raise ValueError("attributes apply only to the genetec_delimited format")
    if layout is not None and kind is not ImportFormat.GENETEC_FIXED:
        raise ValueError("a fixed-width layout applies only to the genetec_fixed format")
    if kind is ImportFormat.NCIC:
        return parse_ncic(data)
    if kind is ImportFormat.CSV:
        return parse_csv(data, mapping=mapping, delimiter=delimiter)
    if kind is ImportFormat.GENETEC_DELIMITED:
        return parse_genetec_delimited(
            data,
            attributes=DEFAULT_ATTRIBUTES if attributes is None else attributes,
            delimiter=";" if delimiter is None else delimiter,
        )
    return parse_genetec_fixed(data, layout=DEFAULT_FIXED_LAYOUT if layout is None else layout)


__all__ = [
    "DEFAULT_ATTRIBUTES",
    "DEFAULT_COLUMNS",
    "DEFAULT_FIXED_LAYOUT",
    "ENTRY_FIELDS",
    "NCIC_LIST_CODES",
    "EntryDiff",
    "EntryKey",
    "FixedField",
    "ImportFormat",
    "ImportResult",
    "ImportedEntry",
    "MalformedFile",
    "Rejection",
    "diff",
    "parse_csv",
    "parse_genetec_delimited",
    "parse_genetec_fixed",
    "parse_hotlist",
    "parse_ncic",
]
