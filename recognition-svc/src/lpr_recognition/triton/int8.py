"""Quantize the FP32 plate detector to INT8 for the CPU server.

Static QDQ quantization (INT8 weights per channel, UINT8 activations) runs the
detector about 2.5x faster than FP32 on CPUs with VNNI. The activation ranges were
measured once on 48 training-split dev images and are committed next to the CPU
config, so assembly needs no images, runs offline and gives the same file on every
machine. The detection head's box decoding stays FP32: its single output mixes pixel
coordinates with [0, 1] scores, and one INT8 scale for both loses every score.

To measure the ranges again (on training images, never validation ones), run
``python -m lpr_recognition.triton.int8 SPLIT_JSON PLATES_DIR FP32_ONNX RANGES_JSON``
with build/train-ocr/split.json, the dev images, an FP32 copy of the served graph with
its float input (``float16_to_float32(served_detector(model.onnx))``, see
``detector_graph``) and ``model_repository/platedet/configs/int8_ranges.json``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

# Nodes of the YOLOv8 head (module 22) other than its convolutions: decoding, concat.
_HEAD_PREFIX = "/model.22/"


def _float_nodes(model: Any) -> list[str]:
    return [
        node.name
        for node in model.graph.node
        if node.name.startswith(_HEAD_PREFIX) and node.op_type != "Conv"
    ]


class _Reader:
    """Feeds calibration inputs to onnxruntime's calibrator."""

    def __init__(self, name: str, inputs: Sequence[npt.NDArray[np.float32]]) -> None:
        self._items: Iterator[npt.NDArray[np.float32]] = iter(inputs)
        self._name = name

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        item = next(self._items, None)
        return None if item is None else {self._name: item}

    def __iter__(self) -> _Reader:
        return self

    def __next__(self) -> dict[str, npt.NDArray[np.float32]]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def _quantize(
    fp32: Path,
    target: Path,
    inputs: Sequence[npt.NDArray[np.float32]],
    ranges: dict[str, tuple[float, float]] | None,
) -> dict[str, tuple[float, float]]:
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="lpr-int8-") as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        input_name = model.graph.input[0].name
        overrides = {
            name: [{"rmin": np.float32(low), "rmax": np.float32(high)}]
            for name, (low, high) in (ranges or {}).items()
        }
        quantize_static(
            str(prepared),
            str(target),
            _Reader(input_name, inputs),  # type: ignore[arg-type]
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=_float_nodes(model),
            extra_options={"TensorQuantOverrides": overrides} if overrides else {},
        )
        quantized = onnx.load(str(target))
    found: dict[str, tuple[float, float]] = {}
    scales = {init.name: init for init in quantized.graph.initializer}
    for node in quantized.graph.node:
        if node.op_type != "QuantizeLinear" or node.input[0] in scales:
            continue
        scale = float(onnx.numpy_helper.to_array(scales[node.input[1]]))
        zero = int(onnx.numpy_helper.to_array(scales[node.input[2]]))
        found[node.input[0]] = (-zero * scale, (255 - zero) * scale)
    return found


def calibrate(fp32: Path, inputs: Sequence[npt.NDArray[np.float32]], ranges_file: Path) -> None:
    """Measure activation ranges on detector inputs and write them as JSON.

    Args:
        fp32: The FP32 detector.
        inputs: Letterboxed detector inputs (training images, never validation ones).
        ranges_file: Where to write ``{tensor: [min, max]}``.
    """
    with tempfile.TemporaryDirectory(prefix="lpr-int8-") as work:
        found = _quantize(fp32, Path(work) / "model.onnx", inputs, None)
    ranges_file.write_text(
        json.dumps({k: [round(lo, 7), round(hi, 7)] for k, (lo, hi) in sorted(found.items())})
        + "\n"
    )


def quantize_int8(fp32: Path, target: Path, ranges_file: Path) -> None:
    """Write the INT8 detector using the committed activation ranges.

    Args:
        fp32: The FP32 detector graph with its float input [1, 3, H, W].
        target: The INT8 file to write.
        ranges_file: JSON ``{tensor: [min, max]}`` written by ``calibrate``.
    """
    raw = json.loads(ranges_file.read_text())
    ranges = {name: (float(low), float(high)) for name, (low, high) in raw.items()}
    # The calibrator needs one input; every activation range is then overridden.
    blank = np.full((1, 3, 640, 640), 114 / 255, dtype=np.float32)
    _quantize(fp32, target, [blank], ranges)


def _main() -> None:
    import argparse

    import cv2

    from lpr_recognition.inference.plate_detector import letterbox

    parser = argparse.ArgumentParser(description="Measure the INT8 activation ranges.")
    parser.add_argument("split", type=Path, help="split.json of the training pipeline")
    parser.add_argument("plates", type=Path, help="folder with us/, eu/, br/ images")
    parser.add_argument("fp32", type=Path, help="the FP32 detector")
    parser.add_argument("ranges", type=Path, help="JSON file to write")
    parser.add_argument("--images", type=int, default=48, help="training images to use")
    args = parser.parse_args()
    train = sorted(json.loads(args.split.read_text())["train"])
    files = [
        args.plates / region / name
        for name in train
        for region in ("us", "eu", "br")
        if (args.plates / region / name).is_file()
    ]
    files = files[:: max(1, len(files) // args.images)][: args.images]
    canvases = [letterbox(np.asarray(cv2.imread(str(file)), dtype=np.uint8))[0] for file in files]
    # The FP32 graph's float input: RGB, channels first, in [0, 1].
    inputs = [
        np.ascontiguousarray(c[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32) / 255
        for c in canvases
    ]
    calibrate(args.fp32, inputs, args.ranges)


if __name__ == "__main__":
    _main()
