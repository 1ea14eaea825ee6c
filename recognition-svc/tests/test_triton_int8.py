"""The INT8 plate detector of the CPU config finds the plates the FP32 one finds."""

import os
from pathlib import Path

import numpy as np
import pytest

from lpr_recognition.triton.float32 import float16_to_float32
from lpr_recognition.triton.repository import (
    INT8_RANGES,
    MODEL_REPOSITORY,
    MODEL_SOURCES,
    _package_file,
)

PLATES_DIR = Path(
    os.environ.get(
        "LPR_PLATES_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates"
    )
)
# A US image with one plate; the expected box is its ground truth file's.
IMAGE = "37170dd1-2802-4e38-b982-c5d07c64ff67"


def test_int8_copy_is_reproducible_and_finds_the_plate(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    cv2 = pytest.importorskip("cv2")
    from lpr_recognition.inference.plate_detector import box_iou, decode_detections, letterbox
    from lpr_recognition.triton.detector_graph import served_detector, with_image_input
    from lpr_recognition.triton.int8 import quantize_int8

    if not (PLATES_DIR / "us" / f"{IMAGE}.jpg").is_file():
        pytest.skip(f"no plate images at {PLATES_DIR}")
    source = next(s for s in MODEL_SOURCES if s.model == "platedet")
    try:
        original = _package_file(source)
    except RuntimeError:
        pytest.skip("platedet is not installed")
    fp32 = tmp_path / "platedet.fp32.onnx"
    fp32.write_bytes(float16_to_float32(served_detector(original.read_bytes())))
    ranges = MODEL_REPOSITORY / "platedet" / INT8_RANGES
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    quantize_int8(fp32, first, ranges)
    quantize_int8(fp32, second, ranges)
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size < fp32.stat().st_size / 3

    image = cv2.imread(str(PLATES_DIR / "us" / f"{IMAGE}.jpg"))
    canvas, transform = letterbox(image)
    line = (PLATES_DIR / "us" / f"{IMAGE}.txt").read_text().split()
    x, y, w, h = (float(v) for v in line[1:5])
    truth = np.array([x, y, x + w, y + h], dtype=np.float32)
    for model in (fp32, first):
        served = tmp_path / f"served-{model.name}"
        served.write_bytes(with_image_input(model.read_bytes()))
        session = ort.InferenceSession(str(served), providers=["CPUExecutionProvider"])
        output, anchors = session.run(["predictions", "anchors"], {"images": canvas})
        plates = decode_detections(output, anchors, transform, (image.shape[1], image.shape[0]))
        assert plates
        assert plates[0].confidence > 0.5
        best = np.array([[plates[0].x1, plates[0].y1, plates[0].x2, plates[0].y2]], np.float32)
        assert box_iou(truth, best)[0] > 0.5
