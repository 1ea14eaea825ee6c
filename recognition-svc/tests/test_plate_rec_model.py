"""The committed plate recognizer: its configs match the ONNX file, and it reads plates."""

import json
import re
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
