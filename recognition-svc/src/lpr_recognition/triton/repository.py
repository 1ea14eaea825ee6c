"""Assemble the Triton model repository from the installed model wheels.

The configs (``config.pbtxt`` for the GPU container, ``configs/cpu.pbtxt`` and
``1/model.py`` for the CPU server) are committed; the ONNX files are not. This module
copies them out of the ``platedet`` and ``rapidocr_onnxruntime`` wheels (the root
project's ``models`` dependency group) into ``<model>/1/model.onnx`` and writes an FP32
copy of the FP16 plate detector and, from it, the INT8 copy that the CPU config runs
(measured in bench/recognition.py: same recall and top-1, about 40% less CPU per image).

The fine-tuned plate recognizer ``plate_rec`` is the exception: trained here
(recognition-svc/training/), its small ONNX file is committed with its configs and is
only copied when the repository is assembled somewhere else.

platerec (the other OCR the issue names) is not served: measured on the dev images it
reads far fewer plates than the PP-OCR pair (see bench/recognition.py and the README).
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path

from lpr_recognition.triton.float32 import float16_to_float32
from lpr_recognition.triton.int8 import quantize_int8

# recognition-svc/model_repository, next to this package's src/ folder.
MODEL_REPOSITORY = Path(__file__).resolve().parents[3] / "model_repository"
FP32_COPY = "model.fp32.onnx"
INT8_COPY = "model.int8.onnx"
# Activation ranges of the INT8 copy, measured once by lpr_recognition.triton.int8.calibrate.
INT8_RANGES = "configs/int8_ranges.json"
# Models whose ONNX file is committed in the repository rather than taken from a wheel.
COMMITTED_MODELS = ("plate_rec",)


class ModelRepositoryError(RuntimeError):
    """A model wheel is missing or the repository cannot be written."""


@dataclass(frozen=True)
class ModelSource:
    """Where a served model's ONNX file comes from."""

    model: str
    package: str
    path: str
    float32_copy: bool = False
    int8_copy: bool = False


MODEL_SOURCES = (
    ModelSource(
        "platedet", "platedet", "artifacts/platedet.onnx", float32_copy=True, int8_copy=True
    ),
    ModelSource("ppocr_det", "rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx"),
    ModelSource("ppocr_rec", "rapidocr_onnxruntime", "models/ch_PP-OCRv4_rec_infer.onnx"),
)


def _package_file(source: ModelSource) -> Path:
    """Locate a file inside an installed package without importing it."""
    spec = importlib.util.find_spec(source.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelRepositoryError(
            f"package {source.package} is not installed; run `uv sync --group models`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / source.path
    if not path.is_file():
        raise ModelRepositoryError(f"{source.package} does not contain {source.path}")
    return path


def _stale(target: Path, *sources: Path) -> bool:
    return not target.is_file() or any(
        target.stat().st_mtime < source.stat().st_mtime for source in sources
    )


def _copy_if_changed(source: Path, target: Path) -> None:
    if (
        target.is_file()
        and target.stat().st_size == source.stat().st_size
        and target.stat().st_mtime >= source.stat().st_mtime
    ):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def assemble_model_repository(dest: Path = MODEL_REPOSITORY) -> None:
    """Fill ``dest`` with every served model: configs, Python backend code, ONNX files.

    Re-running is cheap: files already in place are kept.

    Args:
        dest: The repository to fill; when it is not the committed one, the committed
            configs and ``model.py`` files are copied there too.

    Raises:
        ModelRepositoryError: A model wheel is not installed.
    """
    dest = dest.resolve()
    if dest != MODEL_REPOSITORY.resolve():
        for model in COMMITTED_MODELS:
            for file in ("config.pbtxt", "configs/cpu.pbtxt", "1/model.py", "1/model.onnx"):
                _copy_if_changed(MODEL_REPOSITORY / model / file, dest / model / file)
    for source in MODEL_SOURCES:
        model_dir = dest / source.model
        if dest != MODEL_REPOSITORY.resolve():
            committed = MODEL_REPOSITORY / source.model
            for file in ("config.pbtxt", "configs/cpu.pbtxt", "1/model.py"):
                _copy_if_changed(committed / file, model_dir / file)
            if source.int8_copy:
                _copy_if_changed(committed / INT8_RANGES, model_dir / INT8_RANGES)
        onnx_file = _package_file(source)
        target = model_dir / "1" / "model.onnx"
        _copy_if_changed(onnx_file, target)
        if source.float32_copy:
            fp32 = model_dir / "1" / FP32_COPY
            if _stale(fp32, target):
                partial = fp32.with_suffix(".partial")
                partial.write_bytes(float16_to_float32(target.read_bytes()))
                partial.replace(fp32)
            if source.int8_copy:
                int8 = model_dir / "1" / INT8_COPY
                ranges = model_dir / INT8_RANGES
                if _stale(int8, fp32, ranges):
                    partial = int8.with_suffix(".partial")
                    quantize_int8(fp32, partial, ranges)
                    partial.replace(int8)
