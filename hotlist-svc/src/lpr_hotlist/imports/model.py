"""What every hot-list importer produces, and the pieces they share.

An importer turns a whole file (bytes) into :class:`ImportResult`: the entries it could
read and one :class:`Rejection` per line it could not, with the line number and reason. A
bad line never raises; a file that is not of the format at all raises
:class:`MalformedFile`, so that an import changes nothing.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final, Protocol

from lpr_common.nul import NUL
from lpr_common.plates import (
    InvalidPattern,
    InvalidPlate,
    is_pattern,
    is_valid_state,
    normalize_plate,
    parse_pattern,
)

NCIC_LIST_CODES: Final[Mapping[str, str]] = {
    "A": "AMBER alert",
    "F": "felony",
    "W": "wanted",
    "V": "stolen vehicle",
    "P": "stolen plate",
    "M": "missing person",
    "C": "supervised release",
    "H": "protection order",
    "K": "protective interest",
    "L": "violent person",
    "R": "Canadian stolen",
    "T": "gang/terrorist",
    "X": "sex offender",
}
"""NCIC list codes (first column of the NCIC extract) and what each means."""

EntryKey = tuple[str | None, str | None, str | None]
"""``(plate, state, pattern)``: what makes two entries of one list the same entry."""


class MalformedFile(ValueError):
    """The file as a whole cannot be read in the chosen format; nothing was imported.

    Attributes:
        reason: Why, in words.
        rejections: Line rejections gathered before giving up (may be empty).
    """

    def __init__(self, reason: str, rejections: Iterable[Rejection] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rejections = tuple(rejections)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line that was not imported.

    Attributes:
        line: 1-based line number in the file.
        reason: Why, naming the field.
    """

    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImportedEntry:
    """One hot-list entry read from a file. Plates are normalised, states uppercase.

    Exactly one of ``plate`` and ``pattern`` is set.
    """

    line: int
    plate: str | None
    state: str | None = None
    pattern: str | None = None
    list_code: str | None = None
    reason: str | None = None
    ncic_number: str | None = None
    case_number: str | None = None
    originating_agency: str | None = None
    plate_type: str | None = None
    plate_year: int | None = None
    vehicle_year: int | None = None
    vehicle_make: str | None = None
    vehicle_model: str | None = None
    vehicle_style: str | None = None
    vehicle_colour: str | None = None
    effective_date: date | None = None
    expiry_date: date | None = None
    annotations: tuple[tuple[str, str], ...] = field(default=())

    @property
    def key(self) -> EntryKey:
        """``(plate, state, pattern)``, the identity used by :func:`diff`."""
        return (self.plate, self.state, self.pattern)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an importer read from one file.

    Attributes:
        format: The format name (``ncic``, ``csv``, ``genetec_delimited``, ``genetec_fixed``).
        entries: Entries read, in file order.
        rejections: Lines refused, in file order.
    """

    format: str
    entries: tuple[ImportedEntry, ...]
    rejections: tuple[Rejection, ...]


class LineError(ValueError):
    """Raised inside an importer for one bad line; becomes a :class:`Rejection`."""


MAX_LENGTHS: Final[Mapping[str, int]] = {
    "pattern": 32,
    "list_code": 32,
    "ncic_number": 16,
    "case_number": 64,
    "originating_agency": 16,
    "vehicle_make": 32,
    "vehicle_model": 32,
    "vehicle_colour": 32,
}
"""The longest text each field may hold: the widths of its ``hot_list_entries`` column.

Plates (10) and states (2) are held to their widths when they are validated.
"""


def refuse_nul(text: str, where: str) -> None:
    """Refuse text holding U+0000, which PostgreSQL cannot store.

    Raises:
        LineError: If ``text`` holds it; the reason names ``where``.
    """
    if NUL in text:
        raise LineError(f"{where} holds the NUL character (U+0000), which cannot be stored")


def within_lengths(entry: ImportedEntry) -> ImportedEntry:
    """``entry`` unchanged if each of its fields fits its column (:data:`MAX_LENGTHS`).

    Raises:
        LineError: If a field is too long; the reason names the field.
    """
    for field_name, limit in MAX_LENGTHS.items():
        value: str | None = getattr(entry, field_name)
        if value is not None and len(value) > limit:
            raise LineError(f"{field_name} has {len(value)} characters; at most {limit} allowed")
    return entry


class _Keyed(Protocol):
    @property
    def plate(self) -> str | None: ...
    @property
    def state(self) -> str | None: ...
    @property
    def pattern(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class EntryDiff:
    """How a new version of a list differs from the old, keyed on (plate, state, pattern).

    Attributes:
        added: Keys only in the new version.
        removed: Keys only in the old version.
        unchanged: Keys in both.
    """

    added: frozenset[EntryKey]
    removed: frozenset[EntryKey]
    unchanged: frozenset[EntryKey]

    @property
    def added_count(self) -> int:
        """How many entries the new version adds."""
        return len(self.added)

    @property
    def removed_count(self) -> int:
        """How many entries the new version removes."""
        return len(self.removed)

    @property
    def unchanged_count(self) -> int:
        """How many entries are in both versions."""
        return len(self.unchanged)


def diff(old_entries: Iterable[_Keyed], new_entries: Iterable[_Keyed]) -> EntryDiff:
    """Compare two versions of a list by ``(plate, state, pattern)``; duplicates count once."""
    old = {(e.plate, e.state, e.pattern) for e in old_entries}
    new = {(e.plate, e.state, e.pattern) for e in new_entries}
    return EntryDiff(
        added=frozenset(new - old), removed=frozenset(old - new), unchanged=frozenset(old & new)
    )


UTF16_SAMPLE_BYTES: Final = 4096
"""How much of a file is looked at to tell UTF-16 text without a byte-order mark."""

_UTF16_REEXPORT: Final = "re-export as UTF-8 or with a byte-order mark (BOM)"


def _utf16_text(data: bytes, encoding: str) -> str | None:
    """The file's text if it is UTF-16, else ``None`` (then it is read as ``encoding``).

    Records systems export UTF-16LE, often without a byte-order mark. Hot-list text is
    almost all ASCII, so such a file has a NUL byte at nearly every other position: at odd
    offsets (little-endian) or even ones (big-endian), and none at the others (a character
    outside Latin-1, a dash or a Cyrillic letter, has no NUL byte). Read as UTF-8 it would
    be refused line by line for holding NUL characters.

    Raises:
        MalformedFile: The file looks like UTF-16 without a BOM but is not valid UTF-16,
            or is so full of NUL bytes that it is neither text nor recognisably UTF-16.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            return None  # not UTF-16 after all: read (and refused) as the format's encoding
        return _as_encoding(text, encoding)
    sample = data[: min(len(data), UTF16_SAMPLE_BYTES) // 2 * 2]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even_nul = sample[0::2].count(0) / (len(sample) // 2)
    odd_nul = sample[1::2].count(0) / (len(sample) // 2)
    codec = None
    if odd_nul >= 0.5 and even_nul == 0:
        codec = "utf-16-le"
    elif even_nul >= 0.5 and odd_nul == 0:
        codec = "utf-16-be"
    elif (even_nul + odd_nul) / 2 >= 0.25:
        raise MalformedFile(
            f"file holds NUL bytes in {(even_nul + odd_nul) / 2:.0%} of its first "
            f"{len(sample)} bytes; if it is UTF-16 without a byte-order mark, {_UTF16_REEXPORT}"
        )
    if codec is None:
        return None
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as error:
        raise MalformedFile(
            f"file looks like {codec.upper()} text without a byte-order mark but is not valid "
            f"{codec.upper()} (byte {error.start} cannot be decoded): {_UTF16_REEXPORT}"
        )
    return _as_encoding(text, encoding)


def _as_encoding(text: str, encoding: str) -> str:
    """``text`` if the format's encoding can hold it (an NCIC extract is ASCII)."""
    try:
        text.encode(encoding)
    except UnicodeEncodeError as error:
        raise MalformedFile(
            f"file is not valid {encoding} text (character {error.start} cannot be encoded)"
        )
    except LookupError:
        raise MalformedFile(f"unknown text encoding {encoding!r}")
    return text


def decode_lines(data: bytes, *, encoding: str) -> list[str]:
    """Decode a file into lines without their line endings.

    UTF-16 text, with or without a byte-order mark, is recognised and decoded whatever
    ``encoding`` says (:func:`_utf16_text`). A line holding a NUL byte in a file that is
    otherwise valid text is returned as it is: the importer refuses that line
    (:func:`refuse_nul`) and imports the others.

    Raises:
        MalformedFile: If the bytes are binary (NUL bytes and not valid text), not valid
            text in ``encoding``, or UTF-16 without a byte-order mark that does not decode.
    """
    utf16 = _utf16_text(data, encoding)
    if utf16 is not None:
        return utf16.splitlines()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        if b"\x00" in data:
            raise MalformedFile("file is binary (contains NUL bytes), not a text hot list")
        raise MalformedFile(
            f"file is not valid {encoding} text (byte {error.start} cannot be decoded)"
        )
    except LookupError:
        raise MalformedFile(f"unknown text encoding {encoding!r}")
    # A UTF-8 byte order mark survives a plain "utf-8" decode; it is not data.
    return text.removeprefix("\ufeff").splitlines()


_DATE_FORMATS: Final = ("%Y-%m-%d", "%Y%m%d", "%m/%d/%Y", "%Y/%m/%d")


def parse_date(text: str, field_name: str) -> date | None:
    """Parse ``YYYY-MM-DD``, ``YYYYMMDD``, ``MM/DD/YYYY`` or ``YYYY/MM/DD``; blank is ``None``.

    Raises:
        LineError: If the text is not a date in one of those forms.
    """
    value = text.strip()
    if not value:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    raise LineError(f"{field_name} {value!r} is not a date (YYYY-MM-DD, YYYYMMDD or MM/DD/YYYY)")


_YEAR: Final = re.compile(r"\d{4}")


def parse_year(text: str) -> int | None:
    """A four-digit year, or ``None`` when blank or not a year (a descriptive field only)."""
    value = text.strip()
    return int(value) if _YEAR.fullmatch(value) else None


def text_or_none(text: str | None) -> str | None:
    """Stripped text, ``None`` when blank."""
    if text is None:
        return None
    value = text.strip()
    return value or None


def plate_and_pattern(text: str, field_name: str = "plate") -> tuple[str | None, str | None]:
    """Split a plate field into ``(plate, None)`` or ``(None, pattern)``.

    Raises:
        LineError: If it is blank or not a valid plate or pattern.
    """
    if not text.strip():
        raise LineError(f"{field_name} is blank")
    try:
        if is_pattern(text):
            return None, parse_pattern(text).text
        return normalize_plate(text), None
    except (InvalidPlate, InvalidPattern) as error:
        raise LineError(str(error))


def checked_state(text: str | None, *, required: bool = False) -> str | None:
    """An uppercase state code, ``None`` when blank and not required.

    Raises:
        LineError: If it is not a known code, or blank when required.
    """
    value = text_or_none(text)
    if value is None:
        if required:
            raise LineError("state is blank")
        return None
    if not is_valid_state(value):
        raise LineError(f"state {value!r} is not a known state, territory or province code")
    return value.upper()


def check_dates(effective: date | None, expiry: date | None) -> None:
    """Refuse an entry that expires before it takes effect."""
    if effective is not None and expiry is not None and expiry < effective:
        raise LineError(f"expiry_date {expiry} is before effective_date {effective}")


def reason_for(list_code: str | None, reason: str | None) -> str | None:
    """The stated reason, else the meaning of an NCIC list code, else ``None``."""
    if reason:
        return reason
    if list_code is not None:
        return NCIC_LIST_CODES.get(list_code.upper())
    return None


def finish(
    format_name: str, entries: list[ImportedEntry], rejections: list[Rejection], what: str
) -> ImportResult:
    """Build the result, or refuse the whole file when no line could be read.

    Raises:
        MalformedFile: If the file has no entries at all.
    """
    if not entries:
        if not rejections:
            raise MalformedFile(f"file has no {what} lines")
        first = rejections[0]
        raise MalformedFile(
            f"no line could be read as {what}; line {first.line}: {first.reason}", rejections
        )
    return ImportResult(format_name, tuple(entries), tuple(rejections))


ENTRY_FIELDS: Final = (
    "plate",
    "state",
    "pattern",
    "list_code",
    "reason",
    "ncic_number",
    "case_number",
    "vehicle_year",
    "vehicle_make",
    "vehicle_model",
    "vehicle_colour",
    "effective_date",
    "expiry_date",
)
"""Our field names, the keys a CSV header mapping and a Genetec layout map onto."""


def entry_from_fields(
    line: int, fields: Mapping[str, str], annotations: Iterable[tuple[str, str]] = ()
) -> ImportedEntry:
    """Build an entry from text fields keyed by :data:`ENTRY_FIELDS` names.

    A plate with ``*`` or ``?`` is taken as a pattern. Blank fields are ``None``.

    Raises:
        LineError: If neither plate nor pattern is usable, the state or a date is invalid,
            a field is longer than its column, or a field or annotation holds U+0000.
    """
    annotations = tuple(annotations)
    for name, value in (*fields.items(), *annotations):
        refuse_nul(name, "a column name")
        refuse_nul(value, name)
    raw_plate = fields.get("plate", "")
    raw_pattern = fields.get("pattern", "")
    if raw_plate.strip():
        plate, pattern = plate_and_pattern(raw_plate, "plate")
    elif raw_pattern.strip():
        plate, pattern = plate_and_pattern(raw_pattern, "pattern")
    else:
        raise LineError("plate and pattern are both blank")
    state = checked_state(fields.get("state"))
    effective = parse_date(fields.get("effective_date", ""), "effective_date")
    expiry = parse_date(fields.get("expiry_date", ""), "expiry_date")
    check_dates(effective, expiry)
    list_code = text_or_none(fields.get("list_code"))
    entry = ImportedEntry(
        line=line,
        plate=plate,
        state=state,
        pattern=pattern,
        list_code=list_code,
        reason=reason_for(list_code, text_or_none(fields.get("reason"))),
        ncic_number=text_or_none(fields.get("ncic_number")),
        case_number=text_or_none(fields.get("case_number")),
        vehicle_year=parse_year(fields.get("vehicle_year", "")),
        vehicle_make=text_or_none(fields.get("vehicle_make")),
        vehicle_model=text_or_none(fields.get("vehicle_model")),
        vehicle_colour=text_or_none(fields.get("vehicle_colour")),
        effective_date=effective,
        expiry_date=expiry,
        annotations=tuple((name, value) for name, value in annotations if value.strip()),
    )
    return within_lengths(entry)
