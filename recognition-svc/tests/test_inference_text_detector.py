"""PP-OCR text detector pre- and post-processing."""

import numpy as np

from lpr_recognition.inference.text_detector import decode_text_boxes, text_detector_input


def test_small_crops_are_enlarged_to_the_minimum_side_in_steps_of_32() -> None:
    crop = np.zeros((40, 120, 3), dtype=np.uint8)
    tensor = text_detector_input(crop, min_side=256)
    assert tensor.shape == (1, 3, 256, 768)
    assert tensor.dtype == np.float32


def test_large_crops_are_bounded() -> None:
    crop = np.zeros((600, 3000, 3), dtype=np.uint8)
    tensor = text_detector_input(crop, min_side=256, max_side=1024)
    assert tensor.shape[3] == 1024
    assert tensor.shape[2] % 32 == 0


def test_text_regions_become_boxes_in_crop_pixels() -> None:
    probability = np.zeros((1, 1, 64, 128), dtype=np.float32)
    probability[0, 0, 20:40, 10:60] = 0.9  # a line on the left
    probability[0, 0, 50:52, 100:102] = 0.9  # a speck, too small to be text
    boxes = decode_text_boxes(probability, crop_size=(256, 128))
    assert len(boxes) == 1
    box = boxes[0]
    xs, ys = box.corners[:, 0], box.corners[:, 1]
    # The region spans x 10..60, y 20..40 in map pixels; the crop is twice as large,
    # and the box grows by the unclip margin on each side.
    assert 0 <= xs.min() < 20
    assert 120 < xs.max() < 150
    assert 10 < ys.min() < 40
    assert 80 < ys.max() < 110
    assert box.width > box.height


def test_faint_regions_are_not_text() -> None:
    probability = np.zeros((64, 128), dtype=np.float32)
    probability[20:40, 10:60] = 0.35  # above the pixel threshold, below the box score
    assert decode_text_boxes(probability, crop_size=(128, 64)) == []
