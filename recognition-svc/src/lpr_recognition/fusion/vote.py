"""Confidence-weighted voting over the frames of one vehicle, and when two readings are close.

Pure functions, no I/O. A camera sends several frames of one passing vehicle; each frame
is read on its own and may get a character wrong. :func:`fuse` chooses the plate they
agree on:

1. **Length first.** Each frame votes for its text's length with its weight (its mean
   character confidence); the heaviest length wins. Frames of other lengths (a dropped or
   an extra character) take no part in the next step: their positions do not line up.
2. **Then each position.** Among frames of the winning length, each votes for its
   character at the position with that character's confidence; the heaviest wins.

The fused confidence of a character is its winning weight divided by the number of
voters: the mean confidence of that character over the frames, counting a frame that saw
another character as 0. A single frame is fused into itself. Ties are broken by the
strongest single vote and then by the character itself, so the result never depends on
the order in which frames arrive.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from lpr_common.plates import DEFAULT_OCR_EQUIVALENCE, MIN_EDIT_LENGTH, OcrEquivalence


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame's reading of a plate: its text and a confidence for each character."""

    text: str
    confidences: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.confidences) != len(self.text):
            raise ValueError(
                f"{len(self.confidences)} confidences for {len(self.text)} characters of "
                f"{self.text!r}"
            )

    @classmethod
    def of(cls, text: str, confidence: float, character_confidences: Sequence[float] = ()) -> Frame:
        """A frame of a recognized plate.

        Without per-character confidences (edge OCR, or confidences of another text),
        every character gets the plate's overall ``confidence``.
        """
        if len(character_confidences) == len(text):
            return cls(text, tuple(float(c) for c in character_confidences))
        return cls(text, (float(confidence),) * len(text))

    @property
    def weight(self) -> float:
        """The frame's vote for its length: its mean character confidence."""
        return sum(self.confidences) / len(self.confidences) if self.confidences else 0.0


@dataclass(frozen=True, slots=True)
class FusedPlate:
    """The plate the frames agree on."""

    text: str
    confidences: tuple[float, ...]
    voters: int
    """How many frames had the winning length (and so voted on the characters)."""

    @property
    def confidence(self) -> float:
        """Mean of the fused character confidences."""
        return sum(self.confidences) / len(self.confidences) if self.confidences else 0.0


def fuse(frames: Sequence[Frame]) -> FusedPlate:
    """Fuse the frames of one vehicle by confidence-weighted voting (see the module text).

    Raises:
        ValueError: No frame, or only empty ones.
    """
    by_length: dict[int, list[Frame]] = defaultdict(list)
    for frame in frames:
        if frame.text:
            by_length[len(frame.text)].append(frame)
    if not by_length:
        raise ValueError("nothing to fuse: no frame has a text")

    def length_vote(length: int) -> tuple[float, int, float, int]:
        group = by_length[length]
        return (sum(f.weight for f in group), len(group), max(f.weight for f in group), length)

    voters = by_length[max(by_length, key=length_vote)]
    characters: list[str] = []
    confidences: list[float] = []
    for position in range(len(voters[0].text)):
        total: dict[str, float] = defaultdict(float)
        strongest: dict[str, float] = defaultdict(float)
        for frame in voters:
            char, confidence = frame.text[position], frame.confidences[position]
            total[char] += confidence
            strongest[char] = max(strongest[char], confidence)
        best = max(total, key=lambda c: (total[c], strongest[c], c))
        characters.append(best)
        confidences.append(total[best] / len(voters))
    return FusedPlate("".join(characters), tuple(confidences), len(voters))


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of two strings, or ``limit + 1`` as soon as it exceeds ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def distance(
    a: str,
    b: str,
    *,
    max_edits: int,
    equivalence: OcrEquivalence = DEFAULT_OCR_EQUIVALENCE,
) -> int | None:
    """How far apart two readings of a plate are, or ``None`` when too far for one vehicle.

    OCR look-alikes (``0/O``, ``8/B`` ... from :mod:`lpr_common.plates`) cost nothing: two
    OCR-equivalent readings are at distance 0. Beyond that, each inserted, dropped or
    different character is one edit, allowed up to ``max_edits`` for plates of at least
    :data:`MIN_EDIT_LENGTH` characters.
    """
    if equivalence.equivalent(a, b):
        return 0
    if max_edits < 1 or min(len(a), len(b)) < MIN_EDIT_LENGTH:
        return None
    edits = edit_distance(equivalence.canonical(a), equivalence.canonical(b), max_edits)
    return edits if edits <= max_edits else None
