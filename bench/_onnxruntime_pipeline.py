"""The recognition pipeline run in-process through onnxruntime: the benchmark's baseline.

It executes exactly the ONNX files of the assembled model repository the way the CPU
configs do (the ``onnx_file`` and ``items_per_run`` parameters of ``configs/cpu.pbtxt``),
so the difference from the Triton figures is the cost of serving.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from lpr_recognition.inference.text_recognizer import plate_alphabet

_ONNX_TYPES: dict[str, type[np.generic]] = {
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
    "tensor(uint8)": np.uint8,
}


def _cpu_parameters(model_dir: Path) -> dict[str, str]:
    """The string parameters of a model's CPU config."""
    config = (model_dir / "configs" / "cpu.pbtxt").read_text()
    return dict(
        re.findall(r'key: "([^"]+)"\s*value: \{\s*string_value: "((?:[^"\\]|\\.)*)"', config)
    )


def _fp16_outputs(model_dir: Path) -> dict[tuple[str, str], type[np.generic]]:
    """The outputs that a model's CPU config serves as FP16."""
    config = (model_dir / "configs" / "cpu.pbtxt").read_text()
    outputs = config[config.index("output [") :]
    return {
        (model_dir.name, name): np.float16
        for name in re.findall(r'name: "([^"]+)", data_type: TYPE_FP16', outputs)
    }


class OnnxRuntimeRunner:
    """Runs the repository's models with onnxruntime sessions in this process."""

    def __init__(self, repository: Path, models: Sequence[str], threads: int = 1) -> None:
        """Open one session per model, on the file its CPU config names.

        Args:
            repository: The assembled model repository.
            models: Model names to open.
            threads: onnxruntime threads per session, as in the CPU configs.
        """
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.sessions: dict[str, ort.InferenceSession] = {}
        self._items_per_run: dict[str, int] = {}
        # (model, output) -> the element type Triton serves, where it differs from the file's.
        self._output_types: dict[tuple[str, str], type[np.generic]] = {}
        for model in models:
            parameters = _cpu_parameters(repository / model)
            onnx_file = parameters.get("onnx_file", "model.onnx")
            self.sessions[model] = ort.InferenceSession(
                str(repository / model / "1" / onnx_file),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
            self._items_per_run[model] = int(parameters.get("items_per_run", "0"))
            self._output_types.update(_fp16_outputs(repository / model))

    async def infer(
        self, model: str, inputs: Mapping[str, npt.NDArray[np.generic]], outputs: Sequence[str]
    ) -> dict[str, npt.NDArray[np.generic]]:
        """Run a model, casting inputs to the element type the ONNX file declares."""
        session = self.sessions[model]
        feeds: dict[str, npt.NDArray[np.generic]] = {}
        for spec in session.get_inputs():
            feeds[spec.name] = inputs[spec.name].astype(_ONNX_TYPES[spec.type], copy=False)
        # onnxruntime releases the GIL, so concurrent images use the cores as Triton's
        # model instances do.
        results = await asyncio.to_thread(self._run, model, list(outputs), feeds)
        # Triton serves some outputs in the config's FP16; round the same way so both
        # paths see identical tensors.
        return {
            name: result.astype(self._output_types.get((model, name), result.dtype))
            for name, result in zip(outputs, results, strict=True)
        }

    def _run(
        self, model: str, outputs: list[str], feeds: dict[str, npt.NDArray[np.generic]]
    ) -> list[npt.NDArray[np.generic]]:
        """Run the whole batch, or ``items_per_run`` items at a time as the CPU config says."""
        session, step = self.sessions[model], self._items_per_run[model]
        batch = len(next(iter(feeds.values())))
        if not step or batch <= step:
            return [np.asarray(r) for r in session.run(outputs, feeds)]
        parts = [
            session.run(outputs, {name: value[i : i + step] for name, value in feeds.items()})
            for i in range(0, batch, step)
        ]
        return [np.concatenate([part[k] for part in parts]) for k in range(len(outputs))]

    def alphabet(self, recognizer: str) -> dict[int, str]:
        """Plate characters of a text recognizer's dictionary (from its ONNX metadata)."""
        metadata = self.sessions[recognizer].get_modelmeta().custom_metadata_map
        return plate_alphabet(metadata["character"].splitlines())
