"""Plate detector pre- and post-processing."""

from typing import Any

import numpy as np
import pytest

from lpr_recognition.inference.plate_detector import (
    BOX_BINS,
    DETECTOR_MAX_PIXELS,
    DETECTOR_STRIDES,
    Detection,
    anchor_grid,
    crop_plate,
    decode_detections,
    letterbox,
    non_max_suppression,
)


def _head(
    width: int, height: int, plates: list[tuple[float, float, float, float, float]]
) -> np.ndarray[Any, Any]:
    """A raw head [1, 65, anchors] for an input size holding the given plates.

    Each plate (x1, y1, x2, y2 in input pixels, score) sits on the stride 8 anchor
    under its centre, its side distances spread over two neighbouring bins.
    """
    strides = [(height // s) * (width // s) for s in DETECTOR_STRIDES]
    head = np.full((1, 4 * BOX_BINS + 1, sum(strides)), -30.0, dtype=np.float32)
    head[0, 4 * BOX_BINS] = -10.0
    for x1, y1, x2, y2, score in plates:
        column, row = int((x1 + x2) / 16), int((y1 + y2) / 16)
        anchor = row * (width // 8) + column
        cx, cy = column + 0.5, row + 0.5
        sides = (cx - x1 / 8, cy - y1 / 8, x2 / 8 - cx, y2 / 8 - cy)
        for side, distance in enumerate(sides):
            low = int(distance)
            head[0, side * BOX_BINS + low, anchor] = np.log(1 - (distance - low))
            head[0, side * BOX_BINS + low + 1, anchor] = np.log(distance - low + 1e-9)
        head[0, 4 * BOX_BINS, anchor] = np.log(score / (1 - score))
    return head.astype(np.float16)


def test_letterbox_keeps_aspect_and_pads_only_to_a_multiple_of_32() -> None:
    image = np.zeros((360, 640, 3), dtype=np.uint8)
    image[:, :, 2] = 255  # pure red in BGR
    canvas, transform = letterbox(image)
    assert canvas.shape == (1, 384, 640, 3)
    assert canvas.dtype == np.uint8
    assert (transform.scale, transform.width, transform.height) == (1.0, 640, 384)
    assert transform.pad_y == 12
    # The BGR image as it is (the served graph converts it), grey padding.
    assert tuple(canvas[0, 200, 320]) == (0, 0, 255)
    assert tuple(canvas[0, 5, 320]) == (114, 114, 114)
    tall, tall_transform = letterbox(np.zeros((1280, 600, 3), dtype=np.uint8))
    assert tall.shape == (1, 640, 320, 3)
    assert tall_transform.scale == 0.5


@pytest.mark.parametrize(
    ("height", "width", "expected_input", "expected_scale"),
    [
        (720, 1280, (384, 640), 0.5),  # 16:9: the budget is its area, unchanged
        (1080, 1920, (384, 640), 1 / 3),
        (1280, 1280, (480, 480), 0.375),  # square: 480 x 480, not 640 x 640
        (397, 530, (416, 576), None),  # 4:3, still enlarged, to 554 x 416
    ],
)
def test_pixel_budget_shrinks_square_frames_only(
    height: int, width: int, expected_input: tuple[int, int], expected_scale: float | None
) -> None:
    canvas, transform = letterbox(
        np.zeros((height, width, 3), dtype=np.uint8), max_pixels=DETECTOR_MAX_PIXELS
    )
    assert canvas.shape[1:3] == expected_input
    assert (transform.height, transform.width) == expected_input
    assert round(width * transform.scale) * round(height * transform.scale) <= DETECTOR_MAX_PIXELS
    if expected_scale is not None:
        assert transform.scale == pytest.approx(expected_scale)
    unbounded, _ = letterbox(np.zeros((height, width, 3), dtype=np.uint8))
    assert canvas.size <= unbounded.size


def test_anchors_run_row_by_row_from_the_finest_grid() -> None:
    x, y, strides = anchor_grid(64, 32)
    assert len(x) == 8 * 4 + 4 * 2 + 2 * 1
    assert (x[1], y[1], strides[1]) == (1.5, 0.5, 8)
    assert (x[8], y[8], strides[8]) == (0.5, 1.5, 8)
    assert (x[-1], y[-1], strides[-1]) == (1.5, 0.5, 32)


def test_decode_maps_letterbox_boxes_back_to_image_pixels() -> None:
    image = np.zeros((640, 1280, 3), dtype=np.uint8)
    _, transform = letterbox(image)  # scale 0.5, no padding: 640 x 320
    head = _head(640, 320, [(270, 150, 370, 170, 0.9), (50, 40, 100, 50, 0.1)])
    every_anchor = np.arange(head.shape[-1])
    plates = decode_detections(
        head, every_anchor, transform, (1280, 640), confidence_threshold=0.25
    )
    assert len(plates) == 1
    plate = plates[0]
    assert np.allclose([plate.x1, plate.y1, plate.x2, plate.y2], [540, 300, 740, 340], atol=1)
    assert plate.confidence == pytest.approx(0.9, abs=0.01)


def test_decode_places_the_served_best_anchors_by_their_indices() -> None:
    _, transform = letterbox(np.zeros((320, 640, 3), dtype=np.uint8))
    head = _head(640, 320, [(270, 150, 370, 170, 0.9), (420, 40, 500, 60, 0.8)])
    best = np.argsort(-head[0, 64].astype(np.float32))[:5]
    every = decode_detections(head, np.arange(head.shape[-1]), transform, (640, 320))
    served = decode_detections(head[:, :, best], best, transform, (640, 320))
    assert len(served) == 2
    assert served == every


def test_decode_refuses_an_output_of_another_input_size() -> None:
    _, transform = letterbox(np.zeros((640, 640, 3), dtype=np.uint8))
    head = _head(640, 320, [])
    with pytest.raises(ValueError, match="640x640"):
        decode_detections(head[:, :, :5], np.arange(5) + 8399, transform, (640, 640))
    with pytest.raises(ValueError, match="640x640"):
        decode_detections(head[:, :, :5], np.arange(4), transform, (640, 640))


def test_overlapping_boxes_keep_only_the_best() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=np.float32)
    scores = np.array([0.5, 0.9, 0.7], dtype=np.float32)
    assert non_max_suppression(boxes, scores, iou_threshold=0.5) == [1, 2]


def test_crop_grows_by_padding_and_stays_inside_the_image() -> None:
    image = np.arange(100 * 200 * 3, dtype=np.uint32).astype(np.uint8).reshape(100, 200, 3)
    crop, origin = crop_plate(image, Detection(50, 40, 150, 60, 0.9), padding=0.2)
    assert origin == (30, 36)
    assert crop.shape[:2] == (28, 140)
    edge, _ = crop_plate(image, Detection(0, 0, 100, 50, 0.9), padding=0.2)
    assert edge.shape[:2] == (60, 120)
