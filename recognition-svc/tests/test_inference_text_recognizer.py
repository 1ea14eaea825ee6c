"""PP-OCR text recognizer pre-processing and CTC decoding."""

from typing import Any

import numpy as np

from lpr_recognition.inference.text_recognizer import (
    ctc_decode,
    plate_alphabet,
    recognizer_input,
    rectify_line,
)

DICTIONARY = ["A", "b", "7", "中", "B", "o", "O", "0"]
ALPHABET = plate_alphabet(DICTIONARY)


def _steps(*indices: int, size: int = len(DICTIONARY) + 2, p: float = 0.9) -> np.ndarray[Any, Any]:
    probabilities = np.full((len(indices), size), (1 - p) / (size - 1), dtype=np.float32)
    for step, index in enumerate(indices):
        probabilities[step, index] = p
    return probabilities


def test_alphabet_keeps_plate_characters_upper_cased() -> None:
    assert ALPHABET == {1: "A", 2: "B", 3: "7", 5: "B", 6: "O", 7: "O", 8: "0"}


def test_ctc_collapses_repeats_and_drops_blanks() -> None:
    read = ctc_decode(_steps(1, 1, 0, 1, 3, 0, 3, 3), ALPHABET)
    assert read.text == "AA77"
    assert len(read.probabilities) == 4
    assert 0.8 < read.confidence <= 1.0


def test_upper_and_lower_case_are_one_character() -> None:
    # "b" then "B" on consecutive steps is one B, not two.
    read = ctc_decode(_steps(2, 5, 0, 8), ALPHABET)
    assert read.text == "B0"


def test_non_plate_characters_are_read_as_the_likeliest_plate_character() -> None:
    probabilities = _steps(4)  # a Chinese character wins over everything
    probabilities[0, 3] = 0.05  # "7" is the best plate character
    read = ctc_decode(probabilities, ALPHABET)
    assert read.text == "7"


def test_runner_up_is_a_different_character() -> None:
    probabilities = _steps(8)
    probabilities[0, 6] = 0.06  # "o" lower case
    probabilities[0, 7] = 0.05  # "O": together the runner-up, 0.11
    read = ctc_decode(probabilities, ALPHABET)
    assert read.alternatives[0][0] == "O"
    assert np.isclose(read.alternatives[0][1], 0.11, atol=0.01)


def test_lines_share_one_padded_batch_of_height_48() -> None:
    short = np.full((20, 40, 3), 255, dtype=np.uint8)
    long = np.full((10, 200, 3), 255, dtype=np.uint8)
    batch = recognizer_input([short, long])
    assert batch.shape == (2, 3, 48, 960)
    assert batch[0, 0, 0, 95] == 1.0
    assert batch[0, 0, 0, 97] == 0.0
    assert batch[1, 0, 0, 959] == 1.0


def test_rectify_turns_a_tilted_box_upright() -> None:
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    corners = np.array([[10, 20], [90, 30], [88, 50], [8, 40]], dtype=np.float32)
    line = rectify_line(image, corners)
    assert line.shape[1] > line.shape[0]
    assert 75 <= line.shape[1] <= 82
