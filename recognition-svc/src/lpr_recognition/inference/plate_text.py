"""Rules that turn the text lines read on a plate crop into one plate number.

A crop holds more than the plate number: state names, slogans, registration stickers,
dealer frames. The number is the tallest line of plate-like text. The text detector
sometimes splits the number at a gap (a separator, a state emblem); such pieces are
merged into one line before reading, so the characters at the seam are read once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from lpr_recognition.inference.text_detector import TextBox, order_corners
from lpr_recognition.inference.text_recognizer import DecodedText

PLATE_MIN_CHARACTERS = 3
PLATE_MAX_CHARACTERS = 10


@dataclass(frozen=True)
class TextLine:
    """A line of text on a crop: one or more detector boxes merged into one."""

    corners: npt.NDArray[np.float32]
    height: float
    parts: int


def normalize_plate(text: str) -> str:
    """Keep upper-case ASCII letters and digits, as plates are compared."""
    return "".join(c for c in text.upper() if c.isascii() and c.isalnum())


def _vertical_extent(box: TextBox) -> tuple[float, float]:
    ys = box.corners[:, 1]
    return float(ys.min()), float(ys.max())


def _horizontal_extent(box: TextBox) -> tuple[float, float]:
    xs = box.corners[:, 0]
    return float(xs.min()), float(xs.max())


def _same_line(a: TextBox, b: TextBox, max_gap: float) -> bool:
    """Whether two boxes are pieces of one line: same height band, close side by side."""
    a_top, a_bottom = _vertical_extent(a)
    b_top, b_bottom = _vertical_extent(b)
    overlap = min(a_bottom, b_bottom) - max(a_top, b_top)
    if overlap < 0.6 * min(a_bottom - a_top, b_bottom - b_top):
        return False
    if min(a.height, b.height) < 0.6 * max(a.height, b.height):
        return False
    a_left, a_right = _horizontal_extent(a)
    b_left, b_right = _horizontal_extent(b)
    gap = max(a_left, b_left) - min(a_right, b_right)
    return gap <= max_gap * max(a.height, b.height)


def group_lines(boxes: Sequence[TextBox], max_gap: float = 1.0) -> list[TextLine]:
    """Merge boxes that lie side by side on one line into single lines.

    Args:
        boxes: Text detector boxes on one crop.
        max_gap: Largest horizontal gap between pieces, in line heights.
    """
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            if _same_line(boxes[i], boxes[j], max_gap):
                parent[root(j)] = root(i)
    groups: dict[int, list[TextBox]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(root(i), []).append(box)
    lines: list[TextLine] = []
    for members in groups.values():
        if len(members) == 1:
            box = members[0]
            lines.append(TextLine(corners=box.corners, height=box.height, parts=1))
            continue
        points = np.concatenate([m.corners for m in members]).astype(np.float32)
        corners = order_corners(cv2.boxPoints(cv2.minAreaRect(points)).astype(np.float32))
        lines.append(
            TextLine(corners=corners, height=max(m.height for m in members), parts=len(members))
        )
    return lines


def choose_plate_line(lines: Sequence[TextLine], reads: Sequence[DecodedText]) -> int | None:
    """Index of the line that carries the plate number, or None when nothing was read.

    The tallest line whose text looks like a plate number wins; when no line does,
    the line with the most characters.
    """
    plate_like = [
        i
        for i, read in enumerate(reads)
        if PLATE_MIN_CHARACTERS <= len(read.text) <= PLATE_MAX_CHARACTERS
    ]
    if plate_like:
        return max(plate_like, key=lambda i: (lines[i].height, len(reads[i].text)))
    read_any = [i for i, read in enumerate(reads) if read.text]
    if not read_any:
        return None
    return max(read_any, key=lambda i: (len(reads[i].text), reads[i].confidence))


# Brazilian plates: three letters, a digit, a letter (Mercosur) or digit, two digits.
_BRAZIL_LAYOUT = ("L", "L", "L", "D", "LD", "D", "D")


def _allowed(symbol: str, kinds: str) -> bool:
    return bool(symbol) and (
        ("L" in kinds and symbol.isalpha()) or ("D" in kinds and symbol.isdigit())
    )


def constrain_layout(read: DecodedText, layout: Sequence[str]) -> DecodedText:
    """Re-read each character as the likeliest symbol of the kind its position allows.

    Args:
        read: A read with per-character distributions.
        layout: Per position "L" (letter), "D" (digit) or "LD" (either).
    """
    if len(read.text) != len(layout) or read.distributions.shape[0] != len(layout):
        return read
    text: list[str] = []
    probabilities: list[float] = []
    alternatives: list[tuple[str, float]] = []
    for kinds, distribution in zip(layout, read.distributions, strict=True):
        ranked = [
            (read.symbols[j], float(distribution[j]))
            for j in np.argsort(-distribution)
            if _allowed(read.symbols[j], kinds)
        ]
        text.append(ranked[0][0])
        probabilities.append(ranked[0][1])
        alternatives.append(ranked[1] if len(ranked) > 1 else ("", 0.0))
    return replace(
        read,
        text="".join(text),
        probabilities=tuple(probabilities),
        alternatives=tuple(alternatives),
    )


def substitute_characters(read: DecodedText, mapping: Mapping[str, str]) -> DecodedText:
    """Replace characters of a read (and of its runner-ups) that a region never issues."""
    if not any(char in mapping for char in read.text):
        return read
    alternatives = tuple((mapping.get(alt, alt), p) for alt, p in read.alternatives)
    text = "".join(mapping.get(char, char) for char in read.text)
    return replace(read, text=text, alternatives=alternatives)


# California's current series, the most common US layout: digit, three letters, three digits.
_CALIFORNIA_LAYOUT = ("D", "L", "L", "L", "D", "D", "D")


def _california_layout(read: DecodedText) -> DecodedText:
    """Constrain a 7-character read that starts with a digit and ends with digits."""
    text = read.text
    if len(text) == 7 and text[0].isdigit() and text[4:].isdigit():
        return constrain_layout(read, _CALIFORNIA_LAYOUT)
    return read


# Candidate US rules by name. Each was measured on the training validation split
# (recognition-svc/training/measure_rules.py, results in training/MODEL_CARD.md);
# only rules that never turned a correct read wrong are in US_RULES_APPLIED.
US_RULES: dict[str, Callable[[DecodedText], DecodedText]] = {
    "letter_o_as_digit_0": lambda read: substitute_characters(read, {"O": "0"}),
    "letter_q_as_digit_0": lambda read: substitute_characters(read, {"Q": "0"}),
    "letter_i_as_digit_1": lambda read: substitute_characters(read, {"I": "1"}),
    "california_layout": _california_layout,
}
US_RULES_APPLIED: tuple[str, ...] = ("letter_o_as_digit_0",)


def apply_region_rules(
    read: DecodedText, region: str | None, us_rules: Sequence[str] = US_RULES_APPLIED
) -> DecodedText:
    """Apply what a region's plates allow.

    US plates read letter O as digit 0 (most states do not issue O), plus any other
    rule named in ``us_rules``. Brazilian plates of seven characters follow the
    national layout, letters and digits by position.
    """
    region = (region or "").lower()
    if region == "br":
        return constrain_layout(read, _BRAZIL_LAYOUT)
    if region != "us":
        return read
    for name in us_rules:
        read = US_RULES[name](read)
    return read


def candidates(read: DecodedText, limit: int = 5) -> list[tuple[str, float]]:
    """The read itself and variants with one uncertain character swapped for its runner-up.

    Confidences are the mean character probability of each variant, so the read
    comes first and variants follow in the order of how close the runner-up was.
    """
    if not read.text:
        return []
    result = [(read.text, read.confidence)]
    variants: list[tuple[str, float]] = []
    for position, (alternative, probability) in enumerate(read.alternatives):
        if not alternative or probability <= 0:
            continue
        chars = list(read.text)
        chars[position] = alternative
        probs = list(read.probabilities)
        probs[position] = probability
        variants.append(("".join(chars), float(np.mean(probs))))
    seen = {read.text}
    for text, confidence in sorted(variants, key=lambda v: -v[1]):
        if text not in seen:
            seen.add(text)
            result.append((text, confidence))
    return result[:limit]
