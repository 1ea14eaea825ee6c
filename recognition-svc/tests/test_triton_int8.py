"""The INT8 plate detector of the CPU config finds the plates the FP32 one finds."""

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
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


def _iou(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(0.0, float(x2 - x1)) * max(0.0, float(y2 - y1))
    area = float(np.prod(a[2:] - a[:2]) + np.prod(b[2:] - b[:2]))
    return inter / (area - inter)


def test_int8_copy_is_reproducible_and_finds_the_plate(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    cv2 = pytest.importorskip("cv2")
    from lpr_recognition.inference.plate_detector import letterbox
    from lpr_recognition.triton.int8 import quantize_int8

    if not (PLATES_DIR / "us" / f"{IMAGE}.jpg").is_file():
        pytest.skip(f"no plate images at {PLATES_DIR}")
    source = next(s for s in MODEL_SOURCES if s.model == "platedet")
    try:
        original = _package_file(source)
    except RuntimeError:
        pytest.skip("platedet is not installed")
    fp32 = tmp_path / "model.fp32.onnx"
    fp32.write_bytes(float16_to_float32(original.read_bytes()))
    ranges = MODEL_REPOSITORY / "platedet" / INT8_RANGES
    first, second = tmp_path / "a.onnx", tmp_path / "b.onnx"
    quantize_int8(fp32, first, ranges)
    quantize_int8(fp32, second, ranges)
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size < fp32.stat().st_size / 3

    image, box = letterbox(cv2.imread(str(PLATES_DIR / "us" / f"{IMAGE}.jpg")))
    line = (PLATES_DIR / "us" / f"{IMAGE}.txt").read_text().split()
    x, y, w, h = (float(v) for v in line[1:5])
    truth = np.array([x, y, x + w, y + h]) * box.scale + [box.pad_x, box.pad_y] * 2
    for model in (fp32, first):
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        (output,) = session.run(["output0"], {"images": image})
        best = int(np.argmax(output[0, 4]))
        cx, cy, bw, bh = output[0, :4, best]
        found = np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
        assert output[0, 4, best] > 0.5
        assert _iou(found, truth) > 0.5
