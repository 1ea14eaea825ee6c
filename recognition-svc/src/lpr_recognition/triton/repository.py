"""Assemble the Triton model repository from the installed model wheels.

The configs (``config.pbtxt`` for the GPU container, ``configs/cpu.pbtxt`` and
``1/model.py`` for the CPU server) are committed; the ONNX files are not. This module
copies them out of the ``platedet`` and ``rapidocr_onnxruntime`` wheels (the root
project's ``models`` dependency group) into ``<model>/1/model.onnx`` and writes an FP32
copy of the FP16 plate detector for the CPU config.

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

# recognition-svc/model_repository, next to this package's src/ folder.
MODEL_REPOSITORY = Path(__file__).resolve().parents[3] / "model_repository"
FP32_COPY = "model.fp32.onnx"
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


MODEL_SOURCES = (
    ModelSource("platedet", "platedet", "artifacts/platedet.onnx", float32_copy=True),
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
        onnx_file = _package_file(source)
        target = model_dir / "1" / "model.onnx"
        _copy_if_changed(onnx_file, target)
        if source.float32_copy:
            fp32 = model_dir / "1" / FP32_COPY
            if not fp32.is_file() or fp32.stat().st_mtime < target.stat().st_mtime:
                partial = fp32.with_suffix(".partial")
                partial.write_bytes(float16_to_float32(target.read_bytes()))
                partial.replace(fp32)
