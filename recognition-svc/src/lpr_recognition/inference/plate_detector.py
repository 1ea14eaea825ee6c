"""Pre- and post-processing for the YOLOv8-seg plate detector (``platedet``).

The detector takes one letterboxed RGB image scaled to [0, 1] and returns, per anchor,
the box centre and size in letterbox pixels followed by one class score ("plate") and
32 mask coefficients that this pipeline does not use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

DETECTOR_SIZE = 640
LETTERBOX_FILL = 114


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the detector's square input."""

    scale: float
    pad_x: float
    pad_y: float


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
    image_bgr: npt.NDArray[np.uint8], size: int = DETECTOR_SIZE
) -> tuple[npt.NDArray[np.float32], Letterbox]:
    """Fit a BGR image into a centred square, keeping its aspect ratio.

    Returns:
        The detector input as float32 NCHW RGB in [0, 1], and the transform applied.
    """
    height, width = image_bgr.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = round(width * scale), round(height * scale)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image_bgr, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    canvas = np.full((size, size, 3), LETTERBOX_FILL, dtype=np.uint8)
    canvas[top : top + new_h, left : left + new_w] = resized
    tensor = canvas[:, :, ::-1].transpose(2, 0, 1)[np.newaxis].astype(np.float32) / 255.0
    return np.ascontiguousarray(tensor), Letterbox(scale=scale, pad_x=left, pad_y=top)


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
    output0: npt.NDArray[np.floating[Any]],
    transform: Letterbox,
    image_size: tuple[int, int],
    *,
    confidence_threshold: float = 0.25,
    iou_threshold: float = 0.5,
    max_detections: int = 20,
) -> list[Detection]:
    """Turn the detector's ``output0`` [1, 5 + masks, anchors] into plates in image pixels.

    Args:
        output0: Raw detector output for one image.
        transform: The letterbox used to build the input.
        image_size: Source image (width, height), used to clip boxes.
        confidence_threshold: Minimum plate score.
        iou_threshold: Boxes overlapping a better one by more than this are dropped.
        max_detections: Upper bound on returned plates.
    """
    rows = np.asarray(output0, dtype=np.float32).reshape(output0.shape[-2], output0.shape[-1])
    scores = rows[4]
    selected = np.flatnonzero(scores >= confidence_threshold)
    if selected.size == 0:
        return []
    cx, cy, w, h = rows[0, selected], rows[1, selected], rows[2, selected], rows[3, selected]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    boxes[:, [0, 2]] = (boxes[:, [0, 2]] - transform.pad_x) / transform.scale
    boxes[:, [1, 3]] = (boxes[:, [1, 3]] - transform.pad_y) / transform.scale
    width, height = image_size
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    kept_scores = scores[selected]
    keep = non_max_suppression(boxes, kept_scores, iou_threshold)[:max_detections]
    return [
        Detection(
            x1=float(boxes[i, 0]),
            y1=float(boxes[i, 1]),
            x2=float(boxes[i, 2]),
            y2=float(boxes[i, 3]),
            confidence=float(kept_scores[i]),
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
