"""Assemble the Triton model repository from the installed model wheels.

The configs (``config.pbtxt`` for the GPU container, ``configs/cpu.pbtxt`` and
``1/model.py`` for the CPU server) are committed; the ONNX files are not. This module
copies them out of the ``platedet`` and ``rapidocr_onnxruntime`` wheels (the root
project's ``models`` dependency group) into ``<model>/1/model.onnx``. For the plate
detector it then writes the served graph (``detector_graph``: mask branches dropped,
free input size) in the wheel's FP16, which the GPU config runs, an FP32 copy of it and,
from that, the INT8 copy that the CPU config runs (measured in bench/recognition.py:
same recall and top-1, about 40% less CPU per image than FP32).

The fine-tuned plate recognizer ``plate_rec`` is the exception: trained here
(recognition-svc/training/), its small ONNX file is committed with its configs and is
only copied when the repository is assembled somewhere else.

platerec (the other OCR the issue names) is not served: measured on the dev images it
reads far fewer plates than the PP-OCR pair (see bench/recognition.py and the README).
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from lpr_recognition.triton import detector_graph, float32, int8
from lpr_recognition.triton.detector_graph import served_detector, with_image_input
from lpr_recognition.triton.float32 import float16_to_float32
from lpr_recognition.triton.int8 import quantize_int8

# recognition-svc/model_repository, next to this package's src/ folder.
MODEL_REPOSITORY = Path(__file__).resolve().parents[3] / "model_repository"
# The plate detector's served graph in the wheel's FP16 (GPU config), and its CPU copies.
SERVED_COPY = "platedet.fp16.onnx"
FP32_COPY = "platedet.fp32.onnx"
INT8_COPY = "platedet.int8.onnx"
# Copies of the whole wheel graph written by earlier versions; removed at assembly.
OBSOLETE_COPIES = ("model.fp32.onnx", "model.int8.onnx")
# Activation ranges of the INT8 copy, measured once by lpr_recognition.triton.int8.calibrate.
INT8_RANGES = "configs/int8_ranges.json"
# Modules whose code shapes the detector's served copies.
_GRAPH_CODE = tuple(Path(module.__file__ or "") for module in (detector_graph, float32, int8))
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
    served_copies: bool = False


MODEL_SOURCES = (
    ModelSource("platedet", "platedet", "artifacts/platedet.onnx", served_copies=True),
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
            if source.served_copies:
                _copy_if_changed(committed / INT8_RANGES, model_dir / INT8_RANGES)
        onnx_file = _package_file(source)
        target = model_dir / "1" / "model.onnx"
        _copy_if_changed(onnx_file, target)
        if source.served_copies:
            _write_served_copies(model_dir)


def _write_served_copies(model_dir: Path) -> None:
    """Write the detector's served graph (FP16), its FP32 copy and the INT8 copy.

    All three take the letterboxed ``uint8`` image (``detector_graph.with_image_input``);
    the INT8 copy is quantized from the FP32 graph before that input is added, so the
    committed activation ranges name the same tensors.
    """
    version = model_dir / "1"
    for name in OBSOLETE_COPIES:
        (version / name).unlink(missing_ok=True)
    # The copies are rebuilt when the wheel's file, the ranges or the code writing them change.
    sources = (version / "model.onnx", model_dir / INT8_RANGES, *_GRAPH_CODE)
    copies = (version / SERVED_COPY, version / FP32_COPY, version / INT8_COPY)
    if not any(_stale(copy, *sources) for copy in copies):
        return
    original, ranges = sources[0], sources[1]
    head = served_detector(original.read_bytes())
    head_fp32 = float16_to_float32(head)
    with tempfile.TemporaryDirectory(prefix="lpr-platedet-") as work:
        float_input, quantized = Path(work) / "fp32.onnx", Path(work) / "int8.onnx"
        float_input.write_bytes(head_fp32)
        quantize_int8(float_input, quantized, ranges)
        head_int8 = quantized.read_bytes()
    for target, graph in zip(copies, (head, head_fp32, head_int8), strict=True):
        partial = target.with_suffix(".partial")
        partial.write_bytes(with_image_input(graph))
        partial.replace(target)
