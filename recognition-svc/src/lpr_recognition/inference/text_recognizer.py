"""Pre- and post-processing for the PP-OCR CTC text recognizer.

The recognizer reads one text line scaled to 48 pixels high and returns, per time
step, a probability for each character of its dictionary, index 0 being the CTC blank.
Only the characters that appear on plates (digits and Latin letters) are kept; the
dictionary indices of those characters come from the model repository, so a model
with another dictionary needs no code change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

RECOGNIZER_HEIGHT = 48
RECOGNIZER_MIN_WIDTH = 320
BLANK_INDEX = 0


@dataclass(frozen=True, eq=False)
class DecodedText:
    """A recognized line: upper-case plate characters with per-character probabilities.

    Attributes:
        text: The characters read.
        probabilities: Probability of each character.
        alternatives: Per character, the most likely other character and its probability.
        symbols: Column labels of ``distributions`` ("" is the blank).
        distributions: Per character, the probability of every symbol at that step,
            for rules that restrict a position to letters or digits.
    """

    text: str
    probabilities: tuple[float, ...]
    alternatives: tuple[tuple[str, float], ...]
    symbols: tuple[str, ...] = ()
    distributions: npt.NDArray[np.float32] = field(
        default_factory=lambda: np.zeros((0, 0), dtype=np.float32)
    )

    @property
    def confidence(self) -> float:
        """Mean character probability, 0 for an empty read."""
        return float(np.mean(self.probabilities)) if self.probabilities else 0.0


def rectify_line(
    image_bgr: npt.NDArray[np.uint8], corners: npt.NDArray[np.float32]
) -> npt.NDArray[np.uint8]:
    """Warp a rotated text line (corners clockwise from top-left) to an upright image."""
    width = int(
        max(np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[2] - corners[3]))
    )
    height = int(
        max(np.linalg.norm(corners[0] - corners[3]), np.linalg.norm(corners[1] - corners[2]))
    )
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), target)
    line = cv2.warpPerspective(
        image_bgr, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC
    )
    if height / width >= 1.5:
        line = np.rot90(line)
    return np.ascontiguousarray(line)


def recognizer_input(lines: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
    """Batch text lines: height 48, widths by aspect ratio, right-padded with zeros.

    All lines share the width of the widest one (at least 320 pixels), which is how the
    recognizer was trained to see padding.
    """
    ratios = [line.shape[1] / max(line.shape[0], 1) for line in lines]
    batch_width = max(RECOGNIZER_MIN_WIDTH, math.ceil(RECOGNIZER_HEIGHT * max(ratios)))
    batch = np.zeros((len(lines), 3, RECOGNIZER_HEIGHT, batch_width), dtype=np.float32)
    for i, (line, ratio) in enumerate(zip(lines, ratios, strict=True)):
        width = min(batch_width, max(1, math.ceil(RECOGNIZER_HEIGHT * ratio)))
        resized = cv2.resize(line, (width, RECOGNIZER_HEIGHT), interpolation=cv2.INTER_LINEAR)
        batch[i, :, :, :width] = (resized.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return batch


def plate_alphabet(dictionary: Sequence[str]) -> dict[int, str]:
    """Map output indices to plate characters for a recognizer's dictionary.

    Args:
        dictionary: The model's characters in output order, without the blank
            (output index ``i + 1`` is ``dictionary[i]``).
    """
    alphabet: dict[int, str] = {}
    for i, char in enumerate(dictionary):
        if char.isascii() and char.isalnum():
            alphabet[i + 1] = char.upper()
    return alphabet


def ctc_decode(
    probabilities: npt.NDArray[np.floating[Any]], alphabet: Mapping[int, str]
) -> DecodedText:
    """Greedy CTC decoding of one line, restricted to plate characters and the blank.

    Restricting the choice at each step to the blank and plate characters reads a
    symbol that the full dictionary would call, say, a Chinese look-alike as the
    nearest plate character instead of dropping it.

    Args:
        probabilities: [time, classes] softmax output.
        alphabet: Output index -> plate character.
    """
    symbols = ["", *sorted(set(alphabet.values()))]
    position = {symbol: i for i, symbol in enumerate(symbols)}
    full = np.asarray(probabilities, dtype=np.float32)
    restricted = np.zeros((full.shape[0], len(symbols)), dtype=np.float32)
    restricted[:, BLANK_INDEX] = full[:, BLANK_INDEX]
    # Upper- and lower-case forms of a letter are one plate character.
    for index, char in alphabet.items():
        restricted[:, position[char]] += full[:, index]
    order = np.argsort(-restricted, axis=1)
    best = order[:, 0]
    text: list[str] = []
    char_probabilities: list[float] = []
    alternatives: list[tuple[str, float]] = []
    steps: list[int] = []
    previous = -1
    for step, index in enumerate(best):
        index = int(index)
        if index != previous and index != BLANK_INDEX:
            char = symbols[index]
            step_probs = restricted[step]
            # The runner-up that is itself a different character, for candidate plates.
            runner_up = next(
                (
                    int(j)
                    for j in order[step, 1:]
                    if int(j) != BLANK_INDEX and symbols[int(j)] != char
                ),
                None,
            )
            text.append(char)
            steps.append(step)
            char_probabilities.append(float(step_probs[index]))
            alternatives.append(
                (symbols[runner_up], float(step_probs[runner_up]))
                if runner_up is not None
                else ("", 0.0)
            )
        previous = index
    return DecodedText(
        text="".join(text),
        probabilities=tuple(char_probabilities),
        alternatives=tuple(alternatives),
        symbols=tuple(symbols),
        distributions=restricted[steps],
    )
