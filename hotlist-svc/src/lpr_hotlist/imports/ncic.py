"""NCIC fixed-width hot-list extract.

0-based columns (end exclusive), as documented by public importers:

==========  ======================================================================
``[0]``     list code (:data:`~lpr_hotlist.imports.model.NCIC_LIST_CODES`)
``[0:10]``  NCIC number (NIC: a letter and nine digits) when it has that shape
``[10:19]`` originating agency identifier (ORI: two letters, seven characters) when
            it has that shape
``[19:27]`` date, ``YYYYMMDD`` (taken as the entry's effective date)
``[27:37]`` plate (LIC)
``[37:39]`` state (LIS)
``[39:43]`` tag year (LIY)
``[43:45]`` plate type (LIT)
``[45:49]`` vehicle year (VYR)
``[49:53]`` make (VMA)
``[53:56]`` model (VMO)
``[56:58]`` style (VST)
``[58:]``   colour (VCO)
==========  ======================================================================

Columns 1-19 and 43-45, 56-58 are not in the published table; reading them as NIC, ORI,
plate type and style is our reading of the example line
``V123456789LA057020020190509AB123456  CA2009MC2009YAMACYLMCBLK`` (NIC ``V123456789``,
ORI ``LA0570200``, plate type and style ``MC`` for a Yamaha motorcycle) and the NCIC field
codes. They are kept only when they have the NCIC shape.

A line is refused when the list code is unknown, the date is not a date, the plate is not
a valid plate or the state not a valid code, when it holds the NUL character, or when the
colour (the rest of the line) is longer than its column. Descriptive fields (years, make,
model, colour) otherwise never cause a refusal; a year that is not four digits is left out.
"""

from __future__ import annotations

import re
from typing import Final

from lpr_common.plates import InvalidPlate, normalize_plate
from lpr_hotlist.imports.model import (
    NCIC_LIST_CODES,
    ImportedEntry,
    ImportResult,
    LineError,
    Rejection,
    checked_state,
    decode_lines,
    finish,
    parse_date,
    parse_year,
    refuse_nul,
    text_or_none,
    within_lengths,
)

FORMAT: Final = "ncic"
MIN_LINE_LENGTH: Final = 39
"""A line must reach through the state (columns 37-39)."""

_NIC: Final = re.compile(r"[A-Z]\d{9}")
_ORI: Final = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")
_DATE: Final = re.compile(r"\d{8}")


def parse_ncic_line(text: str, line: int) -> ImportedEntry:
    """Parse one NCIC line.

    Raises:
        LineError: If the line cannot be an entry.
    """
    refuse_nul(text, "line")
    if len(text) < MIN_LINE_LENGTH:
        raise LineError(
            f"line has {len(text)} characters; the NCIC layout needs at least "
            f"{MIN_LINE_LENGTH} (through the state in columns 37-39)"
        )
    list_code = text[0]
    if list_code not in NCIC_LIST_CODES:
        raise LineError(f"list code {list_code!r} in column 0 is not an NCIC list code")
    raw_date = text[19:27]
    if _DATE.fullmatch(raw_date) is None:
        raise LineError(f"date in columns 19-27 {raw_date!r} is not YYYYMMDD")
    effective = parse_date(raw_date, "date in columns 19-27")
    try:
        plate = normalize_plate(text[27:37])
    except InvalidPlate as error:
        raise LineError(f"plate in columns 27-37: {error}")
    state = checked_state(text[37:39], required=True)
    nic = text[0:10]
    ori = text[10:19]
    entry = ImportedEntry(
        line=line,
        plate=plate,
        state=state,
        list_code=list_code,
        reason=NCIC_LIST_CODES[list_code],
        ncic_number=nic if _NIC.fullmatch(nic) else None,
        originating_agency=ori if _ORI.fullmatch(ori) else None,
        plate_year=parse_year(text[39:43]),
        plate_type=text_or_none(text[43:45]),
        vehicle_year=parse_year(text[45:49]),
        vehicle_make=text_or_none(text[49:53]),
        vehicle_model=text_or_none(text[53:56]),
        vehicle_style=text_or_none(text[56:58]),
        vehicle_colour=text_or_none(text[58:]),
        effective_date=effective,
    )
    return within_lengths(entry)


def parse_ncic(data: bytes, *, encoding: str = "ascii") -> ImportResult:
    """Parse an NCIC fixed-width extract.

    Args:
        data: The whole file.
        encoding: Text encoding; NCIC extracts are ASCII.

    Returns:
        Entries and per-line rejections. Blank lines are skipped.

    Raises:
        MalformedFile: If the file is not text, is empty, or no line has the NCIC layout.
    """
    entries: list[ImportedEntry] = []
    rejections: list[Rejection] = []
    for number, text in enumerate(decode_lines(data, encoding=encoding), start=1):
        if not text.strip():
            continue
        try:
            entries.append(parse_ncic_line(text, number))
        except LineError as error:
            rejections.append(Rejection(number, str(error)))
    return finish(FORMAT, entries, rejections, "NCIC fixed-width")
