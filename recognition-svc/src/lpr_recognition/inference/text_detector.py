"""Pre- and post-processing for the PP-OCR DB text detector, run on a plate crop.

The DB model returns, per pixel, the probability that it lies inside a text line. Lines
are the connected regions above a threshold, each grown back by the margin the model
was trained to shrink them by.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

# ImageNet statistics, applied to the BGR channels in order, as the model was trained.
_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


@dataclass(frozen=True)
class TextBox:
    """A text line as a rotated rectangle in crop pixels (4 corners, clockwise from top-left)."""

    corners: npt.NDArray[np.float32]
    score: float

    @property
    def height(self) -> float:
        """Mean length of the two short sides: the text's height for a horizontal line."""
        c = self.corners
        return float((np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2)

    @property
    def width(self) -> float:
        """Mean length of the two long sides."""
        c = self.corners
        return float((np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])) / 2)


def text_detector_input(
    crop_bgr: npt.NDArray[np.uint8], min_side: int = 256, max_side: int = 1024
) -> npt.NDArray[np.float32]:
    """Scale a crop so its short side is ``min_side`` (sides multiples of 32) and normalize.

    Small plates are enlarged so characters span enough pixels for the model; large
    crops are reduced to the same scale, which costs nothing in accuracy on plates and
    bounds the time per crop.
    """
    height, width = crop_bgr.shape[:2]
    ratio = min(min_side / min(height, width), max_side / max(height, width))
    new_h = max(32, round(height * ratio / 32) * 32)
    new_w = max(32, round(width * ratio / 32) * 32)
    resized = cv2.resize(crop_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    normalized = (resized.astype(np.float32) / 255.0 - _MEAN) / _STD
    return np.ascontiguousarray(normalized.transpose(2, 0, 1)[np.newaxis])


def order_corners(points: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Order 4 points clockwise starting at the top-left."""
    by_x = points[np.argsort(points[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1], kind="stable")]
    top_right, bottom_right = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([top_left, top_right, bottom_right, bottom_left], dtype=np.float32)


def _mean_inside(probability: npt.NDArray[np.float32], corners: npt.NDArray[np.float32]) -> float:
    """Mean probability inside a polygon."""
    h, w = probability.shape
    x0 = int(np.clip(np.floor(corners[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    shifted = (corners - np.array([x0, y0], dtype=np.float32)).round().astype(np.int32)
    cv2.fillPoly(mask, [shifted], (1,))
    if not mask.any():
        return 0.0
    return float(cv2.mean(probability[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def decode_text_boxes(
    probability_map: npt.NDArray[np.floating[Any]],
    crop_size: tuple[int, int],
    *,
    threshold: float = 0.3,
    box_threshold: float = 0.5,
    unclip_ratio: float = 1.6,
    min_size: float = 3.0,
    max_candidates: int = 100,
) -> list[TextBox]:
    """Find text lines in the DB probability map, in crop pixels.

    Args:
        probability_map: Model output, any shape ending in (H, W).
        crop_size: The crop's (width, height) that the map covers.
        threshold: Pixel probability that counts as text.
        box_threshold: Minimum mean probability inside a line.
        unclip_ratio: How far to grow each region, relative to its area over perimeter.
        min_size: Regions with a shorter side (in map pixels) are dropped.
        max_candidates: Upper bound on regions examined.
    """
    probability = np.asarray(probability_map, dtype=np.float32)
    probability = probability.reshape(probability.shape[-2], probability.shape[-1])
    map_h, map_w = probability.shape
    bitmap = (probability > threshold).astype(np.uint8) * 255
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    crop_w, crop_h = crop_size
    scale = np.array([crop_w / map_w, crop_h / map_h], dtype=np.float32)
    boxes: list[TextBox] = []
    for contour in contours[:max_candidates]:
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < min_size:
            continue
        corners = order_corners(cv2.boxPoints(((cx, cy), (w, h), angle)).astype(np.float32))
        score = _mean_inside(probability, corners)
        if score < box_threshold:
            continue
        # For a rectangle, growing by this distance is the DB "unclip" offset.
        distance = w * h * unclip_ratio / (2 * (w + h))
        grown = ((cx, cy), (w + 2 * distance, h + 2 * distance), angle)
        if min(grown[1]) < min_size + 2:
            continue
        grown_corners = order_corners(cv2.boxPoints(grown).astype(np.float32)) * scale
        grown_corners[:, 0] = np.clip(grown_corners[:, 0], 0, crop_w)
        grown_corners[:, 1] = np.clip(grown_corners[:, 1], 0, crop_h)
        boxes.append(TextBox(corners=grown_corners, score=score))
    return boxes
