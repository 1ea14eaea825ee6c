"""Plate rules shared by hot-list matching and historical search.

One module so that the hot-list matcher (hotlist-svc) and the read search (recognition-svc)
agree on what a plate is, which state codes exist, which characters OCR confuses and what
a partial-plate pattern means. Everything here is pure Python with no I/O.

- :func:`normalize_plate` turns what a camera, an officer or a hot-list file wrote into the
  stored form: uppercase ``A-Z0-9`` only, at most :data:`MAX_PLATE_LENGTH` characters.
- :func:`is_valid_state` / :func:`normalize_state` check the issuing jurisdiction.
- :class:`OcrEquivalence` maps characters that OCR confuses (``0/O/D/Q`` ...) to one
  representative, so two plates that differ only by such characters share a canonical form,
  and says which substitutions made them equal ("Z≈2").
- :func:`parse_pattern` / :class:`PlatePattern` handle partial plates with ``*`` (any run of
  characters, possibly empty) and ``?`` (exactly one character), including their SQL ``LIKE``
  form.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

MAX_PLATE_LENGTH: Final = 10
"""Longest plate we accept; the NCIC LIC field (license plate number) is 10 characters."""

MIN_EDIT_LENGTH: Final = 4
"""Shortest plate that two readings may differ by an edit in and still count as one plate
(hot-list one-edit matching, multi-frame fusion); below this one edit joins too many
unrelated plates."""

# Separators people and hot-list files put inside plates; they are not part of the plate.
_SEPARATORS: Final = " \t\r\n-."
_DROP_SEPARATORS: Final = str.maketrans("", "", _SEPARATORS)
_PLATE_RE: Final = re.compile(r"[A-Z0-9]+")
_PATTERN_RE: Final = re.compile(r"[A-Z0-9*?]+")
_WILDCARDS: Final = frozenset("*?")

PlateErrorReason = Literal["empty", "too_long", "invalid_characters"]
PatternErrorReason = Literal[
    "empty", "too_long", "invalid_characters", "only_wildcards", "too_few_literals"
]


class InvalidPlate(ValueError):
    """A plate that is empty, too long or has characters outside A-Z 0-9 after normalisation.

    Attributes:
        text: What the caller passed.
        reason: Machine-readable reason: ``empty``, ``too_long`` or ``invalid_characters``.
    """

    def __init__(self, text: str, reason: PlateErrorReason, message: str) -> None:
        super().__init__(message)
        self.text = text
        self.reason: PlateErrorReason = reason


class InvalidPattern(ValueError):
    """A partial-plate pattern that cannot be used.

    Attributes:
        text: What the caller passed.
        reason: ``empty``, ``too_long``, ``invalid_characters``, ``only_wildcards`` or
            ``too_few_literals``.
    """

    def __init__(self, text: str, reason: PatternErrorReason, message: str) -> None:
        super().__init__(message)
        self.text = text
        self.reason: PatternErrorReason = reason


class InvalidState(ValueError):
    """A state/province code that is not one we know."""

    def __init__(self, code: str) -> None:
        super().__init__(f"{code!r} is not a known state, territory or province code")
        self.code = code


def _bad_characters(text: str, allowed: re.Pattern[str]) -> str:
    """The distinct characters of ``text`` that ``allowed`` refuses, in order of appearance."""
    seen: dict[str, None] = {}
    for char in text:
        if not allowed.fullmatch(char):
            seen.setdefault(char, None)
    return "".join(seen)


def normalize_plate(text: str) -> str:
    """Normalise a plate to uppercase ``A-Z0-9`` with separators removed.

    Spaces (and other ASCII whitespace), dashes and dots are dropped: ``"abc-123"`` and
    ``"ABC 123"`` both become ``"ABC123"``.

    Args:
        text: The plate as read or typed.

    Returns:
        The normalised plate.

    Raises:
        InvalidPlate: If nothing is left, more than :data:`MAX_PLATE_LENGTH` characters are
            left, or characters outside ``A-Z0-9`` remain (the message names them).
    """
    plate = text.upper().translate(_DROP_SEPARATORS)
    if _PLATE_RE.fullmatch(plate) is None:
        if not plate:
            raise InvalidPlate(text, "empty", f"plate {text!r} is empty after normalisation")
        bad = _bad_characters(plate, _PLATE_RE)
        raise InvalidPlate(
            text,
            "invalid_characters",
            f"plate {text!r} has characters outside A-Z 0-9: {bad!r}",
        )
    if len(plate) > MAX_PLATE_LENGTH:
        raise InvalidPlate(
            text,
            "too_long",
            f"plate {text!r} has {len(plate)} characters; at most {MAX_PLATE_LENGTH} allowed",
        )
    return plate


# --- states ---------------------------------------------------------------------------------

US_STATES: Final = frozenset(
    [
        "AL",
        "AK",
        "AZ",
        "AR",
        "CA",
        "CO",
        "CT",
        "DE",
        "FL",
        "GA",
        "HI",
        "ID",
        "IL",
        "IN",
        "IA",
        "KS",
        "KY",
        "LA",
        "ME",
        "MD",
        "MA",
        "MI",
        "MN",
        "MS",
        "MO",
        "MT",
        "NE",
        "NV",
        "NH",
        "NJ",
        "NM",
        "NY",
        "NC",
        "ND",
        "OH",
        "OK",
        "OR",
        "PA",
        "RI",
        "SC",
        "SD",
        "TN",
        "TX",
        "UT",
        "VT",
        "VA",
        "WA",
        "WV",
        "WI",
        "WY",
        "DC",
    ]
)
"""The 50 states and the District of Columbia (USPS codes)."""

US_TERRITORIES: Final = frozenset(["AS", "GU", "MP", "PR", "VI"])
"""Inhabited US territories that issue their own plates (USPS codes)."""

FREELY_ASSOCIATED_STATES: Final = frozenset(["FM", "MH", "PW"])
"""Micronesia, Marshall Islands, Palau: USPS codes, and vehicles from them reach US roads."""

CANADIAN_PROVINCES: Final = frozenset(
    ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]
)
"""Canadian provinces and territories (Canada Post codes, also used by NCIC)."""

OTHER_JURISDICTIONS: Final = frozenset({"US"})
"""``US``: plates issued by the US federal government (federal fleet, diplomatic), which
NCIC records under the state code ``US`` rather than a state's code."""

VALID_STATE_CODES: Final = (
    US_STATES | US_TERRITORIES | FREELY_ASSOCIATED_STATES | CANADIAN_PROVINCES | OTHER_JURISDICTIONS
)


def is_valid_state(code: str) -> bool:
    """Whether ``code`` (any case, surrounding spaces ignored) is a known issuing jurisdiction."""
    return code.strip().upper() in VALID_STATE_CODES


def normalize_state(code: str) -> str:
    """Return the uppercase state code.

    Raises:
        InvalidState: If it is not in :data:`VALID_STATE_CODES`.
    """
    state = code.strip().upper()
    if state not in VALID_STATE_CODES:
        raise InvalidState(code)
    return state


# --- OCR equivalence ------------------------------------------------------------------------

DEFAULT_OCR_CLASSES: Final = ("0ODQ", "1ILT", "2Z", "5S", "8B", "6G")
"""Characters plate OCR confuses; the first of each class is its representative."""


@dataclass(frozen=True, slots=True)
class Substitution:
    """One position where the read shows a different but OCR-equivalent character.

    Attributes:
        position: 0-based index in the read.
        read: The character the read has.
        entry: The character the hot-list entry (or search term) has.
    """

    position: int
    read: str
    entry: str

    def __str__(self) -> str:
        return f"{self.read}≈{self.entry}"


class OcrEquivalence:
    """Classes of characters that OCR confuses, with a canonical form for plates.

    Two plates are OCR-equivalent when they have the same length and, at every position,
    characters from the same class. :meth:`canonical` maps each character to its class
    representative (the first character of the class), so equivalent plates have equal
    canonical forms and can share one dictionary key.

    Instances are immutable and cheap to share between threads.
    """

    __slots__ = ("_classes", "_members", "_representative", "_table")

    def __init__(self, classes: Iterable[str] = DEFAULT_OCR_CLASSES) -> None:
        """Build from classes such as ``["0ODQ", "1ILT"]``.

        Raises:
            ValueError: If a class has characters outside ``A-Z0-9``, fewer than two
                characters, or shares a character with another class.
        """
        normalized: list[str] = []
        representative: dict[str, str] = {}
        members: dict[str, str] = {}
        for raw in classes:
            chars = "".join(dict.fromkeys(raw.strip().upper()))
            if _PLATE_RE.fullmatch(chars) is None or len(chars) < 2:
                raise ValueError(f"OCR class {raw!r} needs two or more characters from A-Z 0-9")
            for char in chars:
                if char in representative:
                    raise ValueError(f"character {char!r} is in more than one OCR class")
                representative[char] = chars[0]
                members[char] = chars
            normalized.append(chars)
        self._classes = tuple(normalized)
        self._representative = representative
        self._members = members
        self._table = str.maketrans(
            {char: rep for char, rep in representative.items() if char != rep}
        )

    @classmethod
    def from_spec(cls, spec: str) -> OcrEquivalence:
        """Build from a settings string such as ``"0ODQ,1ILT,2Z"`` (commas or spaces)."""
        return cls(part for part in re.split(r"[,\s]+", spec) if part)

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes, each with its representative first."""
        return self._classes

    def spec(self) -> str:
        """The settings-string form, the inverse of :meth:`from_spec`."""
        return ",".join(self._classes)

    def canonical(self, plate: str) -> str:
        """Map every character of a normalised plate to its class representative."""
        return plate.translate(self._table)

    def representative(self, char: str) -> str:
        """The class representative of one character (the character itself if unclassed)."""
        return self._representative.get(char, char)

    def members(self, char: str) -> str:
        """All characters equivalent to ``char``, representative first (just ``char`` if none)."""
        return self._members.get(char, char)

    def equivalent(self, a: str, b: str) -> bool:
        """Whether two normalised plates are equal or OCR-equivalent."""
        return len(a) == len(b) and self.canonical(a) == self.canonical(b)

    def substitutions(self, read: str, entry: str) -> tuple[Substitution, ...] | None:
        """The OCR substitutions that make ``read`` equal ``entry``.

        Returns:
            An empty tuple if the plates are identical, the substitutions if they are
            OCR-equivalent, and ``None`` if they are not equivalent.
        """
        if len(read) != len(entry):
            return None
        found: list[Substitution] = []
        rep = self._representative
        for position, (r, e) in enumerate(zip(read, entry, strict=True)):
            if r == e:
                continue
            if rep.get(r, r) != rep.get(e, e):
                return None
            found.append(Substitution(position, r, e))
        return tuple(found)

    def explain(self, read: str, entry: str) -> str:
        """Human text such as ``"Z≈2"`` or ``"O≈0, Z≈2"``; empty when identical.

        Raises:
            ValueError: If the plates are not OCR-equivalent.
        """
        subs = self.substitutions(read, entry)
        if subs is None:
            raise ValueError(f"{read!r} and {entry!r} are not OCR-equivalent")
        return ", ".join(str(sub) for sub in subs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, OcrEquivalence) and self._classes == other._classes

    def __hash__(self) -> int:
        return hash(self._classes)

    def __repr__(self) -> str:
        return f"OcrEquivalence({list(self._classes)!r})"


DEFAULT_OCR_EQUIVALENCE: Final = OcrEquivalence()
"""The default classes 0/O/D/Q, 1/I/L/T, 2/Z, 5/S, 8/B, 6/G."""


# --- wildcard patterns ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlatePattern:
    """A validated partial plate: ``A-Z0-9`` literals, ``?`` (one character), ``*`` (any run).

    Build with :func:`parse_pattern`.

    Attributes:
        text: The normalised pattern, e.g. ``"AB?12*"``.
        literal_count: How many literal characters it has.
        min_length: Shortest plate it can match.
        max_length: Longest plate it can match, ``None`` when it has a ``*``.
    """

    text: str
    literal_count: int
    min_length: int
    max_length: int | None
    _regex: re.Pattern[str] = field(repr=False, compare=False)

    @property
    def has_wildcards(self) -> bool:
        """Whether it has any ``*`` or ``?``; a pattern without is a whole plate."""
        return self.literal_count != len(self.text)

    def literal_prefix(self) -> str:
        """The literal characters before the first wildcard."""
        return _literal_run(self.text)

    def literal_suffix(self) -> str:
        """The literal characters after the last wildcard."""
        return _literal_run(self.text[::-1])[::-1]

    def matches(self, plate: str, equivalence: OcrEquivalence | None = None) -> bool:
        """Whether a normalised plate matches.

        Args:
            plate: A normalised plate (see :func:`normalize_plate`).
            equivalence: When given, a literal also matches its OCR-equivalent characters.
        """
        if equivalence is None:
            return self._regex.fullmatch(plate) is not None
        return (
            pattern_regex(self, equivalence, capture=False).fullmatch(equivalence.canonical(plate))
            is not None
        )

    def to_sql_like(self, equivalence: OcrEquivalence | None = None) -> str:
        """The SQL ``LIKE`` pattern (``*`` → ``%``, ``?`` → ``_``).

        Args:
            equivalence: When given, literals are replaced by their class representative, for
                a ``LIKE`` against a column that holds canonical plates (the OCR-equivalent
                search). Without it the pattern is for the plain normalised plate column.

        Normalised patterns hold only ``A-Z0-9*?``, so no ``LIKE`` escaping is needed.
        """
        text = self.text if equivalence is None else equivalence.canonical(self.text)
        return text.replace("*", "%").replace("?", "_")


def _literal_run(text: str) -> str:
    for index, char in enumerate(text):
        if char in _WILDCARDS:
            return text[:index]
    return text


def _regex_for(pieces: Iterable[str]) -> re.Pattern[str]:
    return re.compile("".join(pieces))


@functools.lru_cache(maxsize=4096)
def pattern_regex(
    pattern: PlatePattern, equivalence: OcrEquivalence, *, capture: bool
) -> re.Pattern[str]:
    """A regular expression for ``pattern`` under ``equivalence``.

    Args:
        pattern: The pattern.
        equivalence: OCR classes.
        capture: If true, the regex matches a normalised (not canonical) plate and captures
            each literal as a group, each a class of its equivalent characters, so the caller
            can tell which literals were met by a substitution. If false, it matches the
            canonical form of a plate.
    """
    pieces: list[str] = []
    for char in pattern.text:
        if char == "*":
            pieces.append(".*")
        elif char == "?":
            pieces.append(".")
        elif capture:
            pieces.append(f"([{equivalence.members(char)}])")
        else:
            pieces.append(equivalence.representative(char))
    return _regex_for(pieces)


def is_pattern(text: str) -> bool:
    """Whether ``text`` contains a ``*`` or ``?`` wildcard."""
    return "*" in text or "?" in text


def parse_pattern(text: str, *, min_literals: int = 1) -> PlatePattern:
    """Validate and normalise a partial-plate pattern.

    Separators are dropped and letters uppercased as in :func:`normalize_plate`; consecutive
    ``*`` collapse into one.

    Args:
        text: The pattern, e.g. ``"ab?-12*"``.
        min_literals: The fewest literal characters allowed; 1 refuses only-wildcard
            patterns. Raise it where a broad pattern would sweep up too many plates.

    Raises:
        InvalidPattern: If it is empty, only wildcards, has too few literals, has characters
            other than ``A-Z0-9*?``, or cannot match any plate of at most
            :data:`MAX_PLATE_LENGTH` characters.
    """
    pattern = re.sub(r"\*+", "*", text.upper().translate(_DROP_SEPARATORS))
    if not pattern:
        raise InvalidPattern(text, "empty", f"pattern {text!r} is empty")
    if _PATTERN_RE.fullmatch(pattern) is None:
        bad = _bad_characters(pattern, _PATTERN_RE)
        raise InvalidPattern(
            text,
            "invalid_characters",
            f"pattern {text!r} has characters outside A-Z 0-9 * ?: {bad!r}",
        )
    literal_count = sum(1 for char in pattern if char not in _WILDCARDS)
    if literal_count == 0:
        raise InvalidPattern(text, "only_wildcards", f"pattern {text!r} has only wildcards")
    if literal_count < min_literals:
        raise InvalidPattern(
            text,
            "too_few_literals",
            f"pattern {text!r} has {literal_count} literal characters; "
            f"at least {min_literals} required",
        )
    min_length = len(pattern) - pattern.count("*")
    if min_length > MAX_PLATE_LENGTH:
        raise InvalidPattern(
            text,
            "too_long",
            f"pattern {text!r} needs {min_length} characters; plates have at most "
            f"{MAX_PLATE_LENGTH}",
        )
    max_length = None if "*" in pattern else min_length
    regex = _regex_for(".*" if char == "*" else "." if char == "?" else char for char in pattern)
    return PlatePattern(pattern, literal_count, min_length, max_length, regex)


def pattern_to_sql_like(
    text: str, *, equivalence: OcrEquivalence | None = None, min_literals: int = 1
) -> str:
    """Validate a pattern and return its SQL ``LIKE`` form; see :meth:`PlatePattern.to_sql_like`.

    Raises:
        InvalidPattern: As :func:`parse_pattern`.
    """
    return parse_pattern(text, min_literals=min_literals).to_sql_like(equivalence)
