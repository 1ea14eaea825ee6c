"""Plate rules shared by hot-list matching and search."""

from __future__ import annotations

import pytest

from lpr_common.plates import (
    DEFAULT_OCR_EQUIVALENCE,
    MAX_PLATE_LENGTH,
    InvalidPattern,
    InvalidPlate,
    InvalidState,
    OcrEquivalence,
    is_valid_state,
    normalize_plate,
    normalize_state,
    parse_pattern,
    pattern_to_sql_like,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("abc-123", "ABC123"), (" 7 ABC.123 ", "7ABC123"), ("ab\tc1", "ABC1"), ("Z", "Z")],
)
def test_normalize_plate_drops_separators_and_uppercases(text: str, expected: str) -> None:
    assert normalize_plate(text) == expected


@pytest.mark.parametrize(
    ("text", "reason", "named"),
    [
        ("", "empty", "empty"),
        (" - . ", "empty", "empty"),
        ("AB#12", "invalid_characters", "'#'"),
        ("ÄBC123", "invalid_characters", "'Ä'"),
        ("AB*12", "invalid_characters", "'*'"),
        ("A" * (MAX_PLATE_LENGTH + 1), "too_long", "at most 10"),
    ],
)
def test_normalize_plate_refuses_with_reason(text: str, reason: str, named: str) -> None:
    with pytest.raises(InvalidPlate) as caught:
        normalize_plate(text)
    assert caught.value.reason == reason
    assert named in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_ten_character_plate_is_accepted() -> None:
    assert normalize_plate("AB12345678") == "AB12345678"


@pytest.mark.parametrize("code", ["CA", "ny", " dc ", "PR", "GU", "ON", "QC", "YT", "US"])
def test_known_state_codes(code: str) -> None:
    assert is_valid_state(code)
    assert normalize_state(code) == code.strip().upper()


@pytest.mark.parametrize("code", ["", "XX", "C", "CAL", "ZZ", "GV"])
def test_unknown_state_codes(code: str) -> None:
    assert not is_valid_state(code)
    with pytest.raises(InvalidState):
        normalize_state(code)


def test_default_classes_make_confused_plates_share_a_canonical_form() -> None:
    eq = DEFAULT_OCR_EQUIVALENCE
    assert eq.canonical("OD0Q") == eq.canonical("0000")
    assert eq.canonical("ABC1Z3") == eq.canonical("ABC123")
    assert eq.canonical("S8G") == eq.canonical("5B6")
    assert eq.canonical("ITL1") == eq.canonical("1111")
    assert eq.canonical("ABC123") != eq.canonical("ABC124")
    assert eq.equivalent("ABC1Z3", "A8C123")
    assert not eq.equivalent("ABC12", "ABC123")


def test_substitutions_explain_what_made_plates_equal() -> None:
    eq = DEFAULT_OCR_EQUIVALENCE
    subs = eq.substitutions("ABC1Z3", "ABC123")
    assert subs is not None
    assert [(s.position, s.read, s.entry) for s in subs] == [(4, "Z", "2")]
    assert eq.explain("ABC1Z3", "ABC123") == "Z≈2"
    assert eq.explain("A8C1Z3", "ABC123") == "8≈B, Z≈2"
    assert eq.substitutions("ABC123", "ABC123") == ()
    assert eq.substitutions("ABC124", "ABC123") is None
    with pytest.raises(ValueError, match="not OCR-equivalent"):
        eq.explain("XYZ", "ABC")


def test_equivalence_is_configurable() -> None:
    eq = OcrEquivalence.from_spec("0o, 8B")
    assert eq.classes == ("0O", "8B")
    assert eq.canonical("O8") == "08"
    # 2/Z is a default class but not in this configuration.
    assert eq.canonical("Z") == "Z"
    assert OcrEquivalence.from_spec(eq.spec()) == eq


@pytest.mark.parametrize("classes", [["0O", "O1"], ["0"], ["0#"]])
def test_bad_equivalence_classes_are_refused(classes: list[str]) -> None:
    with pytest.raises(ValueError, match=r"OCR class|more than one"):
        OcrEquivalence(classes)


def test_pattern_is_normalised_and_measured() -> None:
    pattern = parse_pattern("ab-?12**")
    assert pattern.text == "AB?12*"
    assert pattern.literal_count == 4
    assert (pattern.min_length, pattern.max_length) == (5, None)
    assert parse_pattern("A?C").max_length == 3
    assert pattern.literal_prefix() == "AB"
    assert parse_pattern("*12").literal_suffix() == "12"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("*", "only_wildcards"),
        ("??*?", "only_wildcards"),
        ("", "empty"),
        ("AB%1", "invalid_characters"),
        ("A?????????X", "too_long"),
    ],
)
def test_bad_patterns_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidPattern) as caught:
        parse_pattern(text)
    assert caught.value.reason == reason


def test_min_literals_can_be_raised() -> None:
    with pytest.raises(InvalidPattern) as caught:
        parse_pattern("A*", min_literals=3)
    assert caught.value.reason == "too_few_literals"
    assert parse_pattern("ABC*", min_literals=3).text == "ABC*"


@pytest.mark.parametrize(
    ("pattern", "plate", "expected"),
    [
        ("AB?12*", "ABC123", True),
        ("AB?12*", "ABX12", True),
        ("AB?12*", "AB12", False),
        ("*123", "7ABC123", True),
        ("*123", "7ABC124", False),
        ("A?C", "ABBC", False),
    ],
)
def test_pattern_matching(pattern: str, plate: str, expected: bool) -> None:
    assert parse_pattern(pattern).matches(plate) is expected


def test_pattern_matching_with_ocr_equivalence() -> None:
    pattern = parse_pattern("AB?12*")
    assert not pattern.matches("A8C1Z3")
    assert pattern.matches("A8C1Z3", DEFAULT_OCR_EQUIVALENCE)


def test_sql_like_forms() -> None:
    assert pattern_to_sql_like("ab?12*") == "AB_12%"
    # Against a column of canonical plates: literals become their class representative.
    assert pattern_to_sql_like("OZ*", equivalence=DEFAULT_OCR_EQUIVALENCE) == "02%"
    with pytest.raises(InvalidPattern):
        pattern_to_sql_like("*?")
