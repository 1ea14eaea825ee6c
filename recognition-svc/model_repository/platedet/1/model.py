"""Triton Python backend model: runs this model's ONNX file with onnxruntime on the CPU.

Used by ``configs/cpu.pbtxt`` only (the GPU config uses Triton's onnxruntime backend on
the same file). Every model directory holds this same file. Tensor names and types
come from the model config, so the client sees the same interface as on the GPU;
inputs and outputs are cast between the config's types and the ONNX file's.

Config parameters:
    onnx_file: file in the version directory to run (default ``model.onnx``).
    intra_op_threads: onnxruntime threads per instance (default 1).
    items_per_run: run a request's batch through onnxruntime this many items at a time
        (default: the whole batch at once). Some models cost more per item in larger
        batches on a CPU whose caches the larger activations overflow.
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

_ONNX_TYPES = {
    "tensor(float16)": np.float16,
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


class TritonPythonModel:
    """One onnxruntime session per model instance."""

    def initialize(self, args):
        """Open the ONNX file named by the config."""
        config = json.loads(args["model_config"])
        parameters = {
            key: value.get("string_value", "")
            for key, value in config.get("parameters", {}).items()
        }
        directory = os.path.join(args["model_repository"], args["model_version"])
        onnx_path = os.path.join(directory, parameters.get("onnx_file", "model.onnx"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(parameters.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        self.items_per_run = int(parameters.get("items_per_run", "0")) or None
        self.session = ort.InferenceSession(
            onnx_path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        onnx_inputs = {spec.name: _ONNX_TYPES[spec.type] for spec in self.session.get_inputs()}
        self.inputs = [(spec["name"], onnx_inputs[spec["name"]]) for spec in config["input"]]
        self.outputs = [
            (spec["name"], pb_utils.triton_string_to_numpy(spec["data_type"]))
            for spec in config["output"]
        ]

    def execute(self, requests):
        """Run each request on its own; shapes may differ between requests."""
        names = [name for name, _ in self.outputs]
        responses = []
        for request in requests:
            try:
                feeds = {
                    name: pb_utils.get_input_tensor_by_name(request, name)
                    .as_numpy()
                    .astype(onnx_type, copy=False)
                    for name, onnx_type in self.inputs
                }
                results = self._run(names, feeds)
                tensors = [
                    pb_utils.Tensor(name, np.ascontiguousarray(result.astype(dtype, copy=False)))
                    for (name, dtype), result in zip(self.outputs, results)
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as error:  # noqa: BLE001 - reported to the client, not lost
                responses.append(
                    pb_utils.InferenceResponse(
                        error=pb_utils.TritonError(f"{type(error).__name__}: {error}")
                    )
                )
        return responses

    def _run(self, names, feeds):
        """Run the session on the whole batch, or ``items_per_run`` items at a time."""
        batch = len(next(iter(feeds.values()))) if feeds else 0
        step = self.items_per_run
        if step is None or batch <= step:
            return self.session.run(names, feeds)
        parts = [
            self.session.run(
                names, {name: value[start : start + step] for name, value in feeds.items()}
            )
            for start in range(0, batch, step)
        ]
        return [np.concatenate([part[i] for part in parts]) for i in range(len(names))]
