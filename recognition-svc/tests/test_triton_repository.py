"""The model repository: configs agree with each other and with the ONNX files."""

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from lpr_recognition.inference.pipeline import ALPHABET_PARAMETER
from lpr_recognition.triton.float32 import float16_to_float32
from lpr_recognition.triton.repository import MODEL_REPOSITORY, MODEL_SOURCES, _package_file

PLATES_DIR = Path(
    os.environ.get(
        "LPR_PLATES_DIR", Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates"
    )
)

MODELS = [source.model for source in MODEL_SOURCES]


def _tensors(config: str) -> list[tuple[str, str, str]]:
    return re.findall(r'name: "([^"]+)", data_type: (\w+), dims: \[([^\]]*)\]', config)


@pytest.mark.parametrize("model", MODELS)
def test_cpu_and_gpu_configs_serve_the_same_tensors(model: str) -> None:
    gpu = (MODEL_REPOSITORY / model / "config.pbtxt").read_text()
    cpu = (MODEL_REPOSITORY / model / "configs" / "cpu.pbtxt").read_text()
    assert _tensors(gpu)
    assert _tensors(gpu) == _tensors(cpu)
    assert 'backend: "onnxruntime"' in gpu
    assert "KIND_GPU" in gpu
    assert 'backend: "python"' in cpu
    assert "KIND_CPU" in cpu
    assert (MODEL_REPOSITORY / model / "1" / "model.py").read_text() == (
        MODEL_REPOSITORY / MODELS[0] / "1" / "model.py"
    ).read_text()


def _onnx_or_skip(model: str) -> Path:
    source = next(s for s in MODEL_SOURCES if s.model == model)
    try:
        return _package_file(source)
    except RuntimeError:
        pytest.skip(f"{source.package} is not installed")


def test_recognizer_alphabet_in_the_config_matches_the_model_dictionary() -> None:
    ort = pytest.importorskip("onnxruntime")
    from lpr_recognition.inference.text_recognizer import plate_alphabet

    session = ort.InferenceSession(
        str(_onnx_or_skip("ppocr_rec")), providers=["CPUExecutionProvider"]
    )
    dictionary = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    config = (MODEL_REPOSITORY / "ppocr_rec" / "configs" / "cpu.pbtxt").read_text()
    match = re.search(rf'key: "{ALPHABET_PARAMETER}"\s*value: {{ string_value: "(.*)" }}', config)
    assert match is not None
    served = json.loads(match.group(1).replace('\\"', '"'))
    assert {int(k): v for k, v in served.items()} == plate_alphabet(dictionary)
    assert sorted(set(served.values())) == sorted("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _wheel_detections(
    output0: np.ndarray[Any, Any], scale: float
) -> list[tuple[float, float, float, float, float]]:
    """Boxes (x1, y1, x2, y2 in image pixels) and scores of the wheel graph's ``output0``."""
    rows = np.asarray(output0, dtype=np.float32)[0]
    keep = np.flatnonzero(rows[4] >= 0.25)
    order = keep[np.argsort(-rows[4, keep])]
    if order.size == 0:
        return []
    cx, cy, w, h, score = rows[:5, order[0]]
    return [
        (
            (cx - w / 2) / scale,
            (cy - h / 2) / scale,
            (cx + w / 2) / scale,
            (cy + h / 2) / scale,
            score,
        )
    ]


def test_served_detector_finds_what_the_wheel_graph_finds(tmp_path: Path) -> None:
    """Mask branches dropped, head decoded in numpy, image input: the same best box."""
    ort = pytest.importorskip("onnxruntime")
    cv2 = pytest.importorskip("cv2")
    from lpr_recognition.inference.plate_detector import decode_detections, letterbox
    from lpr_recognition.triton.detector_graph import served_detector, with_image_input

    original = _onnx_or_skip("platedet")
    images = sorted((PLATES_DIR / "br").glob("*.jpg"))
    square = [i for i in images if cv2.imread(str(i)).shape[:2] == (1280, 1280)][:2]
    if not square:
        pytest.skip(f"no square dev images under {PLATES_DIR}")
    served_fp16 = with_image_input(served_detector(original.read_bytes()))
    (tmp_path / "fp16.onnx").write_bytes(served_fp16)
    (tmp_path / "fp32.onnx").write_bytes(float16_to_float32(served_fp16))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1

    def session(path: Path) -> Any:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    wheel = session(original)
    served = [session(tmp_path / "fp16.onnx"), session(tmp_path / "fp32.onnx")]
    assert served[1].get_inputs()[0].type == "tensor(uint8)"
    for path in square:
        image = cv2.imread(str(path))
        canvas, transform = letterbox(image)
        assert canvas.shape == (1, 640, 640, 3)  # the wheel graph's fixed input size
        rgb = canvas[..., ::-1].transpose(0, 3, 1, 2).astype(np.float16) / np.float16(255)
        (output0,) = wheel.run(["output0"], {"images": rgb})
        (expected,) = _wheel_detections(output0, transform.scale)
        for graph in served:
            predictions, anchors = graph.run(["predictions", "anchors"], {"images": canvas})
            assert predictions.shape == (1, 65, 300)
            found = decode_detections(predictions, anchors, transform, (1280, 1280))[0]
            actual = (found.x1, found.y1, found.x2, found.y2, found.confidence)
            assert np.allclose(actual[:4], expected[:4], atol=1.5)
            assert actual[4] == pytest.approx(float(expected[4]), abs=0.01)
