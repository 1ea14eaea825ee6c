"""The model repository: configs agree with each other and with the ONNX files."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from lpr_recognition.inference.pipeline import ALPHABET_PARAMETER
from lpr_recognition.triton.float32 import float16_to_float32
from lpr_recognition.triton.repository import MODEL_REPOSITORY, MODEL_SOURCES, _package_file

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


def test_float32_copy_of_the_detector_gives_the_same_detections(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    original = _onnx_or_skip("platedet")
    converted = tmp_path / "model.fp32.onnx"
    converted.write_bytes(float16_to_float32(original.read_bytes()))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    fp16 = ort.InferenceSession(str(original), options, providers=["CPUExecutionProvider"])
    fp32 = ort.InferenceSession(str(converted), options, providers=["CPUExecutionProvider"])
    assert fp32.get_inputs()[0].type == "tensor(float)"
    image = np.random.default_rng(0).random((1, 3, 640, 640), dtype=np.float32)
    (expected,) = fp16.run(["output0"], {"images": image.astype(np.float16)})
    (actual,) = fp32.run(["output0"], {"images": image})
    boxes = np.asarray(expected, dtype=np.float32)[0, :4]
    assert np.allclose(np.asarray(actual)[0, :4], boxes, atol=0.5 + 0.01 * np.abs(boxes))
