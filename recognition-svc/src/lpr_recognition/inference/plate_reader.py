"""Reading a whole plate crop with the fine-tuned plate recognizer (``plate_rec``).

The recognizer was trained (recognition-svc/training/) on plate crops stretched to
48 x 160 with a margin of -3% to 27% of the box on each side, so it needs no text
detector: the detector's box is cut out at a few paddings and the views vote. Two views
are read first; when they disagree, the other paddings are read as well and all vote.
Voting fixes reads where one view clips a character or takes in a frame's text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from lpr_recognition.inference.plate_detector import Detection
from lpr_recognition.inference.text_recognizer import DecodedText, ctc_decode

PLATE_READER_HEIGHT = 48
PLATE_READER_WIDTH = 160
# Paddings of the detector's box (fraction of its size per side) read and voted. The
# first is the single view's padding; chosen on the training validation split.
VOTE_PADDINGS = (0.15, 0.1, 0.05, 0.2, 0.0)
# Views read first; the other paddings are read only when these disagree. Measured
# end to end on all dev images (bench/recognition.py): the same plates as reading all
# five every time, with about 2.1 views read per plate instead of 5.
FIRST_VIEWS = 2


def plate_views(
    image_bgr: npt.NDArray[np.uint8], detection: Detection, paddings: Sequence[float]
) -> list[npt.NDArray[np.uint8]]:
    """Cut the detector's box out at each padding; beyond the image, edges repeat.

    Args:
        image_bgr: The whole image.
        detection: The plate's box.
        paddings: Margin per side, as a fraction of the box's width (left, right) or
            height (top, bottom); negative values trim into the box.
    """
    height, width = image_bgr.shape[:2]
    views: list[npt.NDArray[np.uint8]] = []
    for padding in paddings:
        left = round(detection.x1 - padding * detection.width)
        top = round(detection.y1 - padding * detection.height)
        right = max(round(detection.x2 + padding * detection.width), left + 2)
        bottom = max(round(detection.y2 + padding * detection.height), top + 2)
        border = max(0, -left, -top, right - width, bottom - height)
        source = image_bgr
        if border:
            source = np.asarray(
                cv2.copyMakeBorder(image_bgr, border, border, border, border, cv2.BORDER_REPLICATE),
                dtype=np.uint8,
            )
        views.append(
            np.ascontiguousarray(
                source[top + border : bottom + border, left + border : right + border]
            )
        )
    return views


def plate_reader_input(crops: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
    """Batch crops for the recognizer: stretched to 48 x 160, BGR scaled to [-1, 1]."""
    batch = np.empty((len(crops), 3, PLATE_READER_HEIGHT, PLATE_READER_WIDTH), dtype=np.float32)
    for i, crop in enumerate(crops):
        resized = cv2.resize(
            crop, (PLATE_READER_WIDTH, PLATE_READER_HEIGHT), interpolation=cv2.INTER_AREA
        )
        batch[i] = (resized.astype(np.float32).transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return batch


def softmax(logits: npt.NDArray[np.floating[Any]]) -> npt.NDArray[np.float32]:
    """Softmax over the last axis."""
    values = np.asarray(logits, dtype=np.float32)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=-1, keepdims=True), dtype=np.float32)


def decode_views(
    logits: npt.NDArray[np.floating[Any]], alphabet: Mapping[int, str]
) -> list[DecodedText]:
    """Greedy CTC reads of a [views, time, classes] batch of recognizer logits."""
    probabilities = softmax(logits)
    return [ctc_decode(probabilities[i], alphabet) for i in range(probabilities.shape[0])]


@dataclass(frozen=True)
class VotedRead:
    """The reading the views agree on.

    Attributes:
        read: The winning text. Each character's probability is averaged over all
            views: a view of the same length that read the same character there adds
            its probability, any other view adds 0. Characters the views dispute, and
            reads few views share, score low.
        agreement: Fraction of views that read exactly this text.
        candidates: Distinct texts the views read, with their share of the vote
            (summed view confidence over the number of views), best first.
    """

    read: DecodedText
    agreement: float
    candidates: tuple[tuple[str, float], ...]


def vote_reads(reads: Sequence[DecodedText]) -> VotedRead:
    """Combine the reads of several views of one plate by confidence-weighted voting."""
    empty = DecodedText(text="", probabilities=(), alternatives=())
    if not reads:
        return VotedRead(read=empty, agreement=0.0, candidates=())
    scores: dict[str, float] = defaultdict(float)
    for read in reads:
        if read.text:
            scores[read.text] += read.confidence
    if not scores:
        return VotedRead(read=empty, agreement=0.0, candidates=())
    ranked = sorted(scores.items(), key=lambda item: -item[1])
    winner = ranked[0][0]
    agreeing = [read for read in reads if read.text == winner]
    # The most confident agreeing view supplies the runner-up characters.
    best_view = max(agreeing, key=lambda read: read.confidence)
    summed = np.zeros(len(winner), dtype=np.float64)
    for read in reads:
        if len(read.text) == len(winner) and len(read.probabilities) == len(winner):
            same = np.array([a == b for a, b in zip(read.text, winner, strict=True)])
            summed += np.where(same, np.asarray(read.probabilities, dtype=np.float64), 0.0)
    probabilities = tuple(float(p) / len(reads) for p in summed)
    voted = replace(best_view, probabilities=probabilities)
    return VotedRead(
        read=voted,
        agreement=len(agreeing) / len(reads),
        candidates=tuple((text, score / len(reads)) for text, score in ranked),
    )


def merge_candidates(
    voted: VotedRead, variants: Sequence[tuple[str, float]], limit: int
) -> list[tuple[str, float]]:
    """Top-N plate candidates for hot-list matching: the vote's texts, then variants.

    Args:
        voted: The vote over the views.
        variants: Further (text, confidence) guesses, such as one-character swaps.
        limit: Most candidates to return.
    """
    result: list[tuple[str, float]] = []
    seen: set[str] = set()
    if voted.read.text:
        result.append((voted.read.text, voted.read.confidence))
        seen.add(voted.read.text)
    for text, score in sorted([*voted.candidates, *variants], key=lambda item: -item[1]):
        if text and text not in seen:
            seen.add(text)
            result.append((text, score))
    return result[:limit]
