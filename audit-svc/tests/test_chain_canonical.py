"""Canonical JSON: the bytes every audit hash and checkpoint signature covers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum, StrEnum
from typing import Any
from uuid import UUID

import pytest

from lpr_audit.chain.canonical import (
    CanonicalEncodingError,
    canonical_json,
    format_timestamp,
    parse_timestamp,
    to_json_value,
)


def test_rfc8785_example_encodes_byte_for_byte() -> None:
    # RFC 8785 section 3.2.2: numbers, escapes and literals.
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": '\u20ac$\u000f\nA\'B"\\\\"/',
        "literals": [None, True, False],
    }
    expected = (
        '{"literals":[null,true,false],'
        '"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonical_json(value) == expected.encode("utf-8")


def test_keys_sort_by_utf16_code_units() -> None:
    # RFC 8785 section 3.2.3: the emoji (surrogates D83D DE00) sorts before U+FB33.
    keys = ["\u20ac", "\r", "\ufb33", "1", "\U0001f600", "\u0080", "\u00f6"]
    encoded = canonical_json(dict.fromkeys(keys, 0)).decode("utf-8")
    assert list(json.loads(encoded)) == [
        "\r",
        "1",
        "\u0080",
        "\u00f6",
        "\u20ac",
        "\U0001f600",
        "\ufb33",
    ]


@pytest.mark.parametrize(
    ("number", "text"),
    [
        # Expected spellings are ECMAScript's Number.prototype.toString.
        (1.0, "1"),
        (-0.0, "0"),
        (0.1, "0.1"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "1e-7"),
        (0.000001, "0.000001"),
        (1.5e-7, "1.5e-7"),
        (-1.2345e-5, "-0.000012345"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (123456789012345680000.0, "123456789012345680000"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (-42.5e10, "-425000000000"),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
        (10**20, "100000000000000000000"),
        (10**30, "1e+30"),
    ],
)
def test_numbers_are_written_as_ecmascript_writes_the_double(number: float, text: str) -> None:
    assert canonical_json(number) == text.encode()


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_are_refused(number: float) -> None:
    with pytest.raises(CanonicalEncodingError, match="finite"):
        canonical_json({"x": number})


@pytest.mark.parametrize("number", [2**53 + 1, 2**60, -(2**63), 10**400])
def test_integers_a_double_cannot_hold_exactly_are_refused(number: int) -> None:
    with pytest.raises(CanonicalEncodingError, match="as a string"):
        canonical_json({"id": number})


def test_datetimes_become_utc_with_microseconds_and_z() -> None:
    pacific = timezone(timedelta(hours=-8))
    moment = datetime(2025, 3, 4, 5, 6, 7, tzinfo=pacific)
    assert canonical_json(moment) == b'"2025-03-04T13:06:07.000000Z"'
    assert format_timestamp(datetime(5, 1, 2, 3, 4, 5, 60, tzinfo=UTC)) == (
        "0005-01-02T03:04:05.000060Z"
    )
    assert parse_timestamp("2025-03-04T13:06:07.000000Z") == moment


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(CanonicalEncodingError, match="occurred_at: naive"):
        canonical_json({"occurred_at": datetime(2025, 1, 1)})


def test_uuids_dates_enums_and_none() -> None:
    class Outcome(StrEnum):
        ALLOWED = "allowed"

    class Level(IntEnum):
        HIGH = 3

    class Colour(Enum):
        RED = "red"

    value = {
        "request_id": UUID("12345678-1234-5678-1234-56781234ABCD"),
        "day": date(2025, 1, 2),
        "outcome": Outcome.ALLOWED,
        "level": Level.HIGH,
        "colour": Colour.RED,
        "case_number": None,
        "tags": ("a", "b"),
    }
    assert canonical_json(value) == (
        b'{"case_number":null,"colour":"red","day":"2025-01-02","level":3,"outcome":"allowed",'
        b'"request_id":"12345678-1234-5678-1234-56781234abcd","tags":["a","b"]}'
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "x"}, "key 1 is not a string"),
        ({"s": {1, 2}}, "s: set has no canonical"),
        ({"b": b"raw"}, "b: bytes has no canonical"),
        ({"list": [1, Decimal("1.5")]}, r"list: \[1\]: Decimal"),
        ({"plate": "AB\ud800C"}, "lone surrogate"),
    ],
)
def test_values_without_an_encoding_are_refused_with_their_path(
    value: dict[Any, Any], message: str
) -> None:
    with pytest.raises(CanonicalEncodingError, match=message):
        canonical_json(value)


def _as_jsonb_returns_it(text: bytes) -> Any:
    """Parse like PostgreSQL jsonb then asyncpg: exact decimals, printed without exponents."""

    def plain(value: Any) -> Any:
        if isinstance(value, Decimal):
            return json.loads(format(value, "f"))
        if isinstance(value, dict):
            return {key: plain(item) for key, item in value.items()}
        if isinstance(value, list):
            return [plain(item) for item in value]
        return value

    return plain(json.loads(text, parse_float=Decimal, parse_int=Decimal))


def test_stored_json_re_encodes_to_the_same_bytes_even_through_jsonb() -> None:
    value = {
        "when": datetime(2025, 1, 1, tzinfo=UTC),
        "numbers": [1.0, 0.1, 1e-7, 1e21, 1e30, 123456789012345680000.0, 10**20, -5],
        "text": 'line\nbreak \u2028 "quoted" \u00e9\u20ac\U0001f600 \x00',
        "nested": {"z": [], "a": {}, "m": [None, True, False]},
    }
    encoded = canonical_json(value)
    assert canonical_json(to_json_value(value)) == encoded
    assert canonical_json(json.loads(encoded)) == encoded
    assert canonical_json(_as_jsonb_returns_it(encoded)) == encoded
