"""Rules that choose and correct the plate number among the lines on a crop."""

import numpy as np

from lpr_recognition.inference.plate_text import (
    TextLine,
    apply_region_rules,
    candidates,
    choose_plate_line,
    group_lines,
    normalize_plate,
)
from lpr_recognition.inference.text_detector import TextBox
from lpr_recognition.inference.text_recognizer import DecodedText, ctc_decode


def _box(x1: float, y1: float, x2: float, y2: float) -> TextBox:
    corners = np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float32)
    return TextBox(corners=corners, score=0.9)


def _read(text: str, p: float = 0.9) -> DecodedText:
    return DecodedText(
        text=text, probabilities=(p,) * len(text), alternatives=(("", 0.0),) * len(text)
    )


def test_normalize_keeps_letters_and_digits() -> None:
    assert normalize_plate("ab 12-3·Ö") == "AB123"


def test_pieces_of_one_line_are_merged_once() -> None:
    left, right = _box(10, 40, 60, 70), _box(70, 41, 130, 71)
    state_name = _box(30, 5, 110, 20)
    lines = group_lines([left, state_name, right])
    assert len(lines) == 2
    merged = max(lines, key=lambda line: line.parts)
    assert merged.parts == 2
    xs = merged.corners[:, 0]
    assert xs.min() <= 11
    assert xs.max() >= 129


def test_distant_boxes_stay_separate() -> None:
    assert len(group_lines([_box(0, 40, 20, 60), _box(100, 40, 120, 60)])) == 2


def test_tallest_plate_like_line_is_the_plate() -> None:
    def line(height: float) -> TextLine:
        return TextLine(corners=np.zeros((4, 2), dtype=np.float32), height=height, parts=1)

    lines = [line(12), line(30), line(40)]
    reads = [_read("CALIFORNIA"), _read("7ABC123"), _read("X")]
    assert choose_plate_line(lines, reads) == 1
    assert choose_plate_line([line(10)], [_read("")]) is None
    assert choose_plate_line(lines[:1] + lines[2:], [_read("AB"), _read("X")]) == 0


def test_us_reads_letter_o_as_zero() -> None:
    assert apply_region_rules(_read("8OK123"), "us").text == "80K123"
    assert apply_region_rules(_read("8OK123"), "eu").text == "8OK123"


def _decoded(*columns: int) -> DecodedText:
    alphabet = {1: "O", 2: "0", 3: "I", 4: "1", 5: "K", 6: "M", 7: "5"}
    probabilities = np.full((len(columns), 8), 0.01, dtype=np.float32)
    for step, column in enumerate(columns):
        probabilities[step, column] = 0.6
    # Each position's look-alike is the runner-up.
    look_alike = {1: 2, 2: 1, 3: 4, 4: 3, 5: 6, 6: 5, 7: 6}
    for step, column in enumerate(columns):
        probabilities[step, look_alike[column]] = 0.3
    return ctc_decode(probabilities, alphabet)


def test_brazil_layout_picks_letters_and_digits_by_position() -> None:
    read = _decoded(2, 5, 6, 1, 7, 3, 2)  # read as "0KMO5I0"
    assert read.text == "0KMO5I0"
    assert apply_region_rules(read, "br").text == "OKM0510"
    short = _decoded(2, 5, 6)
    assert apply_region_rules(short, "br").text == short.text


def test_candidates_put_the_read_first_then_single_swaps() -> None:
    read = DecodedText(
        text="AB1",
        probabilities=(0.9, 0.6, 0.9),
        alternatives=(("4", 0.05), ("8", 0.35), ("", 0.0)),
    )
    ranked = candidates(read)
    assert ranked[0][0] == "AB1"
    assert ranked[1][0] == "A81"
    assert [text for text, _ in ranked] == ["AB1", "A81", "4B1"]
    assert candidates(_read("")) == []
