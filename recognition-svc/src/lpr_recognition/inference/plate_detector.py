"""Pre- and post-processing for the YOLOv8 plate detector (``platedet``).

The served detector (``lpr_recognition.triton.detector_graph``) takes one letterboxed
BGR image as ``uint8``, whose sides are multiples of 32, and returns the head's raw
columns for its best anchors (``predictions``) and their indices (``anchors``) among
all anchors of the stride 8, 16 and 32 grids (row by row, finest grid first). A column
holds 16 logits per box side (left, top, right, bottom distances in bins of one stride)
followed by the plate logit. Boxes are decoded here, only for anchors whose score
passes the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

# Longest side of the detector's input, the size the model was trained at.
DETECTOR_SIZE = 640
# Most pixels of the scaled image the pipeline gives the detector: a 16:9 frame at
# DETECTOR_SIZE (640 x 360). Wide frames are unchanged; squarer ones are scaled below
# DETECTOR_SIZE to this area (1280 x 1280 -> 480 x 480 instead of 640 x 640, 4:3 ->
# 554 x 416). Measured on all dev images (bench/recognition.py): no plate lost, BR about
# a fifth less CPU per image.
DETECTOR_MAX_PIXELS = 640 * 360
# Strides of the head's three grids; the input's sides are multiples of the largest.
DETECTOR_STRIDES = (8, 16, 32)
# Bins of the distribution over each box side's distance (YOLOv8's DFL).
BOX_BINS = 16
LETTERBOX_FILL = 114


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the detector's input.

    Attributes:
        scale: Input pixels per image pixel.
        pad_x: Columns of padding left of the image.
        pad_y: Rows of padding above the image.
        width: Width of the detector's input.
        height: Height of the detector's input.
    """

    scale: float
    pad_x: float
    pad_y: float
    width: int = DETECTOR_SIZE
    height: int = DETECTOR_SIZE


@dataclass(frozen=True)
class Detection:
    """A plate found by the detector, in source-image pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    confidence: float

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return self.y2 - self.y1


def letterbox(
    image_bgr: npt.NDArray[np.uint8], size: int = DETECTOR_SIZE, max_pixels: int | None = None
) -> tuple[npt.NDArray[np.uint8], Letterbox]:
    """Scale a BGR image so its longest side is ``size`` and pad it to multiples of 32.

    The padding is split evenly on both sides. Padding only up to the next multiple of
    the largest stride, rather than to a square, keeps the scale the model was trained
    at while a 16:9 image costs 640 x 384 instead of 640 x 640 pixels.

    Args:
        image_bgr: The image.
        size: Longest side of the scaled image.
        max_pixels: When given, the scaled image also has at most this many pixels, so
            a square frame costs the detector no more than a wide one.

    Returns:
        The detector input, ``uint8`` BGR [1, height, width, 3] (the served graph makes
        it RGB in [0, 1] itself), and the transform applied.
    """
    height, width = image_bgr.shape[:2]
    scale = min(size / height, size / width)
    if max_pixels is not None:
        scale = min(scale, math.sqrt(max_pixels / (height * width)))
    new_w, new_h = round(width * scale), round(height * scale)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=interpolation)
    stride = DETECTOR_STRIDES[-1]
    input_w, input_h = math.ceil(new_w / stride) * stride, math.ceil(new_h / stride) * stride
    pad_x, pad_y = (input_w - new_w) / 2, (input_h - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = np.full((1, input_h, input_w, 3), LETTERBOX_FILL, dtype=np.uint8)
    canvas[0, top : top + new_h, left : left + new_w] = resized
    return canvas, Letterbox(scale=scale, pad_x=left, pad_y=top, width=input_w, height=input_h)


@lru_cache(maxsize=16)
def anchor_grid(width: int, height: int) -> tuple[npt.NDArray[np.float32], ...]:
    """Anchor centres (x, y, in strides) and strides of every anchor for an input size.

    Returns:
        Three read-only arrays of one value per anchor: x centre, y centre (both in
        units of the anchor's stride) and the stride, in the head's anchor order.
    """
    xs: list[npt.NDArray[np.float32]] = []
    ys: list[npt.NDArray[np.float32]] = []
    strides: list[npt.NDArray[np.float32]] = []
    for stride in DETECTOR_STRIDES:
        grid_y, grid_x = np.meshgrid(
            np.arange(height // stride, dtype=np.float32) + 0.5,
            np.arange(width // stride, dtype=np.float32) + 0.5,
            indexing="ij",
        )
        xs.append(grid_x.ravel())
        ys.append(grid_y.ravel())
        strides.append(np.full(grid_x.size, stride, dtype=np.float32))
    arrays = (np.concatenate(xs), np.concatenate(ys), np.concatenate(strides))
    for array in arrays:
        array.setflags(write=False)
    return arrays


def box_iou(
    box: npt.NDArray[np.float32], others: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Intersection over union of one x1,y1,x2,y2 box with each row of ``others``."""
    ix1 = np.maximum(box[0], others[:, 0])
    iy1 = np.maximum(box[1], others[:, 1])
    ix2 = np.minimum(box[2], others[:, 2])
    iy2 = np.minimum(box[3], others[:, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    other_areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    union = area + other_areas - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)


def non_max_suppression(
    boxes: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], iou_threshold: float
) -> list[int]:
    """Greedy NMS: indices of the kept boxes, best score first."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        best = int(order.pop(0))
        keep.append(best)
        if not order:
            break
        rest = np.asarray(order)
        overlaps = box_iou(boxes[best], boxes[rest])
        order = [int(i) for i, iou in zip(rest, overlaps, strict=True) if iou <= iou_threshold]
    return keep


def decode_detections(
    predictions: npt.NDArray[np.floating[Any]],
    anchors: npt.NDArray[np.integer[Any]],
    transform: Letterbox,
    image_size: tuple[int, int],
    *,
    confidence_threshold: float = 0.25,
    iou_threshold: float = 0.5,
    max_detections: int = 20,
) -> list[Detection]:
    """Turn the detector's best anchors into plates in image pixels.

    Args:
        predictions: The head's columns [1, 65, k] of the returned anchors.
        anchors: Index of each column's anchor, in the head's anchor order.
        transform: The letterbox used to build the input.
        image_size: Source image (width, height), used to clip boxes.
        confidence_threshold: Minimum plate score.
        iou_threshold: Boxes overlapping a better one by more than this are dropped.
        max_detections: Upper bound on returned plates.

    Raises:
        ValueError: The output does not fit the anchors of the input size.
    """
    rows = np.asarray(predictions).reshape(predictions.shape[-2], predictions.shape[-1])
    indices = np.asarray(anchors, dtype=np.int64).reshape(-1)
    anchor_x, anchor_y, strides = anchor_grid(transform.width, transform.height)
    if (
        rows.shape != (4 * BOX_BINS + 1, indices.size)
        or indices.size > anchor_x.size
        or (indices.size and not 0 <= int(indices.min()) <= int(indices.max()) < anchor_x.size)
    ):
        raise ValueError(
            f"detector output {rows.shape} with anchors {indices.size} does not fit a"
            f" {transform.width}x{transform.height} input ({anchor_x.size} anchors)"
        )
    # Compare logits, so only the anchors above the threshold go through the sigmoid.
    logit_threshold = math.log(confidence_threshold / (1.0 - confidence_threshold))
    selected = np.flatnonzero(rows[4 * BOX_BINS] >= logit_threshold)
    if selected.size == 0:
        return []
    logits = rows[:, selected].astype(np.float32)
    scores = 1.0 / (1.0 + np.exp(-logits[4 * BOX_BINS]))
    bins = logits[: 4 * BOX_BINS].reshape(4, BOX_BINS, selected.size)
    weights = np.exp(bins - bins.max(axis=1, keepdims=True))
    distances = (weights * np.arange(BOX_BINS, dtype=np.float32)[:, None]).sum(axis=1)
    distances /= weights.sum(axis=1)
    chosen = indices[selected]
    x, y, stride = anchor_x[chosen], anchor_y[chosen], strides[chosen]
    boxes = (
        np.stack([x - distances[0], y - distances[1], x + distances[2], y + distances[3]], axis=1)
        * stride[:, None]
    )
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - transform.pad_x) / transform.scale
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - transform.pad_y) / transform.scale
    width, height = image_size
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    keep = non_max_suppression(boxes, scores, iou_threshold)[:max_detections]
    return [
        Detection(
            x1=float(boxes[i, 0]),
            y1=float(boxes[i, 1]),
            x2=float(boxes[i, 2]),
            y2=float(boxes[i, 3]),
            confidence=float(scores[i]),
        )
        for i in keep
        if boxes[i, 2] - boxes[i, 0] >= 2 and boxes[i, 3] - boxes[i, 1] >= 2
    ]


def crop_plate(
    image_bgr: npt.NDArray[np.uint8], detection: Detection, padding: float = 0.2
) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """Cut a plate out of the image with a margin around the detector's box.

    The detector's boxes are tight and sometimes clip the first or last character,
    so each side grows by ``padding`` times the box's width (left, right) or height
    (top, bottom).

    Returns:
        The crop and its top-left corner (x, y) in the image.
    """
    height, width = image_bgr.shape[:2]
    pad_w, pad_h = detection.width * padding, detection.height * padding
    x1 = max(0, int(np.floor(detection.x1 - pad_w)))
    y1 = max(0, int(np.floor(detection.y1 - pad_h)))
    x2 = min(width, int(np.ceil(detection.x2 + pad_w)))
    y2 = min(height, int(np.ceil(detection.y2 + pad_h)))
    return image_bgr[y1:y2, x1:x2], (x1, y1)
