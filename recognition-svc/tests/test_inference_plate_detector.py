"""Plate detector pre- and post-processing."""

from typing import Any

import numpy as np

from lpr_recognition.inference.plate_detector import (
    Detection,
    crop_plate,
    decode_detections,
    letterbox,
    non_max_suppression,
)


def _output(anchors: list[tuple[float, float, float, float, float]]) -> np.ndarray[Any, Any]:
    """A detector output [1, 37, N] with the given (cx, cy, w, h, score) anchors."""
    output = np.zeros((1, 37, len(anchors)), dtype=np.float16)
    for i, anchor in enumerate(anchors):
        output[0, :5, i] = anchor
    return output


def test_letterbox_keeps_aspect_and_centres_the_image() -> None:
    image = np.zeros((320, 640, 3), dtype=np.uint8)
    image[:, :, 2] = 255  # pure red in BGR
    tensor, transform = letterbox(image)
    assert tensor.shape == (1, 3, 640, 640)
    assert transform.scale == 1.0
    assert transform.pad_y == 160
    # RGB order, scaled to [0, 1]: the red channel is first, the padding is grey.
    assert tensor[0, 0, 320, 320] == 1.0
    assert tensor[0, 2, 320, 320] == 0.0
    assert np.isclose(tensor[0, 0, 10, 320], 114 / 255)


def test_decode_maps_letterbox_boxes_back_to_image_pixels() -> None:
    image = np.zeros((640, 1280, 3), dtype=np.uint8)
    _, transform = letterbox(image)  # scale 0.5, 160 px bands top and bottom
    output = _output([(320, 320, 100, 20, 0.9), (100, 200, 50, 10, 0.1)])
    plates = decode_detections(output, transform, (1280, 640), confidence_threshold=0.25)
    assert len(plates) == 1
    plate = plates[0]
    assert np.allclose([plate.x1, plate.y1, plate.x2, plate.y2], [540, 300, 740, 340], atol=1)
    assert plate.confidence > 0.89


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
