"""Genetec-style (AutoVu / Security Center) hot lists, delimited or fixed-width.

This is our reading of Genetec's public administrator guides, not a copy of any Genetec
code or a guarantee of compatibility:

- A hot list is a text file, one entry per line, whose fields ("attributes") are either
  separated by a delimiter (``;`` by default; also ``:``, ``,`` or tab) or found at fixed
  character positions.
- ``PlateNumber`` is the mandatory attribute; ``Category`` and ``PlateState`` are the
  other default attributes; administrators add their own (for example ``CarColor``), and
  ``EffectiveDate`` / ``ExpiryDate`` appear in the documented examples.
- The attribute order (delimited) or positions (fixed-width) are configured per list, so
  callers pass them; the defaults below are ours.

What we implement:

- **Delimited** (:func:`parse_genetec_delimited`): fields in the order of ``attributes``
  (default :data:`DEFAULT_ATTRIBUTES`: ``Category;PlateState;PlateNumber;EffectiveDate;
  ExpiryDate``). If the first non-blank line names ``PlateNumber`` it is taken as a header
  giving the order. Missing trailing fields are blank; a line with more fields than
  attributes is refused.
- **Fixed-width** (:func:`parse_genetec_fixed`): each attribute at ``(name, start, length)``
  with a 0-based start (default :data:`DEFAULT_FIXED_LAYOUT`: ``Category`` 0-20,
  ``PlateState`` 20-22, ``PlateNumber`` 22-32, ``EffectiveDate`` 32-42,
  ``ExpiryDate`` 42-52).
- Attributes map to our fields as in :data:`ATTRIBUTE_FIELDS` (``Category`` -> list code,
  whose NCIC meaning, if it is an NCIC code, becomes the reason); other attributes are
  kept as annotations. A ``PlateNumber`` with ``*`` or ``?`` is a pattern.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from lpr_common.nul import NUL
from lpr_hotlist.imports.model import (
    ImportedEntry,
    ImportResult,
    LineError,
    MalformedFile,
    Rejection,
    decode_lines,
    entry_from_fields,
    finish,
)

FORMAT_DELIMITED: Final = "genetec_delimited"
FORMAT_FIXED: Final = "genetec_fixed"

ATTRIBUTE_FIELDS: Final[Mapping[str, str]] = {
    "category": "list_code",
    "platestate": "state",
    "platenumber": "plate",
    "effectivedate": "effective_date",
    "expirydate": "expiry_date",
    "reason": "reason",
    "casenumber": "case_number",
    "ncicnumber": "ncic_number",
    "make": "vehicle_make",
    "vehiclemake": "vehicle_make",
    "model": "vehicle_model",
    "vehiclemodel": "vehicle_model",
    "color": "vehicle_colour",
    "colour": "vehicle_colour",
    "carcolor": "vehicle_colour",
    "vehiclecolor": "vehicle_colour",
    "year": "vehicle_year",
    "vehicleyear": "vehicle_year",
}
"""Attribute name (lowercase, no spaces) -> our field."""

DEFAULT_ATTRIBUTES: Final = ("Category", "PlateState", "PlateNumber", "EffectiveDate", "ExpiryDate")


@dataclass(frozen=True, slots=True)
class FixedField:
    """One attribute of a fixed-width layout: ``text[start:start + length]`` (0-based)."""

    name: str
    start: int
    length: int


DEFAULT_FIXED_LAYOUT: Final = (
    FixedField("Category", 0, 20),
    FixedField("PlateState", 20, 2),
    FixedField("PlateNumber", 22, 10),
    FixedField("EffectiveDate", 32, 10),
    FixedField("ExpiryDate", 42, 10),
)


def _attribute_key(name: str) -> str:
    return "".join(name.split()).lower()


def _check_attributes(names: Sequence[str]) -> None:
    if "platenumber" not in {_attribute_key(name) for name in names}:
        raise MalformedFile(f"layout {list(names)} has no PlateNumber attribute")


def _entry(line: int, values: Sequence[tuple[str, str]]) -> ImportedEntry:
    fields: dict[str, str] = {}
    annotations: list[tuple[str, str]] = []
    for name, value in values:
        field_name = ATTRIBUTE_FIELDS.get(_attribute_key(name))
        if field_name is None:
            annotations.append((name, value.strip()))
        else:
            fields[field_name] = value
    if not fields.get("plate", "").strip():
        raise LineError("PlateNumber is blank")
    return entry_from_fields(line, fields, annotations)


def parse_genetec_delimited(
    data: bytes,
    *,
    attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
    delimiter: str = ";",
    encoding: str = "utf-8-sig",
) -> ImportResult:
    """Parse a Genetec-style delimited hot list.

    Args:
        data: The whole file.
        attributes: Attribute names in field order; replaced by the file's header line
            when it has one naming ``PlateNumber``.
        delimiter: Field separator (``;``, ``:``, ``,`` or ``\\t``).
        encoding: Text encoding.

    Raises:
        MalformedFile: If the file is not text, the layout has no ``PlateNumber``, the
            header holds U+0000, or no line could be read.
    """
    if len(delimiter) != 1:
        raise ValueError(f"delimiter must be one character, got {delimiter!r}")
    lines = decode_lines(data, encoding=encoding)
    names = list(attributes)
    first = next((i for i, text in enumerate(lines) if text.strip()), None)
    start = 0
    if first is not None:
        cells = [cell.strip() for cell in lines[first].split(delimiter)]
        if "platenumber" in {_attribute_key(cell) for cell in cells}:
            if NUL in lines[first]:
                # Its attribute names would be stored with every entry (annotations).
                raise MalformedFile(
                    f"header (line {first + 1}) holds the NUL character (U+0000), "
                    "which cannot be stored"
                )
            names, start = cells, first + 1
    _check_attributes(names)
    entries: list[ImportedEntry] = []
    rejections: list[Rejection] = []
    for index in range(start, len(lines)):
        text = lines[index]
        number = index + 1
        if not text.strip():
            continue
        values = text.split(delimiter)
        if len(values) > len(names):
            rejections.append(
                Rejection(number, f"line has {len(values)} fields; the layout has {len(names)}")
            )
            continue
        values += [""] * (len(names) - len(values))
        try:
            entries.append(_entry(number, list(zip(names, values, strict=True))))
        except LineError as error:
            rejections.append(Rejection(number, str(error)))
    return finish(FORMAT_DELIMITED, entries, rejections, "Genetec delimited")


def parse_genetec_fixed(
    data: bytes,
    *,
    layout: Sequence[FixedField] = DEFAULT_FIXED_LAYOUT,
    encoding: str = "utf-8-sig",
) -> ImportResult:
    """Parse a Genetec-style fixed-width hot list.

    Args:
        data: The whole file.
        layout: Where each attribute lies.
        encoding: Text encoding.

    Raises:
        MalformedFile: If the file is not text, the layout has no ``PlateNumber``, or no
            line could be read.
    """
    _check_attributes([fixed.name for fixed in layout])
    plate_field = next(f for f in layout if _attribute_key(f.name) == "platenumber")
    entries: list[ImportedEntry] = []
    rejections: list[Rejection] = []
    for number, text in enumerate(decode_lines(data, encoding=encoding), start=1):
        if not text.strip():
            continue
        if len(text) <= plate_field.start:
            rejections.append(
                Rejection(
                    number,
                    f"line has {len(text)} characters; PlateNumber starts at {plate_field.start}",
                )
            )
            continue
        values = [(f.name, text[f.start : f.start + f.length]) for f in layout]
        try:
            entries.append(_entry(number, values))
        except LineError as error:
            rejections.append(Rejection(number, str(error)))
    return finish(FORMAT_FIXED, entries, rejections, "Genetec fixed-width")
