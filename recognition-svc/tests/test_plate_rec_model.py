"""The committed plate recognizer: its configs match the ONNX file, and it reads plates."""

import importlib.util
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from lpr_recognition.inference.pipeline import (
    ALPHABET_PARAMETER,
    PLATE_RECOGNIZER,
    PLATE_RECOGNIZER_INPUT,
    PLATE_RECOGNIZER_OUTPUT,
)
from lpr_recognition.inference.plate_detector import Detection
from lpr_recognition.inference.plate_reader import (
    VOTE_PADDINGS,
    decode_views,
    plate_reader_input,
    plate_views,
    vote_reads,
)
from lpr_recognition.inference.plate_text import normalize_plate
from lpr_recognition.triton.repository import MODEL_REPOSITORY

MODEL_DIR = MODEL_REPOSITORY / PLATE_RECOGNIZER
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "plates"
ort = pytest.importorskip("onnxruntime")


def _session() -> Any:
    return ort.InferenceSession(
        str(MODEL_DIR / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )


def _served_alphabet(config: str) -> dict[int, str]:
    match = re.search(rf'key: "{ALPHABET_PARAMETER}"\s*value: {{ string_value: "(.*)" }}', config)
    assert match is not None
    return {int(k): v for k, v in json.loads(match.group(1).replace('\\"', '"')).items()}


@pytest.mark.parametrize("config_file", ["config.pbtxt", "configs/cpu.pbtxt"])
def test_configs_declare_the_model_file_tensors_and_dictionary(config_file: str) -> None:
    session = _session()
    config = (MODEL_DIR / config_file).read_text()
    (model_input,) = session.get_inputs()
    (model_output,) = session.get_outputs()
    assert model_input.name == PLATE_RECOGNIZER_INPUT
    assert model_output.name == PLATE_RECOGNIZER_OUTPUT
    assert f'name: "{PLATE_RECOGNIZER_INPUT}", data_type: TYPE_FP32, dims: [ 3, 48, 160 ]' in config
    steps, classes = model_output.shape[1:]
    assert f"dims: [ {steps}, {classes} ]" in config
    dictionary = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    assert _served_alphabet(config) == {i + 1: char for i, char in enumerate(dictionary)}
    assert sorted(dictionary) == sorted("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert (MODEL_DIR / "1" / "model.py").read_text() == (
        MODEL_REPOSITORY / "platedet" / "1" / "model.py"
    ).read_text()


def test_reads_real_plates_from_their_boxes() -> None:
    labels = [
        label
        for region in ("us", "eu", "br")
        for label in sorted((DATA / region).glob("*.txt"))[:8]
    ]
    if not labels:
        pytest.skip(f"no dev images under {DATA}")
    session = _session()
    dictionary = session.get_modelmeta().custom_metadata_map["character"].splitlines()
    alphabet = {i + 1: char for i, char in enumerate(dictionary)}
    correct = 0
    for label in labels:
        name, x, y, w, h, plate = label.read_text().strip().split("\t")[:6]
        image = np.asarray(cv2.imread(str(label.parent / name), cv2.IMREAD_COLOR), dtype=np.uint8)
        box = Detection(float(x), float(y), float(x) + float(w), float(y) + float(h), 1.0)
        batch = plate_reader_input(plate_views(image, box, VOTE_PADDINGS))
        (logits,) = session.run([PLATE_RECOGNIZER_OUTPUT], {PLATE_RECOGNIZER_INPUT: batch})
        correct += vote_reads(
            decode_views(np.asarray(logits), alphabet)
        ).read.text == normalize_plate(plate)
    assert correct >= 0.8 * len(labels)


def test_cpu_backend_reads_a_batch_one_view_at_a_time_with_the_same_logits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``items_per_run`` changes only how the batch is run, not what comes out."""
    stub = types.ModuleType("triton_python_backend_utils")
    stub.triton_string_to_numpy = lambda name: {"TYPE_FP32": np.float32}[name]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", stub)
    spec = importlib.util.spec_from_file_location("plate_rec_backend", MODEL_DIR / "1" / "model.py")
    assert spec is not None
    assert spec.loader is not None
    backend = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backend)
    config = {
        "parameters": {"items_per_run": {"string_value": "1"}},
        "input": [{"name": PLATE_RECOGNIZER_INPUT, "data_type": "TYPE_FP32"}],
        "output": [{"name": PLATE_RECOGNIZER_OUTPUT, "data_type": "TYPE_FP32"}],
    }
    model = backend.TritonPythonModel()
    model.initialize(
        {
            "model_config": json.dumps(config),
            "model_repository": str(MODEL_DIR),
            "model_version": "1",
        }
    )
    assert model.items_per_run == 1
    views = np.random.default_rng(0).uniform(-1, 1, (3, 3, 48, 160)).astype(np.float32)
    feeds = {PLATE_RECOGNIZER_INPUT: views}
    (one_at_a_time,) = model._run([PLATE_RECOGNIZER_OUTPUT], feeds)
    (whole_batch,) = model.session.run([PLATE_RECOGNIZER_OUTPUT], feeds)
    assert one_at_a_time.shape == whole_batch.shape == (3, 20, 37)
    assert np.allclose(one_at_a_time, whole_batch, atol=1e-4)
