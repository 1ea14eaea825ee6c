"""Canonical JSON: the exact bytes that audit record hashes and checkpoint signatures cover.

The encoding is the JSON Canonicalization Scheme (RFC 8785, "JCS") applied to the JSON value
that a Python value maps to. An auditor can re-implement verification with any JCS library,
provided the stored values are already JSON (they are, in every export bundle).

Mapping of Python values to JSON values (anything else is refused with
:class:`CanonicalEncodingError`, never silently converted):

- ``None`` -> ``null``; ``True``/``False`` -> ``true``/``false``.
- ``str`` (and ``str`` enums) -> a string. Strings must be valid Unicode: a lone surrogate is
  refused because it has no UTF-8 encoding.
- ``int`` (and ``int`` enums) -> a number. JCS treats every number as an IEEE 754 double, so an
  integer is accepted only if the number written for it (below) has exactly its value; every
  integer with ``|n| <= 2**53`` qualifies. Larger ones (say a 64-bit id) must be passed as strings.
- ``float`` -> a number. NaN and the infinities are refused (JSON has no spelling for them).
- ``datetime`` -> a string ``YYYY-MM-DDTHH:MM:SS.ffffffZ``: converted to UTC, always six
  fractional digits, always ``Z``. Naive datetimes are refused (their instant is unknown).
- ``date`` -> a string ``YYYY-MM-DD``.
- ``UUID`` -> its lowercase hyphenated string (``8-4-4-4-12``).
- other ``Enum`` members -> their ``value``, encoded by these rules.
- ``Mapping`` with ``str`` keys -> an object; ``list``/``tuple`` -> an array.

Byte-level rules (RFC 8785 section 3.2):

- No whitespace anywhere outside strings.
- Object members are sorted by key, comparing the keys as sequences of UTF-16 code units (for keys
  without characters above U+FFFF this equals code point order).
- Strings: the characters ``"`` and ``\\`` are escaped as ``\\"`` and ``\\\\``; U+0008, U+0009,
  U+000A, U+000C, U+000D as ``\\b \\t \\n \\f \\r``; other characters below U+0020 as ``\\u00XX``
  with lowercase hex. Every other character is written as itself (no ``\\uXXXX`` for non-ASCII,
  no escaping of ``/``).
- Numbers are written as ECMAScript's ``Number.prototype.toString`` writes the double: the
  shortest digit string that reads back as the same double; ``-0`` as ``0``; plain digits for
  magnitudes in ``[1e-6, 1e21)`` (``4.5``, ``0.002``, ``100``), otherwise exponent form with
  an explicit sign (``1e+21``, ``1.5e-7``). So ``1.0`` is written ``1``.
- The result is encoded as UTF-8.

Because every number is written as the double it denotes, a value survives a round trip
through PostgreSQL ``jsonb`` (which keeps exact decimals) and ``json.loads`` with the same bytes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeAlias
from uuid import UUID

# Every integer up to this magnitude is exactly a double (a JCS number), and is written as is.
from lpr_common.values import EXACT_INTEGER_LIMIT as EXACT_INTEGER_LIMIT

JsonValue: TypeAlias = bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"] | None
"""A value as ``json.loads`` returns it."""

# The stdlib C escaper implements exactly the RFC 8785 string rules (short escapes for
# \b \t \n \f \r, lowercase \u00XX for other controls, everything else literal).
_encode_string = json.encoder.encode_basestring


class CanonicalEncodingError(ValueError):
    """A value has no canonical JSON encoding."""


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON (RFC 8785) in UTF-8.

    Raises:
        CanonicalEncodingError: the value (or something inside it) cannot be encoded.
    """
    try:
        return _encode(value).encode("utf-8")
    except UnicodeEncodeError as error:
        raise CanonicalEncodingError(
            f"a string contains a lone surrogate at position {error.start}"
        ) from error


def to_json_value(value: Any) -> JsonValue:
    """Return the plain JSON value (dicts, lists, str, numbers) with the same canonical encoding.

    Store this form: ``canonical_json(to_json_value(v)) == canonical_json(v)`` always holds.
    """
    decoded: JsonValue = json.loads(canonical_json(value))
    return decoded


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as canonical RFC 3339 UTC: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CanonicalEncodingError(f"naive datetime {moment.isoformat()} has no time zone")
    u = moment.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def parse_timestamp(text: str) -> datetime:
    """Parse a timestamp written by :func:`format_timestamp` (or any RFC 3339 form) to UTC."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


def _utf16_order(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _encode(value: Any) -> str:
    # Exact-type checks first: audit fields are overwhelmingly plain str, int, dict and None.
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is dict:
        return _encode_object(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _encode_string(value)
    if isinstance(value, int):
        return _format_integer(value)
    if isinstance(value, Mapping):
        return _encode_object(value)
    if isinstance(value, datetime):
        return _encode_string(format_timestamp(value))
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, (list, tuple)):
        return _encode_array(value)
    if isinstance(value, UUID):
        return _encode_string(str(value))
    if isinstance(value, date):
        return _encode_string(value.isoformat())
    if isinstance(value, Enum):
        return _encode(value.value)
    raise CanonicalEncodingError(f"{kind.__name__} has no canonical JSON encoding")


def _encode_array(value: list[Any] | tuple[Any, ...]) -> str:
    items: list[str] = []
    for index, item in enumerate(value):
        try:
            items.append(_encode(item))
        except CanonicalEncodingError as error:
            raise CanonicalEncodingError(f"[{index}]: {error}") from None
    return "[" + ",".join(items) + "]"


def _encode_object(value: Mapping[Any, Any]) -> str:
    keys = list(value)
    for key in keys:
        if not isinstance(key, str):
            raise CanonicalEncodingError(f"object key {key!r} is not a string")
    # Code point order equals UTF-16 order unless a key has characters above U+D7FF.
    if "".join(keys).isascii():
        keys.sort()
    else:
        keys.sort(key=_utf16_order)
    members: list[str] = []
    for key in keys:
        item = value[key]
        try:
            encoded = _encode_string(item) if type(item) is str else _encode(item)
        except CanonicalEncodingError as error:
            raise CanonicalEncodingError(f"{key}: {error}") from None
        members.append(_encode_string(key) + ":" + encoded)
    return "{" + ",".join(members) + "}"


def _format_integer(number: int) -> str:
    if -EXACT_INTEGER_LIMIT <= number <= EXACT_INTEGER_LIMIT:
        return int.__repr__(number)
    try:
        text = _format_double(float(number))
    except OverflowError:
        text = ""
    if not text or Decimal(text) != number:
        raise CanonicalEncodingError(
            f"integer {number} is not exactly representable as a double; pass it as a string"
        )
    return text


def _format_float(number: float) -> str:
    if not math.isfinite(number):
        raise CanonicalEncodingError(f"{number!r} is not a finite number")
    return _format_double(number)


def _format_double(number: float) -> str:
    """Write a finite double as ECMAScript ``Number.prototype.toString`` does."""
    if number == 0.0:
        return "0"
    if number.is_integer() and abs(number) < EXACT_INTEGER_LIMIT:
        return int.__repr__(int(number))
    # repr() gives the shortest round-tripping digits, as ECMAScript requires; only the
    # placement of the decimal point and the exponent spelling differ.
    mantissa, _, exponent_text = repr(abs(number)).partition("e")
    integer_part, _, fraction_part = mantissa.partition(".")
    digits = integer_part + fraction_part
    point = len(integer_part) + (int(exponent_text) if exponent_text else 0)
    significant = digits.lstrip("0")
    point -= len(digits) - len(significant)
    digits = significant.rstrip("0")
    count = len(digits)
    if count <= point <= 21:
        body = digits + "0" * (point - count)
    elif 0 < point <= 21:
        body = f"{digits[:point]}.{digits[point:]}"
    elif -6 < point <= 0:
        body = "0." + "0" * -point + digits
    else:
        exponent = point - 1
        sign = "+" if exponent >= 0 else "-"
        head = digits if count == 1 else f"{digits[0]}.{digits[1:]}"
        body = f"{head}e{sign}{abs(exponent)}"
    return "-" + body if number < 0 else body
