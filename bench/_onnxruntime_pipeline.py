"""The recognition pipeline run in-process through onnxruntime: the benchmark's baseline.

It executes exactly the ONNX files of the assembled model repository, so the
difference from the Triton figures is the cost of serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from lpr_recognition.inference.pipeline import PLATE_DETECTOR
from lpr_recognition.inference.text_recognizer import plate_alphabet
from lpr_recognition.triton.repository import INT8_COPY


class OnnxRuntimeRunner:
    """Runs the repository's models with onnxruntime sessions in this process."""

    def __init__(
        self,
        repository: Path,
        models: Sequence[str],
        threads: int = 1,
        cpu_detector: bool = True,
    ) -> None:
        """Open one session per model from ``repository/<model>/1/``.

        Args:
            repository: The assembled model repository.
            models: Model names to open.
            threads: onnxruntime threads per session, as in the CPU configs.
            cpu_detector: Run the plate detector's INT8 copy, as the CPU config does.
        """
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._cpu_detector = cpu_detector
        self.sessions = {
            model: ort.InferenceSession(
                str(repository / model / "1" / self._file(model, cpu_detector)),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            )
            for model in models
        }

    @staticmethod
    def _file(model: str, cpu_detector: bool) -> str:
        if model == PLATE_DETECTOR and cpu_detector:
            return INT8_COPY
        return "model.onnx"

    async def infer(
        self, model: str, inputs: Mapping[str, npt.NDArray[np.generic]], outputs: Sequence[str]
    ) -> dict[str, npt.NDArray[np.generic]]:
        """Run a model, casting inputs to the element type the ONNX file declares."""
        session = self.sessions[model]
        feeds: dict[str, npt.NDArray[np.generic]] = {}
        for spec in session.get_inputs():
            dtype = np.float16 if spec.type == "tensor(float16)" else None
            value = inputs[spec.name]
            feeds[spec.name] = (
                value.astype(dtype) if dtype is not None else value.astype(np.float32)
            )
        # onnxruntime releases the GIL, so concurrent images use the cores as Triton's
        # model instances do.
        results = await asyncio.to_thread(session.run, list(outputs), feeds)
        if model == PLATE_DETECTOR and self._cpu_detector:
            # Triton serves the detector's outputs as FP16 (the original model's type) on
            # both configs; round the same way so both paths see identical tensors.
            results = [np.asarray(r).astype(np.float16) for r in results]
        return dict(zip(outputs, results, strict=True))

    def alphabet(self, recognizer: str) -> dict[int, str]:
        """Plate characters of a text recognizer's dictionary (from its ONNX metadata)."""
        metadata = self.sessions[recognizer].get_modelmeta().custom_metadata_map
        return plate_alphabet(metadata["character"].splitlines())
